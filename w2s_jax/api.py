"""The Python API: run experiments, read their results and predictions.

  import w2s_jax
  cfg = w2s_jax.load_config("configs/default.py", {"student.losses": "xent,logconf"})
  results = w2s_jax.run(cfg)                       # or run(cfg, seeds=[0, 1, 2])
  runs = w2s_jax.load_results("runs")              # every finished run of a workdir
  p = w2s_jax.predictions(results, "student:xent") # p(y=1) on each test document
"""

from __future__ import annotations

import importlib
import json
import pathlib
from typing import Any, Mapping, Sequence

import numpy as np
from ml_collections import config_dict

from w2s_jax import config as config_lib, main as cli, phases
from w2s_jax.errors import ConfigError


def load_config(spec: str, overrides: Mapping[str, Any] | None = None
                ) -> config_dict.ConfigDict:
  """A config from "path/to/file.py[:arg]" or a shipped config's name ("default",
  "text:sst2"), with dotted-key overrides ({"strong.train.lr": 1e-3})."""
  path, _, arg = spec.partition(":")
  if pathlib.Path(path).is_file():
    config = cli.load_config(spec)
  else:
    try:
      module = importlib.import_module(f"configs.{pathlib.Path(path).stem}")
    except ModuleNotFoundError:
      raise ConfigError(f"config {spec!r} is neither a file nor a shipped config "
                        "(configs/<name>.py)") from None
    config = module.get_config(arg or None)
  for key, value in (overrides or {}).items():
    node = config
    *parents, leaf = key.split(".")
    for part in parents:
      node = node[part]
    if leaf not in node:
      raise ConfigError(f"override {key}: no such key; --help lists them")
    node[leaf] = value
  return config


def run(config: config_dict.ConfigDict | Mapping, seeds: Sequence[int] | None = None):
  """Runs (or reuses) an experiment; its results dict, or a list of them with `seeds`."""
  cfg = config.to_dict() if hasattr(config, "to_dict") else json.loads(json.dumps(config))
  run_one = cli.experiment(cfg)[0]  # weak-to-strong, or measurement tampering detection
  if seeds is None:
    return run_one(cfg)
  return [run_one({**cfg, "seed": int(seed)}) for seed in seeds]


def load_results(path) -> list[dict]:
  """The results of a results.json file, or of every finished run under a workdir."""
  path = pathlib.Path(path)
  files = [path] if path.is_file() else config_lib.results_files(path)
  return [json.loads(f.read_text()) for f in files]


def predictions(results: Mapping, model: str = "student:xent", split: str = "test"
                ) -> np.ndarray:
  """p(y=1) of a trained model of a run ("weak", "ceiling", "student:<method>", or any
  model supervisor's name) on each document of a split (B, val or test); NaN where the
  model could not read the document."""
  if model not in results["phases"]:
    trained = [n for n in results["phases"] if not n.startswith(("pretrain", "probe",
                                                                 "activations"))]
    raise ConfigError(f"no model {model!r} in this run; it has {', '.join(trained)}")
  return phases.predictions(pathlib.Path(results["phases"][model]["dir"]))[split]
