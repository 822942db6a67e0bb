"""Layers under nn.scan, and rematerialised layers, compute what the unrolled layers do."""

import functools

import flax.linen as nn
import flax.traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests import helpers
from w2s_jax import models
from w2s_jax.models import bert, gpt2, llama

FAMILIES = {
    "gpt2": (gpt2, dict(arch="gpt2", vocab_size=50, n_positions=16, d_model=32, n_layers=3,
                        n_heads=4, d_mlp=64)),
    # sliding windows on some layers: the per-layer input of the scan
    "llama": (llama, dict(arch="llama", vocab_size=50, d_model=32, n_layers=3, n_heads=4,
                          n_kv_heads=2, d_mlp=64, max_positions=16, sliding_window=3,
                          sliding_layers=(0, 2))),
    "bert": (bert, dict(arch="bert", vocab_size=50, d_model=32, n_layers=3, n_heads=4,
                        d_mlp=64, max_positions=16)),
}


def batch():
  rng = np.random.default_rng(0)
  ids = rng.integers(1, 50, size=(3, 12)).astype(np.int32)
  mask = (np.arange(12)[None] < np.array([12, 7, 4])[:, None]).astype(np.int32)
  return jnp.asarray(ids), jnp.asarray(mask)


def to_scanned(params, family):
  """Unrolled per-layer parameters (h_0, h_1, ...) stacked as nn.scan keeps them."""
  prefix, scan_name = family.LAYER_NAMES
  flat = flax.traverse_util.flatten_dict(params)
  out, layers = {}, {}
  for path, value in flat.items():
    if path[0].startswith(prefix) and path[0][len(prefix):].isdigit():
      layers.setdefault((scan_name, *path[1:]), {})[int(path[0][len(prefix):])] = value
    else:
      out[path] = value
  for path, per_layer in layers.items():
    out[path] = jnp.stack([per_layer[i] for i in sorted(per_layer)])
  return flax.traverse_util.unflatten_dict(out)


def outputs_and_grads(module, params, ids, mask):
  weights = jax.random.normal(jax.random.key(1), (3, 12, 32))

  def loss(p):
    out = module.apply({"params": p}, ids, mask)
    return (out * weights).sum(), out
  (_, out), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)
  return out, grads


@pytest.mark.parametrize("name", FAMILIES)
def test_scanned_and_rematerialised_layers_match_unrolled(name):
  family, cfg = FAMILIES[name]
  ids, mask = batch()
  unrolled = models.build_backbone(cfg)
  params = helpers.init_params(unrolled, ids, mask)
  expected, expected_grads = outputs_and_grads(unrolled, params, ids, mask)
  variants = [dict(scan_layers=True)]
  if name == "gpt2":  # remat is the same code in every family
    variants += [dict(scan_layers=True, remat=True, remat_policy="dots"),
                 dict(remat=True, remat_policy="full")]
  for variant in variants:
    module = models.build_backbone({**cfg, **variant})
    ours = to_scanned(params, family) if variant.get("scan_layers") else params
    assert jax.tree.structure(ours) == jax.tree.structure(nn.meta.unbox(
        jax.eval_shape(module.init, jax.random.key(0), ids, mask)["params"]))
    out, grads = outputs_and_grads(module, ours, ids, mask)
    # float32 rounding of a different summation order: relative, for gradients of ~100
    np.testing.assert_allclose(out, expected, rtol=2e-5, atol=1e-5, err_msg=str(variant))
    want = to_scanned(expected_grads, family) if variant.get("scan_layers") else expected_grads
    for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(want)):  # relative to the scale
      assert np.abs(a - b).max() <= 1e-5 * max(np.abs(b).max(), 1.0), variant


@pytest.mark.parametrize("name", FAMILIES)
def test_pooled_position_alone_in_the_last_layer_matches_the_full_pass(name):
  """A classifier pooling one position runs its last layer at that position only: the
  same pooled state and gradients as the full pass pooled afterwards (left and right
  padding, under scan too, where the full pass is kept)."""
  family, cfg = FAMILIES[name]
  cfg = {**cfg, "qk_norm": True} if name == "llama" else cfg
  ids, mask = batch()
  left_padded = jnp.asarray(np.flip(np.asarray(mask), 1))
  backbone = models.build_backbone(cfg)
  params = helpers.init_params(backbone, ids, mask)
  weights = jax.random.normal(jax.random.key(1), (3, 32))

  @functools.partial(jax.jit, static_argnums=(0, 3, 4))  # one program per variant, not per op
  def pooled_and_grads(module, params, mask, how, index_path):
    def loss(p):
      if index_path:
        out = models.classifier.pooled_hidden(module.bind({"params": p}), ids, mask, how)
      else:
        out = models.pool(module.apply({"params": p}, ids, mask), mask, how)
      return (out * weights).sum(), out
    (_, out), grads = jax.value_and_grad(loss, has_aux=True)(params)
    return out, grads

  for how in ("last", "first"):
    for m in (mask, left_padded):
      expected, expected_grads = pooled_and_grads(backbone, params, m, how, False)
      out, grads = pooled_and_grads(backbone, params, m, how, True)
      np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6, err_msg=how)
      for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(expected_grads)):
        assert np.abs(a - b).max() <= 1e-5 * max(np.abs(b).max(), 1.0), how
  scanned = models.build_backbone({**cfg, "scan_layers": True})
  out, _ = pooled_and_grads(scanned, to_scanned(params, family), mask, "last", True)
  expected, _ = pooled_and_grads(backbone, params, mask, "last", False)
  np.testing.assert_allclose(out, expected, rtol=2e-5, atol=1e-5)
  no_layers = models.build_backbone({**cfg, "n_layers": 0})  # a probe on the embeddings
  params = helpers.init_params(no_layers, ids, mask)
  out, _ = pooled_and_grads(no_layers, params, mask, "last", True)
  expected, _ = pooled_and_grads(no_layers, params, mask, "last", False)
  np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
