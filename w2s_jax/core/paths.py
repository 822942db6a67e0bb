"""Where a run's results live: <workdir>/results/<hash of the config>/."""

from __future__ import annotations

import pathlib
from typing import Mapping

from w2s_jax.core.hashing import stable_hash
from w2s_jax.errors import ConfigError

# Where, on how many devices and with what logging a run ran does not change what it computed.
NOT_IN_RESULTS_KEY = ("workdir", "mesh", "eval_batch_size", "logging")
RESULTS_FILE = "results.json"
CONFIG_FILE = "config.json"


def workdir(cfg: Mapping) -> pathlib.Path:
  """The run's workdir; an empty one (which would write into the current folder) is a
  ConfigError."""
  if not str(cfg.get("workdir", "")).strip():
    raise ConfigError("workdir is empty; give a folder with --config.workdir=PATH")
  return pathlib.Path(cfg["workdir"]).expanduser()


def results_hash(cfg: Mapping) -> str:
  """The folder name of a run's results."""
  return stable_hash({k: v for k, v in cfg.items() if k not in NOT_IN_RESULTS_KEY})


def results_folder(cfg: Mapping) -> pathlib.Path:
  """Where a run writes results.json and config.json."""
  return workdir(cfg) / "results" / results_hash(cfg)


def results_files(workdir) -> list[pathlib.Path]:
  """The results.json of every finished run under a workdir."""
  return sorted(pathlib.Path(workdir).glob(f"results/*/{RESULTS_FILE}"))
