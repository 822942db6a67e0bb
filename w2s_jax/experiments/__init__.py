"""Kinds of experiment, each owning its config checks, its run and its tables: the registry
that the command line, the sweep, the report and the Python API choose from by the config's
`experiment` key (default "w2s")."""

from __future__ import annotations

from typing import Mapping

from w2s_jax.errors import ConfigError
from w2s_jax.experiments import mtd, w2s
from w2s_jax.experiments.base import Experiment, ReportSection

EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (w2s.EXPERIMENT, mtd.EXPERIMENT)}
DEFAULT = "w2s"


def get(name: str) -> Experiment:
  if name not in EXPERIMENTS:
    raise ConfigError(f"experiment={name!r} is unknown; choose from {', '.join(EXPERIMENTS)}")
  return EXPERIMENTS[name]


def of_config(cfg: Mapping) -> Experiment:
  """The kind of experiment a config runs."""
  return get(cfg.get("experiment", DEFAULT))


def of_results(results: Mapping) -> Experiment:
  """The kind of experiment that wrote a results.json."""
  return get(results.get("experiment", DEFAULT))


__all__ = ["DEFAULT", "EXPERIMENTS", "Experiment", "ReportSection", "get", "of_config",
           "of_results"]
