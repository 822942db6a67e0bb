import itertools

import numpy as np
import pytest

from w2s_jax import metrics


def brute_force_auroc(scores, labels):
  pos = [s for s, y in zip(scores, labels) if y]
  neg = [s for s, y in zip(scores, labels) if not y]
  wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
  return wins / (len(pos) * len(neg))


def test_auroc_with_ties_matches_pairwise_count():
  rng = np.random.default_rng(0)
  scores = rng.integers(0, 5, size=60) / 4.0  # many ties
  labels = rng.integers(0, 2, size=60)
  assert metrics.auroc(scores, labels) == pytest.approx(brute_force_auroc(scores, labels))


def test_auroc_extremes_and_one_class():
  assert metrics.auroc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
  assert metrics.auroc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
  assert np.isnan(metrics.auroc([0.1, 0.2], [1, 1]))


def test_pgr_and_its_undefined_case():
  assert metrics.pgr(0.85, 0.8, 0.9) == pytest.approx(0.5)
  assert metrics.pgr(0.75, 0.8, 0.9) == pytest.approx(-0.5)
  assert metrics.pgr(0.8, 0.8, 0.8) is None
  assert metrics.pgr(0.8, 0.85, 0.8) is None


def test_accuracy_agreement_interval():
  assert metrics.accuracy([0.9, 0.4, 0.6], [1, 0, 0]) == pytest.approx(2 / 3)
  assert metrics.agreement([0.9, 0.4, 0.6], [0.7, 0.45, 0.1]) == pytest.approx(2 / 3)
  low, high = metrics.accuracy_interval(0.8, 1000)
  assert low < 0.8 < high and high - low == pytest.approx(0.0496, abs=1e-3)


def test_pgr_report_interval_and_significance():
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 2, size=2000)
  def predictions(accuracy):
    right = rng.random(2000) < accuracy
    return np.where(right == labels.astype(bool), 0.9, 0.1)
  weak, ceiling, student = predictions(0.7), predictions(0.9), predictions(0.8)
  report = metrics.pgr_report(student, weak, ceiling, labels)
  acc = {k: metrics.accuracy(v, labels) for k, v in
         (("w", weak), ("c", ceiling), ("s", student))}
  assert report["pgr"] == pytest.approx((acc["s"] - acc["w"]) / (acc["c"] - acc["w"]))
  low, high = report["pgr_ci95"]
  assert low < report["pgr"] < high and high - low < 0.3
  assert report["gain_over_weak"] == pytest.approx(acc["s"] - acc["w"])


def test_pgr_is_undefined_when_the_ceiling_gap_is_noise():
  labels = np.array([0, 1] * 1000)
  weak = np.where(np.arange(2000) % 5 == 0, 1 - labels, labels).astype(float)  # 80%
  ceiling = weak.copy()
  ceiling[[0, 10]] = labels[[0, 10]]  # two more right: +0.001, far inside the noise
  report = metrics.pgr_report(weak, weak, ceiling, labels)
  assert report["ceiling_gap"] == pytest.approx(0.001)
  assert report["pgr"] is None and report["pgr_ci95"] is None


def test_misfit_brier_and_agreement_kappas_by_hand():
  assert metrics.misfit([0.2, 0.8], [0.5, 0.5]) == pytest.approx(0.09)
  assert metrics.brier([0.9, 0.2], [1, 0]) == pytest.approx((0.01 + 0.04) / 2)
  # CAPA: observed (0.9*0.8 + 0.1*0.2 + 0.2*0.4 + 0.8*0.6) / 2 = 0.65; mean probability on
  # the right answer 0.85 and 0.7, so chance 0.85*0.7 + 0.15*0.3 = 0.64
  assert metrics.capa([0.9, 0.2], [0.8, 0.4], [1, 0]) == pytest.approx(0.01 / 0.36)
  labels = np.array([1, 1, 1, 1])
  right_a, right_b = np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0])
  assert metrics.error_consistency(right_a * 0.8 + 0.1, right_b * 0.8 + 0.1, labels) == 0.0
  assert metrics.error_consistency(right_a * 0.8 + 0.1, right_a * 0.6 + 0.2, labels) == 1.0
  assert metrics.error_consistency(labels * 0.9, labels * 0.9, labels) is None  # never wrong
  # the same probabilities agree more than chance; independent coins do not
  p = np.random.default_rng(0).random(2000)
  y = np.random.default_rng(1).random(2000) < p
  assert metrics.capa(p, p, y) > 0.2
  assert abs(metrics.capa(p, np.random.default_rng(2).random(2000), y)) < 0.05


def test_the_misfit_bound_holds_for_a_least_squares_student_on_fixed_features():
  """Charikar, Pai & Kim's setting: the truth is linear in the strong features, the student
  is the least-squares fit of those features to the weak labels (a projection onto a convex
  class), so its squared error is at most the weak model's minus the misfit."""
  rng = np.random.default_rng(0)
  features = rng.normal(size=(500, 6))
  truth = 1 / (1 + np.exp(-features @ rng.normal(size=6)))
  for noise in (0.05, 0.2, 0.4):
    weak = np.clip(truth + rng.normal(scale=noise, size=500), 0, 1)
    basis = np.concatenate([features, truth[:, None]], 1)  # the class holds the truth
    student = basis @ np.linalg.lstsq(basis, weak, rcond=None)[0]
    gain = metrics.misfit(weak, truth) - metrics.misfit(student, truth)
    assert gain >= metrics.misfit(student, weak) - 1e-12


def test_soft_cross_entropy_by_hand_and_its_minimum_at_the_target():
  assert metrics.soft_cross_entropy([0.8], [1.0]) == pytest.approx(-np.log(0.8))
  assert metrics.soft_cross_entropy([0.5, 0.5], [0.2, 0.9]) == pytest.approx(np.log(2))
  target = np.array([0.3, 0.45, 0.1])
  grid = [metrics.soft_cross_entropy(target + d, target) for d in (-0.05, 0.0, 0.05)]
  assert grid[1] < min(grid[0], grid[2])


def test_validation_against_a_one_class_supervisor_prefers_agreeing_params():
  # A weak model stuck below 0.5 on val: AUROC against its hard labels is undefined, so
  # validation must still rank params (closer to its soft labels is better), not fail.
  from types import SimpleNamespace

  from w2s_jax.phases import classifier
  supervisor_p = np.array([0.45, 0.40, 0.48, np.nan, 0.30])
  to_logits = lambda p: np.stack([np.zeros_like(p), np.log(p / (1 - p))], axis=1)
  c = SimpleNamespace(logits_on=lambda ctx, predict, params, split: to_logits(params))
  score = classifier._validation_score(None, "strong", c, supervisor_p, predict=None)
  agreeing = np.where(np.isnan(supervisor_p), 0.5, supervisor_p)
  confident = np.full(5, 0.9)
  assert np.isfinite(score(agreeing)) and score(agreeing) > score(confident)
  # A two-class supervisor keeps AUROC.
  two_class = np.array([0.2, 0.7, 0.4, 0.9])
  auroc = classifier._validation_score(None, "strong", c, two_class, predict=None)
  assert auroc(np.array([0.1, 0.6, 0.3, 0.8])) == 1.0
