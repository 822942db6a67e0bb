"""An MTD experiment: pretraining (cached), the measurement predictors, every method in
mtd.methods, scored on the test split by real-vs-fake AUROC; results go to
`<workdir>/results/<config hash>/results.json` like a weak-to-strong run's."""

from __future__ import annotations

import pathlib
import time
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from w2s_jax import checkpoints, config as config_lib, phases, pipeline, sharding
from w2s_jax import report
from w2s_jax.data import mtd as mtd_data, vault
from w2s_jax.errors import ConfigError
from w2s_jax.mtd import measurements, methods as methods_lib

EXPERIMENT = "mtd"


def method_names(cfg: Mapping) -> list[str]:
  names = [n.strip() for n in str(cfg["mtd"]["methods"]).split(",") if n.strip()]
  unknown = [n for n in names if n not in methods_lib.METHODS]
  if not names or unknown:
    raise ConfigError(f"mtd.methods: {'unknown ' + ', '.join(unknown) if unknown else 'empty'}"
                      f"; choose from {', '.join(methods_lib.METHODS)}")
  return list(dict.fromkeys(names))


def validate(cfg: Mapping) -> None:
  """Raises ConfigError naming the first bad key and what it may be."""
  config_lib.check_finite(cfg)
  if cfg["task"]["name"] != "vault":
    raise ConfigError(f"task.name={cfg['task']['name']!r}: MTD experiments run on the vault "
                      "task; start from --config=configs/mtd.py")
  for key in ("task.n_docs", "task.n_test", "eval_batch_size"):
    config_lib.check_positive(cfg, key)
  vault.make_vault(cfg["task"])
  config_lib.check_model_section(cfg, "strong")
  method_names(cfg)
  weight = cfg["mtd"]["aggregate_weight"]
  if not 0.0 < weight < 1.0:
    raise ConfigError(f"mtd.aggregate_weight={weight} must be between 0 and 1 (exclusive)")


def run(cfg: Mapping[str, Any]) -> dict:
  """Runs (or reuses) every phase for a resolved config dict; writes and returns results."""
  validate(cfg)
  start = time.time()
  workdir = pathlib.Path(cfg["workdir"])
  if jax.process_index() == 0:
    pipeline.check_workdir(workdir)
  pipeline.use_compilation_cache(workdir)
  ctx = phases.Context(cfg=cfg, workdir=workdir, mesh=sharding.make_mesh(cfg["mesh"]),
                       splits=vault.load_splits(cfg["task"], cfg["seed"]))
  pipeline.check_batch_sizes(cfg, ctx.mesh, ["strong"])
  if phases.pretraining(cfg, "strong"):
    phases.pretrain_phase(ctx, "strong")
  test = vault.to_examples(vault.make_vault(cfg["task"]), ctx.splits["test"])
  results_by_method = {}
  for name in method_names(cfg):
    scores = methods_lib.METHODS[name](ctx)
    results_by_method[name] = {"real_vs_fake_auroc": mtd_data.real_vs_fake_auroc(scores, test)}
  fits = {variant: _measurement_fit(ctx, variant) for variant in measurements.VARIANTS
          if f"mtd:{variant}" in ctx.phases}
  counted = ~test.trusted & test.all_positive
  train = ctx.splits["train"]
  results = {
      "experiment": EXPERIMENT, "config_hash": config_lib.results_hash(cfg),
      "seed": cfg["seed"], "task": cfg["task"]["name"],
      "names": {"strong": pipeline.model_name(cfg, "strong")}, "methods": results_by_method,
      "n": {"train": int(len(train["latent"])), "train_trusted": int(train["trusted"].sum()),
            "test": len(test), "test_real_positive": int((counted & (test.latent == 1)).sum()),
            "test_fake_positive": int((counted & (test.latent == 0)).sum())},
      "categories": {split: dict(zip(vault.CATEGORIES, np.bincount(
          arrays["category"], minlength=len(vault.CATEGORIES)).tolist()))
          for split, arrays in ctx.splits.items()},
      "measurement_fit": fits, "phases": ctx.phases, "wall_s": time.time() - start,
  }
  if jax.process_index() == 0:
    out = config_lib.results_folder(cfg)
    checkpoints.write_json(out / "config.json", cfg)
    results["results_file"] = str(out / "results.json")
    checkpoints.write_json(out / "results.json", results)
  return results


def _measurement_fit(ctx, variant: str) -> dict:
  """How well a measurement predictor predicts the test split's measurements: accuracy of
  the conjunction head and of each measurement's head."""
  logits = measurements.outputs(measurements.measurement_phase(ctx, variant))["logits_test"]
  observed = np.asarray(ctx.splits["test"]["measurements"], bool)
  targets = np.concatenate([observed.all(1)[:, None], observed], 1)
  accuracy = ((logits > 0) == targets).mean(0)
  return {"all_positive_accuracy": float(accuracy[0]),
          "measurement_accuracy": [float(a) for a in accuracy[1:]]}


def run_table(result: Mapping) -> str:
  n = result["n"]
  lines = [f"MTD seed {result['seed']} ({result['names']['strong']}): real-vs-fake AUROC on "
           f"{n['test_real_positive']} real and {n['test_fake_positive']} fake positives",
           f"{'method':<16} {'AUROC':>7}"]
  lines += [f"{name:<16} {m['real_vs_fake_auroc']:>7.3f}"
            for name, m in result["methods"].items()]
  for variant, fit in result["measurement_fit"].items():
    sensors = ", ".join(f"{a:.3f}" for a in fit["measurement_accuracy"])
    lines.append(f"{variant} model's test accuracy: all positive "
                 f"{fit['all_positive_accuracy']:.3f}; each measurement {sensors}")
  return "\n".join(lines)


def seeds_table(results: Sequence[Mapping]) -> str:
  lines = [f"over seeds {', '.join(str(r['seed']) for r in results)}: real-vs-fake AUROC "
           "mean ± std", f"{'method':<16} {'AUROC':>15}"]
  for name in results[0]["methods"]:
    values = [r["methods"][name]["real_vs_fake_auroc"] for r in results]
    mean, std, _ = report.mean_std(values)
    lines.append(f"{name:<16} {mean:>7.3f} ± {std:.3f}")
  return "\n".join(lines)
