"""Table helpers every kind of experiment uses: cells, mean ± std text, and what a run's
setting is (its config without seed, students and names)."""

from __future__ import annotations

from typing import Mapping, Sequence

from w2s_jax import metrics
from w2s_jax.core import paths


def mean_std_text(values: Sequence[float | None]) -> str:
  summary = metrics.mean_std(values)
  if summary is None:
    return "undef"
  mean, std, undefined = summary
  return f"{mean:.3f} ± {std:.3f}" + (f" ({undefined} undef)" if undefined else "")


def setting_of(config: Mapping) -> dict:
  """What a run computed apart from its seed and the students it ran: runs of one setting
  differ only in seed."""
  skip = {*paths.NOT_IN_RESULTS_KEY, "seed", "student", "names"}
  return {k: v for k, v in config.items() if k not in skip}


def flatten(node, prefix=""):
  if isinstance(node, Mapping):
    out = {}
    for key, value in node.items():
      out.update(flatten(value, f"{prefix}{key}."))
    return out
  return {prefix[:-1]: node}


def cell(mean, std=None, digits=3) -> str:
  if mean is None:
    return "undef"
  return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")
