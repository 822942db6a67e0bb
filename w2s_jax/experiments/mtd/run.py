"""An MTD experiment: pretraining (cached), the measurement predictors, every method in
mtd.methods, scored on the test split by real-vs-fake AUROC; results go to
`<workdir>/results/<config hash>/results.json` like a weak-to-strong run's."""

from __future__ import annotations

import time
from typing import Any, Mapping

import numpy as np

from w2s_jax import phases, train
from w2s_jax.core import parsing, paths, validation
from w2s_jax.data import mtd as mtd_data
from w2s_jax.data import vault
from w2s_jax.errors import ConfigError
from w2s_jax.experiments import base
from w2s_jax.experiments.mtd import measurements
from w2s_jax.experiments.mtd import methods as methods_lib


def method_names(cfg: Mapping) -> list[str]:
  names = parsing.names(cfg["mtd"]["methods"])
  unknown = [n for n in names if n not in methods_lib.METHODS]
  if not names or unknown:
    raise ConfigError(f"mtd.methods: {'unknown ' + ', '.join(unknown) if unknown else 'empty'}"
                      f"; choose from {', '.join(methods_lib.METHODS)}")
  return list(dict.fromkeys(names))


def validate(cfg: Mapping) -> None:
  """Raises ConfigError naming the first bad key and what it may be."""
  validation.check_finite(cfg)
  if cfg["task"]["name"] != "vault":
    raise ConfigError(f"task.name={cfg['task']['name']!r}: MTD experiments run on the vault "
                      "task; start from --config=configs/mtd.py")
  for key in ("task.n_docs", "task.n_test", "eval_batch_size"):
    validation.check_positive(cfg, key)
  vault.make_vault(cfg["task"])
  base.check_model_section(cfg, "strong")
  base.check_host_memory(cfg, ["strong"])
  method_names(cfg)
  weight = cfg["mtd"]["aggregate_weight"]
  if not 0.0 < weight < 1.0:
    raise ConfigError(f"mtd.aggregate_weight={weight} must be between 0 and 1 (exclusive)")


def run(cfg: Mapping[str, Any], stop: train.StopRequest | None = None) -> dict:
  """Runs (or reuses) every phase for a resolved config dict; writes and returns results."""
  validate(cfg)
  base.check_checkpoints_at_hand(cfg, ["strong"])
  start = time.time()
  cfg = base.with_inputs(cfg)
  ctx = base.start(cfg, lambda: vault.load_splits(cfg["task"], cfg["seed"]), ["strong"], stop)
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
  train_split = ctx.splits["train"]
  results = {
      "experiment": "mtd", "config_hash": paths.results_hash(cfg),
      "seed": cfg["seed"], "task": cfg["task"]["name"],
      "names": {"strong": base.model_name(cfg, "strong")}, "methods": results_by_method,
      "n": {"train": int(len(train_split["latent"])),
            "train_trusted": int(train_split["trusted"].sum()),
            "test": len(test), "test_real_positive": int((counted & (test.latent == 1)).sum()),
            "test_fake_positive": int((counted & (test.latent == 0)).sum())},
      "categories": {split: dict(zip(vault.CATEGORIES, np.bincount(
          arrays["category"], minlength=len(vault.CATEGORIES)).tolist()))
          for split, arrays in ctx.splits.items()},
      "measurement_fit": fits, "phases": ctx.phases, "wall_s": time.time() - start,
  }
  return base.write_results(cfg, results)


def _measurement_fit(ctx, variant: str) -> dict:
  """How well a measurement predictor predicts the test split's measurements: accuracy of
  the conjunction head and of each measurement's head."""
  logits = measurements.outputs(measurements.measurement_phase(ctx, variant))["logits_test"]
  observed = np.asarray(ctx.splits["test"]["measurements"], bool)
  targets = np.concatenate([observed.all(1)[:, None], observed], 1)
  accuracy = ((logits > 0) == targets).mean(0)
  return {"all_positive_accuracy": float(accuracy[0]),
          "measurement_accuracy": [float(a) for a in accuracy[1:]]}


