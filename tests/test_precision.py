"""bfloat16 compute: the projections' products accumulate in float32, their gradients equal
float32 autodiff up to bfloat16 rounding, and the kernel's and bias's gradients stay float32."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from w2s_jax.models import _layers


def operands(n_in: int, seed: int = 0):
  """x [3, 5, in...], kernel [in..., out...], bias [out...] with out (4,) or (2, 3)."""
  rng = np.random.default_rng(seed)
  in_shape, out_shape = ((6,), (4,)) if n_in == 1 else ((2, 3), (5,))
  x = rng.normal(size=(3, 5, *in_shape)).astype(np.float32)
  kernel = rng.normal(size=(*in_shape, *out_shape)).astype(np.float32)
  bias = rng.normal(size=out_shape).astype(np.float32)
  # Values bfloat16 holds exactly, so only the products' rounding differs from float32.
  def exact(a):
    return np.asarray(jnp.asarray(a, jnp.bfloat16).astype(jnp.float32))
  return exact(x), exact(kernel), exact(bias)


@pytest.mark.parametrize("n_in", [1, 2])
@pytest.mark.parametrize("with_bias", [True, False])
def test_a_bfloat16_projection_has_float32_autodiff_gradients(n_in, with_bias):
  x, kernel, bias = operands(n_in)
  bias = bias if with_bias else None

  def loss(dtype):
    def of(x, kernel, bias):
      y = _layers.project(x, kernel, bias, n_in, jnp.dtype(dtype))
      return jnp.sum(jnp.sin(y.astype(jnp.float32)))
    return of

  ref_value, ref_grads = jax.value_and_grad(loss("float32"), argnums=(0, 1, 2))(
      x, kernel, bias)
  value, grads = jax.value_and_grad(loss("bfloat16"), argnums=(0, 1, 2))(x, kernel, bias)
  np.testing.assert_allclose(value, ref_value, rtol=0.03, atol=0.1)
  for got, want in zip(grads, ref_grads):
    if want is None:
      assert got is None
      continue
    assert got.dtype == np.float32  # the float32 master copy's gradient, never rounded
    scale = np.abs(want).max()
    np.testing.assert_allclose(got, want, atol=0.03 * scale)


def dots(jaxpr):
  """Every dot_general equation of a jaxpr, nested ones (custom_vjp, pjit) included."""
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == "dot_general":
      yield eqn
    for param in eqn.params.values():
      inner = getattr(param, "jaxpr", param)
      if hasattr(inner, "eqns"):
        yield from dots(inner)


@pytest.mark.parametrize("n_in", [1, 2])
def test_every_dot_of_a_bfloat16_projection_multiplies_bfloat16_into_float32(n_in):
  # bf16 x bf16 -> f32 is the product XLA's CPU backend runs on its AMX/AVX512-BF16
  # kernels; a bf16 result, or an f32 operand beside a bf16 one, takes a slower path.
  x, kernel, bias = operands(n_in)

  def loss(x, kernel, bias):
    return jnp.sum(_layers.project(x, kernel, bias, n_in, jnp.dtype("bfloat16")) ** 2)

  jaxpr = jax.make_jaxpr(jax.grad(loss, argnums=(0, 1, 2)))(x, kernel, bias).jaxpr
  found = list(dots(jaxpr))
  assert len(found) == 3  # forward, and the gradients of x and of the kernel
  for eqn in found:
    assert [v.aval.dtype for v in eqn.invars] == [jnp.bfloat16] * 2, eqn
    assert eqn.params["preferred_element_type"] == jnp.float32, eqn
