"""The Python API: run experiments, read their results and predictions.

  import w2s_jax
  cfg = w2s_jax.load_config("configs/default.py", {"student.losses": "xent,logconf"})
  results = w2s_jax.run(cfg)                       # or run(cfg, seeds=[0, 1, 2])
  runs = w2s_jax.load_results("runs")              # every finished run of a workdir
  p = w2s_jax.predictions(results, "student:xent") # p(y=1) on each test document
  d = w2s_jax.diagnostics(results)                 # misfit, similarity, salience
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, Mapping, Sequence

import numpy as np
from ml_collections import config_dict

from w2s_jax import experiments, phases
from w2s_jax.core import compile_cache, config_files, paths
from w2s_jax.errors import ConfigError
from w2s_jax.train import StopRequest


def load_config(spec: str, overrides: Mapping[str, Any] | None = None
                ) -> config_dict.ConfigDict:
  """A config from "path/to/file.py[:arg]" or a shipped config's name ("default",
  "text:sst2"), with dotted-key overrides ({"strong.train.lr": 1e-3})."""
  return config_files.load(spec, overrides)


def run(config: config_dict.ConfigDict | Mapping, seeds: Sequence[int] | None = None,
        stop: StopRequest | None = None):
  """Runs (or reuses) an experiment, weak-to-strong or measurement tampering detection as
  its `experiment` key says; its results dict, or a list of them with `seeds`. Compiled
  programs are cached under the run's workdir (unless JAX_COMPILATION_CACHE_DIR names a
  folder)."""
  cfg = config.to_dict() if hasattr(config, "to_dict") else json.loads(json.dumps(config))
  experiment = experiments.of_config(cfg)
  compile_cache.use_workdir_cache(paths.workdir(cfg))
  if seeds is None:
    return experiment.run(cfg, stop)
  return [experiment.run({**cfg, "seed": int(seed)}, stop) for seed in seeds]


def diagnostics(results: Mapping) -> dict:
  """A weak-to-strong run's diagnostics (experiments/w2s/diagnostics.py): {"similarity":
  {capa, error_consistency} of the weak model and the ceiling, "salience": the strong
  model's frozen features read by a probe on a few labels (None when not measured),
  "students": {method: {misfit_B, misfit_test, brier_gain_test, misfit_bound_held}}}."""
  if "diagnostics" not in results:
    raise ConfigError("these results have no diagnostics: they come from a measurement "
                      "tampering run or from a version before diagnostics; rerun the config "
                      "(its phases are reused)")
  return {**results["diagnostics"],
          "students": {m: s["diagnostics"] for m, s in results["students"].items()}}


def load_results(path) -> list[dict]:
  """The results of a results.json file, or of every finished run under a workdir."""
  path = pathlib.Path(path)
  files = [path] if path.is_file() else paths.results_files(path)
  return [json.loads(f.read_text()) for f in files]


def predictions(results: Mapping, model: str = "student:xent", split: str = "test"
                ) -> np.ndarray:
  """p(y=1) of a trained model of a run ("weak", "ceiling", "student:<method>", or any
  model supervisor's name) on each document of a split (B, val or test); NaN where the
  model could not read the document."""
  if model not in results["phases"]:
    trained = [n for n in results["phases"] if not n.startswith(("pretrain", "probe",
                                                                 "features", "students"))]
    raise ConfigError(f"no model {model!r} in this run; it has {', '.join(trained)}")
  return phases.predictions(pathlib.Path(results["phases"][model]["dir"]))[split]
