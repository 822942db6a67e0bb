"""Evaluation metrics on host numpy arrays of p(y=1) and 0/1 ground truth.

AUROC is computed here (rank statistic, ties averaged) rather than pulling in scikit-learn
for one function.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def accuracy(p_pos: np.ndarray, labels: np.ndarray) -> float:
  return float(np.mean((np.asarray(p_pos) > 0.5) == np.asarray(labels).astype(bool)))


def accuracy_interval(acc: float, n: int, z: float = 1.96) -> tuple[float, float]:
  """Wilson score interval (95% by default) for an accuracy measured on n examples."""
  if n == 0:
    return (float("nan"), float("nan"))
  denom = 1 + z * z / n
  centre = (acc + z * z / (2 * n)) / denom
  half = z * math.sqrt(acc * (1 - acc) / n + z * z / (4 * n * n)) / denom
  return (centre - half, centre + half)


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
  """Area under the ROC curve = P(score of a positive > score of a negative), ties count 1/2."""
  scores = np.asarray(scores, np.float64)
  labels = np.asarray(labels).astype(bool)
  n_pos, n_neg = int(labels.sum()), int((~labels).sum())
  if n_pos == 0 or n_neg == 0:
    return float("nan")
  _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
  first_rank = np.cumsum(counts) - counts + 1  # 1-based rank of each distinct value's first
  average_rank = first_rank + (counts - 1) / 2.0
  ranks = average_rank[inverse]
  return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def soft_cross_entropy(p_pos: np.ndarray, target_p_pos: np.ndarray, eps: float = 1e-7) -> float:
  """Mean binary cross-entropy of predictions p_pos against soft targets (nats)."""
  p = np.clip(np.asarray(p_pos, np.float64), eps, 1 - eps)
  t = np.asarray(target_p_pos, np.float64)
  return float(-np.mean(t * np.log(p) + (1 - t) * np.log1p(-p)))


def agreement(p_a: np.ndarray, p_b: np.ndarray) -> float:
  """Fraction of examples on which two models' hard predictions agree."""
  return float(np.mean((np.asarray(p_a) > 0.5) == (np.asarray(p_b) > 0.5)))


def pgr(student: float, weak: float, ceiling: float) -> float | None:
  """Performance gap recovered; None (undefined) when the ceiling does not beat the weak model."""
  if not ceiling > weak:
    return None
  return (student - weak) / (ceiling - weak)


def paired_gap(correct_a: np.ndarray, correct_b: np.ndarray, z: float = 1.96):
  """Accuracy of a minus accuracy of b on the same examples, with a normal 95% interval on
  the per-example differences (paired, so shared easy/hard examples cancel)."""
  diff = np.asarray(correct_a, np.float64) - np.asarray(correct_b, np.float64)
  half = z * diff.std(ddof=1) / math.sqrt(len(diff)) if len(diff) > 1 else float("nan")
  return float(diff.mean()), [float(diff.mean() - half), float(diff.mean() + half)]


def pgr_report(p_student, p_weak, p_ceiling, labels, *, n_boot: int = 1000, seed: int = 0):
  """PGR on accuracy with a paired bootstrap 95% interval over test examples.

  PGR is reported as undefined (None) unless the ceiling beats the weak model significantly
  (the 95% interval of their paired gap excludes 0): a ratio over a gap that is within noise
  is noise.
  """
  labels = np.asarray(labels).astype(bool)
  correct = {name: (np.asarray(p) > 0.5) == labels
             for name, p in (("student", p_student), ("weak", p_weak), ("ceiling", p_ceiling))}
  gap, gap_ci = paired_gap(correct["ceiling"], correct["weak"])
  gain, gain_ci = paired_gap(correct["student"], correct["weak"])
  report = {"gain_over_weak": gain, "gain_over_weak_ci95": gain_ci, "ceiling_gap": gap,
            "ceiling_gap_ci95": gap_ci, "pgr": None, "pgr_ci95": None}
  if not gap_ci[0] > 0:
    return report
  acc = {name: c.mean() for name, c in correct.items()}
  report["pgr"] = pgr(acc["student"], acc["weak"], acc["ceiling"])
  idx = np.random.default_rng(seed).integers(0, len(labels), size=(n_boot, len(labels)))
  boot = {name: c[idx].mean(1) for name, c in correct.items()}
  ok = boot["ceiling"] > boot["weak"]
  ratios = (boot["student"][ok] - boot["weak"][ok]) / (boot["ceiling"][ok] - boot["weak"][ok])
  report["pgr_ci95"] = [float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))]
  return report


