"""Building blocks shared by the model families, each parameter tagged with logical axes."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

INIT = nn.initializers.normal(stddev=0.02)


def _logical(init, axes: Sequence[str | None]):
  return nn.with_logical_partitioning(init, tuple(axes))


def dense(name: str, features: int, axes: tuple[str, str], dtype, use_bias: bool = True,
          param_dtype=jnp.float32):
  return nn.Dense(
      features, use_bias=use_bias, dtype=dtype, param_dtype=param_dtype, name=name,
      kernel_init=_logical(INIT, axes),
      bias_init=_logical(nn.initializers.zeros_init(), (axes[-1],)))


def embed(name: str, num: int, features: int, axes=("vocab", "embed"), param_dtype=jnp.float32):
  return nn.Embed(num, features, name=name, param_dtype=param_dtype,
                  embedding_init=_logical(INIT, axes))


def layer_norm(name: str, eps: float, dtype, param_dtype=jnp.float32):
  return nn.LayerNorm(
      epsilon=eps, dtype=dtype, param_dtype=param_dtype, name=name,
      scale_init=_logical(nn.initializers.ones_init(), ("norm",)),
      bias_init=_logical(nn.initializers.zeros_init(), ("norm",)))


def causal_mask(attention_mask):
  """[batch, 1, q, k] boolean mask: causal and only real (attention_mask == 1) keys."""
  length = attention_mask.shape[-1]
  causal = jnp.tril(jnp.ones((length, length), dtype=bool))
  return causal[None, None] & attention_mask.astype(bool)[:, None, None, :]


def padding_mask(attention_mask):
  """[batch, 1, 1, k] boolean mask for bidirectional encoders: only real keys."""
  return attention_mask.astype(bool)[:, None, None, :]


class Attention(nn.Module):
  """Multi-head attention with separate q/k/v projections (sharded over heads), for models
  with absolute positions (GPT-2, BERT).

  Keys get no bias even where the checkpoint has one: q·b_k is the same for every key of a
  query, so softmax cancels it. Its gradient is zero up to rounding noise, which Adam would
  blow up into lr-sized updates that differ between device layouts. (Not so under RoPE,
  where the bias is rotated by position: see llama.py.)
  """
  n_heads: int
  head_dim: int
  dtype: jnp.dtype
  use_bias: bool = True
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, mask):
    def project(name, use_bias):
      return nn.DenseGeneral(
          (self.n_heads, self.head_dim), use_bias=use_bias, dtype=self.dtype,
          param_dtype=self.param_dtype, name=name,
          kernel_init=_logical(INIT, ("embed", "heads", "kv")),
          bias_init=_logical(nn.initializers.zeros_init(), ("heads", "kv")))(x)
    q = project("q", self.use_bias)
    k = project("k", False)
    v = project("v", self.use_bias)
    out = jax.nn.dot_product_attention(q, k, v, mask=mask)
    return nn.DenseGeneral(
        x.shape[-1], axis=(-2, -1), use_bias=self.use_bias, dtype=self.dtype,
        param_dtype=self.param_dtype, name="o",
        kernel_init=_logical(INIT, ("heads", "kv", "embed")),
        bias_init=_logical(nn.initializers.zeros_init(), ("embed",)))(out)
