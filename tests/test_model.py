"""The decoder classifier: masks decide what is read, never the pad id."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from w2s_jax import models

CFG = dict(arch="gpt2", vocab_size=50, n_positions=16, d_model=16, n_layers=2, n_heads=2,
           d_mlp=32)


def init(model, ids, mask):
  return nn.meta.unbox(model.init(jax.random.key(0), ids, mask)["params"])


def random_head(params):
  """The head is zero-initialised; give it weights so the logits depend on the input."""
  head = jax.tree.map(lambda x: jax.random.normal(jax.random.key(1), x.shape), params["head"])
  return {**params, "head": head}


def test_pad_id_and_padding_length_do_not_change_logits():
  model = models.build_classifier(CFG)
  ids = np.array([[5, 0, 7, 9, 0, 0, 0, 0]], np.int32)  # id 0 is a real token here
  mask = np.array([[1, 1, 1, 1, 0, 0, 0, 0]], np.int32)
  params = random_head(init(model, ids, mask))
  base = model.apply({"params": params}, ids, mask)
  other_pad = np.where(mask == 1, ids, 42).astype(np.int32)
  np.testing.assert_allclose(model.apply({"params": params}, other_pad, mask), base, atol=1e-6)
  short = model.apply({"params": params}, ids[:, :4], mask[:, :4])
  np.testing.assert_allclose(short, base, atol=1e-5)


def test_last_token_pooling_reads_the_last_real_token():
  hidden = jnp.arange(2 * 5 * 3, dtype=jnp.float32).reshape(2, 5, 3)
  mask = jnp.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
  pooled = models.pool(hidden, mask, "last")
  np.testing.assert_array_equal(pooled, jnp.stack([hidden[0, 2], hidden[1, 4]]))
  mean = models.pool(hidden, mask, "mean")
  np.testing.assert_allclose(mean[0], hidden[0, :3].mean(0))


def test_causal_attention_ignores_later_tokens():
  backbone = models.build_backbone(CFG)
  ids = np.array([[3, 4, 5, 6], [3, 4, 9, 9]], np.int32)
  mask = np.ones_like(ids)
  params = backbone.init(jax.random.key(0), ids, mask)["params"]
  hidden = backbone.apply({"params": params}, ids, mask)
  np.testing.assert_allclose(hidden[0, :2], hidden[1, :2], atol=1e-6)
  assert not np.allclose(hidden[0, 2], hidden[1, 2])


def test_parameters_carry_logical_axis_names():
  model = models.build_classifier(CFG)
  ids = np.ones((1, 4), np.int32)
  boxed = model.init(jax.random.key(0), ids, np.ones_like(ids))["params"]
  specs = nn.get_partition_spec(boxed)
  assert tuple(specs["backbone"]["wte"]["embedding"]) == ("vocab", "embed")
  assert tuple(specs["backbone"]["h_0"]["attn"]["q"]["kernel"]) == ("embed", "heads", "kv")
  assert tuple(specs["backbone"]["h_1"]["c_fc"]["kernel"]) == ("embed", "mlp")
  assert tuple(specs["head"]["kernel"]) == ("embed", "classes")
  unnamed = [s for s in jax.tree.leaves(specs, is_leaf=lambda x: x is None) if not s]
  assert not unnamed, "every parameter needs logical axis names"
