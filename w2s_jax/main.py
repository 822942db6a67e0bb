r"""Runs a weak-to-strong experiment from a config file.

  python -m w2s_jax.main --config=configs/default.py
  python -m w2s_jax.main --config=configs/default.py --config.student.losses=xent,logconf
  python -m w2s_jax.main --config=configs/default.py --seeds=0,1,2   # mean ± std over seeds

On a TPU pod or a multi-node GPU cluster, run one process per host with --distributed
(see launch/).
"""

from __future__ import annotations

import importlib.util
import logging
import signal
import sys

import jax
from absl import app, flags
from ml_collections import config_flags

from w2s_jax import pipeline, report, train
from w2s_jax.errors import W2SError

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                          lock_config=True)
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False, "Call jax.distributed.initialize() first: one process per host on "
    "TPU pods and multi-node GPU clusters (addresses come from the environment).")
_SEEDS = flags.DEFINE_list("seeds", None, "Run these seeds (overrides config.seed) and print "
                           "the mean and spread over them.")


def main(argv):
  del argv
  logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s",
                      force=True)
  logging.getLogger("w2s_jax").setLevel(logging.INFO)
  logging.getLogger("absl").setLevel(logging.WARNING)  # orbax logs every read at INFO
  if _DISTRIBUTED.value:
    jax.distributed.initialize()
  cfg = _CONFIG.value.to_dict()
  try:
    seeds = [int(s) for s in _SEEDS.value] if _SEEDS.value else [cfg["seed"]]
  except ValueError:
    raise W2SError(f"--seeds={','.join(_SEEDS.value)} must be integers, e.g. --seeds=0,1,2")
  runs = []
  for seed in seeds:
    result = pipeline.run({**cfg, "seed": seed})
    print(report.run_table(result))
    runs.append(result)
  if len(runs) > 1:
    print(report.seeds_table(runs))


def _on_signal(signum, frame):
  """SIGINT/SIGTERM: a training loop checkpoints and stops at its next step; elsewhere (or on
  a second signal) the run stops at once."""
  del frame
  if not train.request_stop():
    raise KeyboardInterrupt(signal.Signals(signum).name)


def run():
  """Console entry point: user errors end in one line on stderr and exit status 2."""
  for signum in (signal.SIGINT, signal.SIGTERM):
    signal.signal(signum, _on_signal)
  try:
    app.run(main, flags_parser=_parse_flags)
  except W2SError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  except KeyboardInterrupt:
    print("error: interrupted; finished phases are kept: rerun the same command to resume",
          file=sys.stderr)
    sys.exit(2)


def _parse_flags(argv):
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:  # malformed values, unknown flags
    message = str(e).splitlines()[0]
  except (AttributeError, KeyError) as e:  # config_flags' way of saying "no such key"
    message = _unknown_key_message(argv) or f"unknown config key {e}"
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)


def _unknown_key_message(argv) -> str | None:
  """Names the override whose key the config lacks, and the keys it could have meant."""
  paths = [a[len("--config."):].split("=", 1)[0] for a in argv if a.startswith("--config.")]
  config_arg = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
  if config_arg is None:
    return None
  path, _, arg = config_arg.partition(":")
  try:
    spec = importlib.util.spec_from_file_location("_w2s_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config(arg or None)
  except Exception:  # the config itself is broken: let the generic message stand
    return None
  for dotted in paths:
    node = config
    for depth, key in enumerate(dotted.split(".")):
      if not hasattr(node, "keys") or key not in node:
        parent = ".".join(dotted.split(".")[:depth]) or "the config"
        choices = ", ".join(sorted(node.keys())) if hasattr(node, "keys") else "no sub-keys"
        return f"--config.{dotted}: {parent} has no key {key!r}; it has {choices}"
      node = node[key]
  return None


if __name__ == "__main__":
  run()
