r"""Runs a weak-to-strong experiment from a config file.

  python -m w2s_jax.main --config=configs/default.py
  python -m w2s_jax.main --config=configs/default.py --config.student.losses=xent,logconf
  python -m w2s_jax.main --config=configs/default.py --seeds=0,1,2   # mean ± std over seeds
  python -m w2s_jax.main --config=configs/text.py:sst2 --config.task.data_dir=DATA
  python -m w2s_jax.main --config=configs/default.py --help          # every config key

A config file's docstring starts with the commands that run it; `path.py:arg` passes an
argument to its get_config. Any key can be overridden as --config.<key>=<value>. On a TPU pod
or a multi-node GPU cluster, run one process per host with --distributed (see launch/).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pathlib
import signal
import sys

import jax
from absl import app, flags
from ml_collections import config_dict, config_flags

from w2s_jax import pipeline, report, train
from w2s_jax.errors import ConfigError, W2SError

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                          lock_config=True)
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False, "Call jax.distributed.initialize() first: one process per host on "
    "TPU pods and multi-node GPU clusters (addresses come from the environment).")
_COORDINATOR = flags.DEFINE_string(
    "coordinator", None, "With --distributed where the environment does not say: the "
    "coordinator's host:port, the number of processes and this one's id, as "
    "HOST:PORT,NUM_PROCESSES,PROCESS_ID (e.g. localhost:12355,2,0).")
_SEEDS = flags.DEFINE_list("seeds", None, "Run these seeds (overrides config.seed) and print "
                           "the mean and spread over them.")

DEFAULT_CONFIG = "configs/default.py"


def setup() -> dict:
  """Logging, jax.distributed when asked for; returns the config as a plain dict."""
  logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s",
                      force=True)
  logging.getLogger("w2s_jax").setLevel(logging.INFO)
  logging.getLogger("absl").setLevel(logging.WARNING)  # orbax logs every read at INFO
  if _DISTRIBUTED.value:
    start_distributed(_COORDINATOR.value)
  return _CONFIG.value.to_dict()


INIT_TIMEOUT_S, HEARTBEAT_S = 300, 30


def start_distributed(coordinator: str | None) -> None:
  """jax.distributed.initialize, from the environment (TPU metadata, SLURM) or `coordinator`.
  A peer that dies is noticed within HEARTBEAT_S and ends this process with an error, not a
  hang."""
  kwargs = {}
  if coordinator:
    try:
      address, count, process_id = coordinator.split(",")
      kwargs = dict(coordinator_address=address, num_processes=int(count),
                    process_id=int(process_id))
    except ValueError:
      raise ConfigError(f"--coordinator={coordinator} must be HOST:PORT,NUM_PROCESSES,"
                        "PROCESS_ID, e.g. localhost:12355,2,0")
  jax.distributed.initialize(**kwargs, initialization_timeout=INIT_TIMEOUT_S,
                             heartbeat_timeout_seconds=HEARTBEAT_S)


def experiment(cfg):
  """(run, run_table, seeds_table) of the config's kind of experiment: weak-to-strong, or
  measurement tampering detection (experiment="mtd")."""
  kind = cfg.get("experiment", "w2s")
  if kind == "mtd":
    from w2s_jax.mtd import pipeline as mtd
    return mtd.run, mtd.run_table, mtd.seeds_table
  if kind != "w2s":
    raise ConfigError(f"experiment={kind!r} is unknown; choose from w2s, mtd")
  return pipeline.run, report.run_table, report.seeds_table


def main(argv):
  del argv
  cfg = setup()
  try:
    seeds = [int(s) for s in _SEEDS.value] if _SEEDS.value else [cfg["seed"]]
  except ValueError:
    raise ConfigError(f"--seeds={','.join(_SEEDS.value)} must be integers, e.g. --seeds=0,1,2")
  run_one, run_table, seeds_table = experiment(cfg)
  runs = []
  for seed in seeds:
    result = run_one({**cfg, "seed": seed})
    print(run_table(result))
    runs.append(result)
  if len(runs) > 1:
    print(seeds_table(runs))
  if "results_file" in runs[-1]:
    print(f"results: {', '.join(r['results_file'] for r in runs)}")
    figures = [pathlib.Path(r["results_file"]).parent / "curves.png" for r in runs]
    if all(f.exists() for f in figures):
      print(f"figures: {', '.join(map(str, figures))}")


def _on_signal(signum, frame):
  """SIGINT/SIGTERM: a training loop checkpoints and stops at its next step; elsewhere (or on
  a second signal) the run stops at once."""
  del frame
  if not train.request_stop():
    raise KeyboardInterrupt(signal.Signals(signum).name)


def run(main_fn=main, doc: str = __doc__):
  """Console entry point: user errors end in one line on stderr and exit status 2."""
  for signum in (signal.SIGINT, signal.SIGTERM):
    signal.signal(signum, _on_signal)
  try:
    if any(a in ("-h", "--help", "--helpshort", "--helpfull") for a in sys.argv[1:]):
      print(usage(sys.argv, doc))
      sys.exit(0)
    app.run(main_fn, flags_parser=_parse_flags)
  except W2SError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  except KeyboardInterrupt:
    print("error: interrupted; finished phases are kept: rerun the same command to resume",
          file=sys.stderr)
    sys.exit(2)
  except jax.errors.JaxRuntimeError as e:
    if jax.process_count() == 1:
      raise
    # A peer died (its collectives fail here): say so in one line and leave at once, as
    # jax.distributed's shutdown barrier would wait for the dead peer and then abort.
    print(f"error: process {jax.process_index()} of {jax.process_count()}: another process "
          f"of this job stopped ({str(e).splitlines()[0][:200]}); finished phases are "
          "kept: rerun the same command on every host to resume", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(3)


def _config_arg(argv) -> str | None:
  values = [a.split("=", 1)[1] for a in argv if a.startswith("--config=")]
  return values[-1] if values else None


def load_config(spec: str) -> config_dict.ConfigDict:
  """The ConfigDict of "path.py" or "path.py:arg"; a missing or broken file is a ConfigError
  in one line."""
  path, _, arg = spec.partition(":")
  shipped = ", ".join(sorted(p.name for p in pathlib.Path("configs").glob("*.py")
                             if p.stem != "__init__"))
  if not pathlib.Path(path).is_file():
    raise ConfigError(f"config file {path} does not exist" +
                      (f"; configs/ has {shipped}" if shipped else ""))
  try:
    module_spec = importlib.util.spec_from_file_location("_w2s_config", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(arg or None)
  except Exception as e:  # the user's file: any error, said in one line
    message = str(e).strip().splitlines()[0] if str(e).strip() else ""
    raise ConfigError(f"config {spec}: {type(e).__name__}: {message}") from None


def _parse_flags(argv):
  spec = _config_arg(argv)
  try:
    if spec is None:
      raise ConfigError(f"no config: give --config={DEFAULT_CONFIG} (the offline default) or "
                        "another file in configs/ (--help lists its keys)")
    config = load_config(spec)  # errors here are clearer than config_flags' deferred ones
    try:
      return flags.FLAGS(argv)
    except flags.Error as e:  # malformed values, unknown flags
      raise ConfigError(str(e).splitlines()[0]) from None
    except (AttributeError, KeyError) as e:  # config_flags' way of saying "no such key"
      raise ConfigError(_unknown_key_message(argv, config) or f"unknown config key {e}") from None
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


def _unknown_key_message(argv, config) -> str | None:
  """Names the override whose key the config lacks, and the keys it could have meant."""
  for dotted in (a[len("--config."):].split("=", 1)[0] for a in argv
                 if a.startswith("--config.")):
    node = config
    for depth, key in enumerate(dotted.split(".")):
      if not hasattr(node, "keys") or key not in node:
        parent = ".".join(dotted.split(".")[:depth]) or "the config"
        choices = ", ".join(sorted(node.keys())) if hasattr(node, "keys") else "no sub-keys"
        return f"--config.{dotted}: {parent} has no key {key!r}; it has {choices}"
      node = node[key]
  return None


def config_keys(config, prefix: str = "") -> list[str]:
  """Every leaf of a config as "key = value", dotted."""
  lines = []
  for key in sorted(config.keys()):
    value = config[key]
    if hasattr(value, "keys"):
      lines += config_keys(value, f"{prefix}{key}.")
    else:
      lines.append(f"{prefix}{key} = {value!r}")
  return lines


def usage(argv, doc: str = __doc__) -> str:
  """The module's help, the flags, and every key of the config (--config or the default)."""
  spec = _config_arg(argv) or DEFAULT_CONFIG
  lines = [doc.strip(), "", "flags:",
           "  --config=PATH[:ARG]  the experiment config file (default shown below: "
           f"{DEFAULT_CONFIG})",
           f"  --seeds=0,1,2       {flags.FLAGS['seeds'].help}",
           f"  --distributed       {flags.FLAGS['distributed'].help}",
           f"  --coordinator=...   {flags.FLAGS['coordinator'].help}", ""]
  try:
    keys = config_keys(load_config(spec))
    lines += [f"config keys of {spec} (override any as --config.<key>=<value>):",
              *(f"  {line}" for line in keys)]
  except ConfigError as e:
    lines.append(f"(cannot list the config keys: {e})")
  return "\n".join(lines)


if __name__ == "__main__":
  run()
