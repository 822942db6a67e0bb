"""Weak-to-strong generalisation: a weak model's labels train a strong student, measured
against the weak model and the strong ceiling (PGR)."""

from w2s_jax.experiments import base
from w2s_jax.experiments.w2s import config, run, supervisors, tables

EXPERIMENT = base.Experiment(
    name="w2s", validate=config.validate, run=run.run, run_table=tables.run_table,
    seeds_table=tables.seeds_table, sweep_variants=config.sweep_variants,
    report=tables.report,
    result_keys=("seed", "task", "names", "weak", "ceiling", "students", "config_hash"))

__all__ = ["EXPERIMENT", "config", "run", "supervisors", "tables"]
