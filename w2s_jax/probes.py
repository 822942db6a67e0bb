"""Probes on frozen activations that relabel or filter a supervisor's soft labels.

Pure numpy/JAX functions over (activations [n, d], soft labels p(y=1) [n]), following
EleutherAI/w2s: kNN (mean label of the k nearest neighbours, the point itself included),
L2-regularised logistic regression (L-BFGS from zero), and TopoCC (Hu et al. 2023: keep
each class's largest strongly connected component of the kNN graph, then drop the points
whose labels are farthest from their neighbours' mean).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

PROBES = ("knn", "logreg", "topo")
MODES = ("relabel", "filter")


def nearest(x0: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
  """Indices [len(x), k] of the k nearest rows of x0 to each row of x (Euclidean), computed
  in chunks so memory stays at chunk × len(x0)."""
  k = min(k, len(x0))
  x0 = np.asarray(x0, np.float32)
  sq0 = (x0 * x0).sum(1)
  out = np.empty((len(x), k), np.int64)
  for start in range(0, len(x), 1024):
    chunk = np.asarray(x[start:start + 1024], np.float32)
    dist = (chunk * chunk).sum(1)[:, None] - 2 * chunk @ x0.T + sq0[None]
    part = np.argpartition(dist, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(dist, part, 1).argsort(1, kind="stable")
    out[start:start + len(chunk)] = np.take_along_axis(part, order, 1)
  return out


def knn_predict(x0, y0, x, *, k: int = 50) -> np.ndarray:
  """Mean soft label of each point's k nearest neighbours in (x0, y0)."""
  return np.asarray(y0, np.float64)[nearest(x0, x, k)].mean(1)


def logreg_fit(x, y, *, l2: float = 1e-3, max_iter: int = 1000):
  """(w, b) minimising mean BCE(x·w + b, y) + l2 ‖w‖², soft targets y, by L-BFGS from zero."""
  x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)

  def objective(params):
    logits = x @ params["w"] + params["b"]
    return optax.sigmoid_binary_cross_entropy(logits, y).mean() + l2 * jnp.sum(params["w"] ** 2)

  solver = optax.lbfgs()
  value_and_grad = optax.value_and_grad_from_state(objective)

  @jax.jit
  def run(params):
    def step(carry):
      params, state, _ = carry
      value, grad = value_and_grad(params, state=state)
      updates, state = solver.update(grad, state, params, value=value, grad=grad,
                                     value_fn=objective)
      return optax.apply_updates(params, updates), state, optax.tree.norm(grad)

    def going(carry):
      _, state, grad_norm = carry
      return (optax.tree.get(state, "count") < max_iter) & (grad_norm > 1e-6)

    init = (params, solver.init(params), jnp.asarray(jnp.inf))
    return jax.lax.while_loop(going, step, init)[0]

  params = run({"w": jnp.zeros(x.shape[1]), "b": jnp.zeros(())})
  return np.asarray(params["w"]), float(params["b"])


def logreg_predict(w, b, x) -> np.ndarray:
  return 1.0 / (1.0 + np.exp(-(np.asarray(x, np.float64) @ w + b)))


def topo_cc(x, y, *, k: int = 50) -> np.ndarray:
  """Mask of the points in their class's largest strongly connected component of the
  directed kNN graph (neighbours found among all points, edges kept within a class)."""
  n = len(x)
  neighbours = nearest(x, x, min(k + 1, n))[:, 1:]  # the nearest is the point itself
  positive = np.asarray(y) > 0.5
  rows = np.repeat(np.arange(n), neighbours.shape[1])
  cols = neighbours.ravel()
  same = positive[rows] == positive[cols]
  graph = csr_matrix((np.ones(same.sum(), bool), (rows[same], cols[same])), shape=(n, n))
  _, component = connected_components(graph, directed=True, connection="strong")
  keep = np.zeros(n, bool)
  for cls in (False, True):
    members = positive == cls
    if members.any():
      largest = np.bincount(component[members]).argmax()
      keep |= members & (component == largest)
  return keep


def topo_filter(x, y, *, contamination: float = 0.1, k_cc: int = 50,
                k_zeta: int = 50) -> np.ndarray:
  """Mask of the points TopoCC keeps: its components first, then as many of the points
  farthest from their neighbours' mean label as bring the removed fraction to
  `contamination` (none more if the components already removed that many)."""
  y = np.asarray(y, np.float64)
  kept = np.flatnonzero(topo_cc(x, y, k=k_cc))
  neighbours = nearest(x[kept], x[kept], min(k_zeta + 1, len(kept)))[:, 1:]
  distance = np.abs(y[kept] - y[kept][neighbours].mean(1))
  n_more = max(round(len(x) * contamination) - (len(x) - len(kept)), 0)
  keep = np.zeros(len(x), bool)
  keep[kept[np.argsort(-distance, kind="stable")[n_more:]]] = True
  return keep


def topo_label(x0, y0, x, *, k_cc: int = 50, k_zeta: int = 50) -> np.ndarray:
  """Each point's mean label over its k_zeta nearest neighbours among the TopoCC components
  of (x0, y0)."""
  kept = topo_cc(x0, y0, k=k_cc)
  return knn_predict(x0[kept], np.asarray(y0)[kept], x, k=k_zeta)


def disagreement_filter(predicted, labels, contamination: float) -> np.ndarray:
  """Mask dropping the `contamination` fraction of points whose probe prediction and label
  differ most."""
  disagreement = np.abs(np.asarray(predicted) - np.asarray(labels))
  keep = np.ones(len(disagreement), bool)
  keep[np.argsort(-disagreement, kind="stable")[:math.floor(contamination * len(keep))]] = False
  return keep