def summarize(p_pos: np.ndarray, labels: np.ndarray) -> dict:
  acc = accuracy(p_pos, labels)
  low, high = accuracy_interval(acc, len(labels))
  return {"accuracy": acc, "accuracy_ci95": [low, high], "auroc": auroc(p_pos, labels),
          "n": int(len(labels))}


def mean_std(values: Sequence[float | None]) -> tuple[float, float, int] | None:
  """(mean, sample std (ddof=1; 0 for one value), number undefined) of the defined values."""
  defined = [v for v in values if v is not None]
  if not defined:
    return None
  std = float(np.std(defined, ddof=1)) if len(defined) > 1 else 0.0
  return float(np.mean(defined)), std, len(values) - len(defined)


def t_interval95(values: Sequence[float]) -> tuple[float, float] | None:
  """A t interval for the mean of several seeds' values (None for fewer than two)."""
  if len(values) < 2:
    return None
  import scipy.stats  # 0.7 s to import: only when a report is written
  half = scipy.stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(
      len(values))
  return float(np.mean(values) - half), float(np.mean(values) + half)


# ---------------------------------------------------------------- diagnostics of a run

def brier(p_pos: np.ndarray, labels: np.ndarray) -> float:
  """Mean squared error of p(y=1) against the 0/1 labels."""
  return float(np.mean((np.asarray(p_pos, np.float64) - np.asarray(labels, np.float64)) ** 2))


def misfit(p_student: np.ndarray, p_supervisor: np.ndarray) -> float:
  """E[(p_student - p_supervisor)^2]: how far the student lands from the labels it was fit
  to (Charikar, Pai & Kim 2024). For squared loss over a convex class containing the truth,
  the student's squared error is at most its supervisor's minus this."""
  diff = np.asarray(p_student, np.float64) - np.asarray(p_supervisor, np.float64)
  return float(np.mean(diff ** 2))


def _kappa(observed: float, expected: float) -> float | None:
  return None if expected >= 1.0 else float((observed - expected) / (1.0 - expected))


def error_consistency(p_a: np.ndarray, p_b: np.ndarray, labels: np.ndarray) -> float | None:
  """Geirhos et al. (2020): how much more often two models are right or wrong on the same
  examples than two independent models of their accuracies would be (a kappa; None when
  both are always right)."""
  labels = np.asarray(labels).astype(bool)
  right_a, right_b = (np.asarray(p_a) > 0.5) == labels, (np.asarray(p_b) > 0.5) == labels
  acc_a, acc_b = right_a.mean(), right_b.mean()
  return _kappa(float(np.mean(right_a == right_b)),
                float(acc_a * acc_b + (1 - acc_a) * (1 - acc_b)))


def capa(p_a: np.ndarray, p_b: np.ndarray, labels: np.ndarray) -> float | None:
  """Chance-adjusted probabilistic agreement (Goel et al. 2025), two classes: the agreement
  of the two models' output distributions, sum_o p_a(o|x) p_b(o|x) averaged over examples,
  against what two independent models with the same mean probability on the right answer
  would reach by chance."""
  p_a, p_b = np.asarray(p_a, np.float64), np.asarray(p_b, np.float64)
  labels = np.asarray(labels).astype(bool)
  observed = float(np.mean(p_a * p_b + (1 - p_a) * (1 - p_b)))
  right_a = float(np.mean(np.where(labels, p_a, 1 - p_a)))
  right_b = float(np.mean(np.where(labels, p_b, 1 - p_b)))
  return _kappa(observed, right_a * right_b + (1 - right_a) * (1 - right_b))
