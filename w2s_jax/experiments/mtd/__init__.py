"""Measurement tampering detection (MTD) on the pipeline's machinery.

The strong model is fine-tuned to predict every measurement and their conjunction (one head
each, read at the last token) on trusted and untrusted training examples; the detection
methods (methods.py) score the untrusted test examples whose measurements are all
positive, and the metric is the AUROC of real against fake positives (data/mtd.py).
Every model and probe is a cached phase; run.run writes results.json."""

from w2s_jax.experiments import base
from w2s_jax.experiments.mtd import measurements, methods, run, tables


def sweep_variants(cfg) -> list[tuple[dict, dict]]:
  """One run per strong size (sweep.strong, default all sizes)."""
  _, chosen = base.sweep_sizes(cfg, "strong")
  return [({"strong": s}, {"strong": cfg["sizes"][s]}) for s in chosen["strong"]]


EXPERIMENT = base.Experiment(
    name="mtd", validate=run.validate, run=run.run, run_table=tables.run_table,
    seeds_table=tables.seeds_table, sweep_variants=sweep_variants, report=tables.report,
    result_keys=("seed", "task", "names", "methods", "n"))

__all__ = ["EXPERIMENT", "measurements", "methods", "run", "tables"]
