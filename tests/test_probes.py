"""Probes on a separable toy set: they recover labels that were flipped, and filter them."""

import numpy as np
import pytest

from w2s_jax import probes


@pytest.fixture
def toy():
  """Two well-separated clusters labelled by cluster; 10% of the labels flipped."""
  rng = np.random.default_rng(0)
  truth = np.repeat([0, 1], 100)
  x = rng.normal(size=(200, 4)) + np.where(truth[:, None] == 1, 3.0, -3.0)
  flipped = np.zeros(200, bool)
  flipped[rng.choice(200, 20, replace=False)] = True
  labels = np.where(flipped, 1 - truth, truth).astype(np.float64)
  return x, labels, truth, flipped


def test_knn_relabels_the_flipped_points(toy):
  x, labels, truth, flipped = toy
  predicted = probes.knn_predict(x, labels, x, k=15)
  assert ((predicted > 0.5) == truth).all()
  assert labels[flipped].tolist() != truth[flipped].tolist()


def test_knn_is_the_mean_label_of_the_nearest_points():
  x0 = np.array([[0.0], [1.0], [2.0], [10.0]])
  y0 = np.array([1.0, 0.0, 0.5, 1.0])
  np.testing.assert_allclose(probes.knn_predict(x0, y0, np.array([[0.9], [9.0]]), k=2),
                             [0.5, 0.75])  # {1, 0} -> .5; {10, 2} -> (1 + .5) / 2


def test_logistic_regression_relabels_the_flipped_points(toy):
  x, labels, truth, _ = toy
  w, b = probes.logreg_fit(x, labels, l2=1e-3)
  assert ((probes.logreg_predict(w, b, x) > 0.5) == truth).all()


def test_topo_components_leave_out_an_isolated_point():
  rng = np.random.default_rng(1)
  x = np.concatenate([rng.normal(size=(30, 2)), rng.normal(size=(30, 2)) + 8, [[40.0, 40.0]]])
  y = np.array([0.0] * 30 + [1.0] * 31)  # the far point is a positive no positive points to
  keep = probes.topo_cc(x, y, k=15)
  assert keep[:60].mean() > 0.9 and not keep[60]


def test_topo_filter_removes_the_flipped_points(toy):
  x, labels, truth, flipped = toy
  keep = probes.topo_filter(x, labels, contamination=0.1, k_cc=10, k_zeta=10)
  assert (~keep).sum() >= 20  # at least the contamination fraction is gone
  assert (~keep[flipped]).mean() >= 0.9
  assert ((labels[keep] > 0.5) == truth[keep]).mean() >= 0.98


def test_topo_label_relabels_the_flipped_points(toy):
  x, labels, truth, _ = toy
  assert ((probes.topo_label(x, labels, x, k_cc=10, k_zeta=10) > 0.5) == truth).all()


def test_disagreement_filter_drops_the_contamination_fraction_that_disagrees_most():
  predicted = np.array([0.9, 0.1, 0.5, 0.8, 0.2])
  labels = np.array([1.0, 1.0, 0.0, 0.0, 0.0])  # disagreement .1, .9, .5, .8, .2
  keep = probes.disagreement_filter(predicted, labels, contamination=0.4)
  np.testing.assert_array_equal(keep, [True, False, True, False, True])
