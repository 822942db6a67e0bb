"""What the command-line entry points (main, sweep) share: the --config, --distributed and
--coordinator flags, logging, jax.distributed, one-line errors, and the stop request that
SIGINT/SIGTERM make of the running training loop."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

import jax
from absl import app, flags
from ml_collections import config_flags

from w2s_jax.core import config_files
from w2s_jax.errors import ConfigError, W2SError, is_storage_error, storage_error
from w2s_jax.train import StopRequest

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                          lock_config=True)
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False, "Call jax.distributed.initialize() first: one process per host on "
    "TPU pods and multi-node GPU clusters (addresses come from the environment).")
_COORDINATOR = flags.DEFINE_string(
    "coordinator", None, "With --distributed where the environment does not say: the "
    "coordinator's host:port, the number of processes and this one's id, as "
    "HOST:PORT,NUM_PROCESSES,PROCESS_ID (e.g. localhost:12355,2,0).")

DEFAULT_CONFIG = "configs/default.py"
INTERRUPTED = "interrupted; finished phases are kept: rerun the same command to resume"


def setup() -> dict:
  """Logging, jax.distributed when asked for; returns the config as a plain dict."""
  logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s",
                      force=True)
  logging.getLogger("w2s_jax").setLevel(logging.INFO)
  absl_log = logging.getLogger("absl")
  absl_log.setLevel(logging.WARNING)  # orbax logs every read at INFO
  absl_log.addFilter(_not_an_interrupt)
  if _DISTRIBUTED.value:
    start_distributed(_COORDINATOR.value)
  return _CONFIG.value.to_dict()


def _not_an_interrupt(record: logging.LogRecord) -> bool:
  """Orbax logs the traceback of a save that a second Ctrl-C cut short; the interrupt has
  its own line."""
  return not (record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt))


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
                        "PROCESS_ID, e.g. localhost:12355,2,0") from None
  jax.distributed.initialize(**kwargs, initialization_timeout=INIT_TIMEOUT_S,
                             heartbeat_timeout_seconds=HEARTBEAT_S)


def run(main_fn, doc: str, extra_flags=()):
  """Console entry point: runs main_fn(argv, stop) where `stop` is the StopRequest that
  SIGINT/SIGTERM make (a training loop checkpoints and stops at its next step; elsewhere, or
  on a second signal, the run stops at once). User errors end in one line on stderr and exit
  status 2."""
  stop = StopRequest()
  said = []  # the one error line, once printed

  def fail(message: str):
    said.append(message)
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)

  def on_signal(signum, frame):
    del frame
    if stop.request():
      return
    if not on_signal.raised:
      on_signal.raised = True
      # Stopping at once cuts clean-up short (orbax's saves, their threads): their logged
      # or printed tracebacks say nothing the interrupt's one line does not.
      logging.disable(logging.CRITICAL)
      threading.excepthook = lambda args: None
      raise KeyboardInterrupt(signal.Signals(signum).name)
    # A third signal while the run winds down (checkpoint managers closing): leave now, as
    # asked, with one line and not the tracebacks of clean-up cut short.
    if not said:
      print(f"error: {INTERRUPTED}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(2)

  on_signal.raised = False
  for signum in (signal.SIGINT, signal.SIGTERM):
    signal.signal(signum, on_signal)
  try:
    if any(a in ("-h", "--help", "--helpshort", "--helpfull") for a in sys.argv[1:]):
      print(usage(sys.argv, doc, extra_flags))
      sys.exit(0)
    app.run(lambda argv: main_fn(argv, stop), flags_parser=_parse_flags)
  except W2SError as e:
    fail(str(e))
  except KeyboardInterrupt:
    fail(INTERRUPTED)
  except OSError as e:
    if not is_storage_error(e):
      raise
    fail(str(storage_error(e, "the workdir")))
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


def _parse_flags(argv):
  spec = _config_arg(argv)
  try:
    if spec is None:
      raise ConfigError(f"no config: give --config={DEFAULT_CONFIG} (the offline default) or "
                        "another file in configs/ (--help lists its keys)")
    # errors here are clearer than config_flags' deferred ones
    config = config_files.load_file(spec)
    try:
      return flags.FLAGS(argv)
    except flags.Error as e:  # malformed values, unknown flags
      raise ConfigError(str(e).splitlines()[0]) from None
    except (AttributeError, KeyError) as e:  # config_flags' way of saying "no such key"
      raise ConfigError(config_files.unknown_key_message(argv, config)
                        or f"unknown config key {e}") from None
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


def usage(argv, doc: str, extra_flags=()) -> str:
  """The module's help, the flags, and every key of the config (--config or the default)."""
  spec = _config_arg(argv) or DEFAULT_CONFIG
  lines = [doc.strip(), "", "flags:",
           "  --config=PATH[:ARG]  the experiment config file (default shown below: "
           f"{DEFAULT_CONFIG})",
           *(f"  --{name:<18}{flags.FLAGS[name].help}" for name in extra_flags),
           f"  --distributed       {flags.FLAGS['distributed'].help}",
           f"  --coordinator=...   {flags.FLAGS['coordinator'].help}", ""]
  try:
    keys = config_files.keys(config_files.load_file(spec))
    lines += [f"config keys of {spec} (override any as --config.<key>=<value>):",
              *(f"  {line}" for line in keys)]
  except ConfigError as e:
    lines.append(f"(cannot list the config keys: {e})")
  return "\n".join(lines)
