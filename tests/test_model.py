"""The decoder classifier: masks decide what is read, never the pad id."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from w2s_jax import models, train

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


def test_attention_matches_the_reference_in_outputs_and_gradients():
  """The hand-written attention (and its backward pass) against jax.nn.dot_product_attention
  differentiated by JAX: grouped-query heads, causal and padding masks, a fully masked row
  (finite, and, like every query on padding, read by nothing downstream: no loss weight)."""
  from w2s_jax.models import _layers
  rng = np.random.default_rng(0)
  q = jnp.asarray(rng.standard_normal((3, 6, 4, 8)), jnp.float32)
  k, v = (jnp.asarray(rng.standard_normal((3, 6, 2, 8)), jnp.float32) for _ in range(2))
  attention_mask = jnp.asarray([[1] * 6, [1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1]])
  weights = jnp.asarray(rng.standard_normal((3, 6, 4, 8)), jnp.float32)
  weights = weights * attention_mask[:, :, None, None]
  for mask in (_layers.causal_mask(attention_mask), _layers.padding_mask(attention_mask)):
    def loss(fn, *qkv, mask=mask):
      return (fn(*qkv, mask) * weights).sum()
    ours = jax.value_and_grad(lambda *a: loss(_layers.attend, *a), argnums=(0, 1, 2))(q, k, v)
    reference = jax.value_and_grad(
        lambda *a: loss(lambda q, k, v, m: jax.nn.dot_product_attention(q, k, v, mask=m), *a),
        argnums=(0, 1, 2))(q, k, v)
    out = _layers.attend(q, k, v, mask)
    assert np.isfinite(out).all()  # row 2's first query sees no real key
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(reference)):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_exact_gelu_matches_pytorch():
  torch = __import__("pytest").importorskip("torch")
  from w2s_jax.models import _layers
  x = np.linspace(-10, 10, 20001, dtype=np.float32)
  expected = torch.nn.functional.gelu(torch.from_numpy(x)).numpy()
  np.testing.assert_allclose(_layers.ACTIVATIONS["gelu"](jnp.asarray(x)), expected, atol=3e-6)


def test_initialiser_compiled_for_speed_gives_the_default_compiles_values():
  """train.init_state compiles the initialiser with its own options on a CPU; the
  parameters must be those of the default compile, or seeds would stop reproducing."""
  model = models.build_classifier({**CFG, "lora_rank": 2}, head_init_std=0.02)
  ids = np.ones((2, 8), np.int32)
  init = jax.jit(lambda rng: model.init(rng, ids, np.ones_like(ids))["params"])
  options = train.initialiser_compiler_options(jax.default_backend())
  # XLA's own defaults, stated: the suite compiles with optimisations off (conftest.py)
  production = {"xla_backend_optimization_level": 3, "xla_llvm_disable_expensive_passes": False}
  default = init.lower(jax.random.key(5)).compile(compiler_options=production)(
      jax.random.key(5))
  fast = init.lower(jax.random.key(5)).compile(compiler_options=options)(jax.random.key(5))
  for a, b in zip(jax.tree.leaves(default), jax.tree.leaves(fast)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
