"""Building blocks shared by the model families, each parameter tagged with logical axes."""

from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from w2s_jax.errors import ConfigError

INIT = nn.initializers.normal(stddev=0.02)

def gelu_exact(x):
  """x Φ(x) through erf, as PyTorch computes it; jax.nn.gelu's erfc form is the same
  function (to 1e-6) but costs twice as much on CPU."""
  return 0.5 * x * (1.0 + jax.lax.erf(x * jnp.asarray(0.5 ** 0.5, x.dtype)))


# Hugging Face's activation names (transformers.activations.ACT2FN) that we implement.
ACTIVATIONS = {
    "gelu": gelu_exact,
    "gelu_new": functools.partial(jax.nn.gelu, approximate=True),
    "gelu_fast": functools.partial(jax.nn.gelu, approximate=True),
    "gelu_pytorch_tanh": functools.partial(jax.nn.gelu, approximate=True),
    "quick_gelu": lambda x: x * jax.nn.sigmoid(1.702 * x),
    "relu": jax.nn.relu,
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
}


def check_encoder_input(cfg, length: int) -> None:
  """What an encoder (BERT, MPNet) checks before building: an activation we implement, and
  an input no longer than its position table."""
  if cfg.activation not in ACTIVATIONS:
    raise ConfigError(f"activation {cfg.activation!r} is not supported; supported: "
                      f"{', '.join(ACTIVATIONS)}")
  if length > cfg.max_positions:
    raise ValueError(f"sequence length {length} exceeds max_positions={cfg.max_positions}")


# What a rematerialised layer keeps from its forward pass (the rest is recomputed in the
# backward pass): "full" keeps nothing but the layer's input.
REMAT_POLICIES = {
    "full": None,
    "dots": jax.checkpoint_policies.checkpoint_dots,
    "dots_no_batch": jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims,
    "everything": jax.checkpoint_policies.everything_saveable,
}


def layer_class(block_cls, config):
  """The block module as the config runs it: rematerialised with its policy when
  config.remat (prevent_cse off under scan, where the loop already keeps XLA from merging
  the recomputation back)."""
  if not config.remat:
    return block_cls
  if config.remat_policy not in REMAT_POLICIES:
    raise ValueError(f"remat_policy {config.remat_policy!r} is unknown; choose from "
                     f"{', '.join(REMAT_POLICIES)}")
  return nn.remat(block_cls, policy=REMAT_POLICIES[config.remat_policy],
                  prevent_cse=not config.scan_layers)


def scanned(block_cls, config, length: int, n_broadcast: int, n_scanned: int = 0):
  """`length` copies of a block applied in sequence by one nn.scan: parameters stacked on a
  leading "layers" axis, one compiled body, so compile time stays flat in depth. The block's
  __call__(x, *broadcast, *per_layer) returns (x, None); per-layer inputs are sliced along
  their leading axis."""
  return nn.scan(layer_class(block_cls, config), variable_axes={"params": 0},
                 split_rngs={"params": True},
                 in_axes=(nn.broadcast,) * n_broadcast + (0,) * n_scanned, length=length,
                 metadata_params={nn.PARTITION_NAME: "layers"})


def project(x, kernel, bias, n_in: int, dtype):
  """x · kernel (+ bias) over the last n_in axes of x (the first n_in of kernel), in dtype.

  In float32 a plain tensordot. In a narrower dtype the products accumulate in float32 and
  the kernel's and bias's gradients stay float32 (a hand-written backward pass): XLA's CPU
  backend runs bf16 x bf16 -> f32 dots on its AMX/AVX512-BF16 kernels, but a bf16 -> bf16
  dot, or autodiff's f32 cotangent against a bf16 operand, on a generic path several times
  slower (docs/performance.md).
  """
  if dtype == jnp.float32:
    y = jnp.tensordot(x.astype(dtype), kernel.astype(dtype), axes=n_in)
    return y if bias is None else y + bias.astype(dtype)
  if bias is None:  # a constant zero bias: its gradient is unused, so XLA drops it
    bias = jnp.zeros(kernel.shape[n_in:], jnp.float32)
  return _narrow_project(x.astype(dtype), kernel, bias, n_in)


def _narrow_forward(x, kernel, bias, n_in):
  y = jnp.tensordot(x, kernel.astype(x.dtype), axes=n_in, preferred_element_type=jnp.float32)
  return (y + bias.astype(jnp.float32)).astype(x.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _narrow_project(x, kernel, bias, n_in):
  return _narrow_forward(x, kernel, bias, n_in)


def _narrow_project_fwd(x, kernel, bias, n_in):
  return _narrow_forward(x, kernel, bias, n_in), (x, kernel, bias)


def _narrow_project_bwd(n_in, residuals, grad_y):
  """Gradients of x, the kernel and the bias (summed over the batch axes in float32)."""
  x, kernel, bias = residuals
  grad_y = grad_y.astype(x.dtype)
  n_batch, n_out = x.ndim - n_in, kernel.ndim - n_in
  grad_x = jnp.tensordot(grad_y, kernel.astype(x.dtype),
                         axes=(tuple(range(n_batch, n_batch + n_out)),
                               tuple(range(n_in, n_in + n_out))),
                         preferred_element_type=jnp.float32).astype(x.dtype)
  batch_axes = tuple(range(n_batch))
  grad_kernel = jnp.tensordot(x, grad_y, axes=(batch_axes, batch_axes),
                              preferred_element_type=jnp.float32).astype(kernel.dtype)
  grad_bias = jnp.sum(grad_y, batch_axes, dtype=jnp.float32).astype(bias.dtype)
  return grad_x, grad_kernel, grad_bias


_narrow_project.defvjp(_narrow_project_fwd, _narrow_project_bwd)


def _logical(init, axes: Sequence[str | None]):
  return nn.with_logical_partitioning(init, tuple(axes))


class Projection(nn.Module):
  """x · kernel + bias over the last `n_in` axes of x, with kernel axes (in..., out...).

  With lora_rank > 0 it adds the low-rank update (alpha / rank) · x A B (A [in, rank],
  B [rank, out], B zero-initialised, so training starts exactly from the checkpoint);
  the parameters keep the names "kernel" and "bias" that checkpoints convert to.
  """
  features: tuple[int, ...]
  axes: tuple[str | None, ...]
  n_in: int = 1
  use_bias: bool = True
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  lora_rank: int = 0
  lora_alpha: float = 16.0

  @nn.compact
  def __call__(self, x):
    in_shape = x.shape[x.ndim - self.n_in:]
    kernel = self.param("kernel", _logical(INIT, self.axes), in_shape + self.features,
                        self.param_dtype)
    bias = None
    if self.use_bias:
      bias = self.param("bias", _logical(nn.initializers.zeros_init(), self.axes[self.n_in:]),
                        self.features, self.param_dtype)
    y = project(x, kernel, bias, self.n_in, jnp.dtype(self.dtype))
    if self.lora_rank:
      fan_in, fan_out = math.prod(in_shape), math.prod(self.features)
      # Adapters train while the base may sit in bfloat16: they keep float32 for Adam.
      a = self.param("lora_a", _logical(nn.initializers.lecun_normal(), (None, None)),
                     (fan_in, self.lora_rank), jnp.float32)
      b = self.param("lora_b", _logical(nn.initializers.zeros_init(), (None, None)),
                     (self.lora_rank, fan_out), jnp.float32)
      flat = x.reshape(x.shape[:x.ndim - self.n_in] + (fan_in,)).astype(self.dtype)
      update = (flat @ a.astype(self.dtype)) @ b.astype(self.dtype)
      y = y + (self.lora_alpha / self.lora_rank) * update.reshape(y.shape)
    return y


def lora_options(config, name: str) -> dict:
  """LoRA settings for the projection `name`: the config's rank where it targets `name`
  (an empty lora_targets targets every projection inside the blocks)."""
  targeted = config.lora_rank and (not config.lora_targets or name in config.lora_targets)
  return {"lora_rank": config.lora_rank if targeted else 0, "lora_alpha": config.lora_alpha}


def dense(name: str, features: int, axes: tuple[str, str], dtype, use_bias: bool = True,
          param_dtype=jnp.float32, **lora):
  return Projection((features,), axes, use_bias=use_bias, dtype=dtype,
                    param_dtype=param_dtype, name=name, **lora)


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


def take_positions(x, index):
  """x [batch, length, ...] at one position per row (index [batch]) -> [batch, 1, ...]."""
  index = index.reshape((-1, 1) + (1,) * (x.ndim - 2))
  return jnp.take_along_axis(x, index, axis=1)


def select_output(x, index, last_layer_ran_at_index: bool):
  """The layers' output at one position per row ([batch, d]), or all of x when index is
  None. The last layer ran only at `index` ([batch, 1, d] already) unless the model has no
  layers or runs them under scan (the last one sits inside the stacked loop)."""
  if index is None:
    return x
  return x[:, 0] if last_layer_ran_at_index else take_positions(x, index)[:, 0]


def query_rows(mask, index):
  """The rows of a [batch, 1, q or 1, k] mask for the queries at `index` ([batch])."""
  if mask.shape[2] == 1:
    return mask
  return jnp.take_along_axis(mask, index[:, None, None, None], axis=2)


def attend(q, k, v, mask):
  """Softmax attention. q [batch, q_len, heads, dim], k and v [batch, k_len, kv_heads, dim]
  (grouped-query when kv_heads < heads), mask [batch, 1, q_len or 1, k_len] (True: attend).

  The arithmetic of jax.nn.dot_product_attention's XLA path, written in the
  batch-heads-first layout with an additive mask and a hand-written backward pass: on CPU
  its batched dots run faster than the fused ones autodiff leaves (docs/performance.md).
  Masked logits get a large finite negative, so a row with no real key (a query on
  padding) averages instead of producing NaN.
  """
  batch, q_len, heads, dim = q.shape
  kv_heads = k.shape[2]
  bias = jnp.where(mask, 0.0, -0.7 * float(jnp.finfo(jnp.float32).max))[:, :, None]
  q = jnp.transpose(q.reshape(batch, q_len, kv_heads, heads // kv_heads, dim), (0, 2, 3, 1, 4))
  k, v = jnp.transpose(k, (0, 2, 1, 3)), jnp.transpose(v, (0, 2, 1, 3))
  out = _attention_core(q, k, v, bias, dim ** -0.5)  # [batch, kv_heads, group, q_len, dim]
  return jnp.transpose(out, (0, 3, 1, 2, 4)).reshape(batch, q_len, heads, dim)


def attend_with_position_bias(q, k, v, mask, position_bias):
  """Softmax attention with a trained additive bias on every head's logits (MPNet's relative
  positions): position_bias [batch or 1, heads, q_len, k_len]. Plain autodiff, as the bias
  takes a gradient that `attend`'s hand-written backward pass does not give."""
  dim = q.shape[-1]
  logits = jnp.einsum("bqhd,bkhd->bhqk", q, k, preferred_element_type=jnp.float32)
  logits = logits * dim ** -0.5 + position_bias.astype(jnp.float32)
  logits = jnp.where(mask, logits, -0.7 * float(jnp.finfo(jnp.float32).max))
  probs = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
  return jnp.einsum("bhqk,bkhd->bqhd", probs, v)


def _attention_forward(q, k, v, bias, scale):
  logits = jnp.einsum("bkgqd,bksd->bkgqs", q, k, preferred_element_type=jnp.float32)
  probs = jax.nn.softmax(logits * scale + bias, axis=-1).astype(v.dtype)
  return jnp.einsum("bkgqs,bksd->bkgqd", probs, v), probs


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def _attention_core(q, k, v, bias, scale):
  return _attention_forward(q, k, v, bias, scale)[0]


def _attention_core_fwd(q, k, v, bias, scale):
  out, probs = _attention_forward(q, k, v, bias, scale)
  return out, (q, k, v, probs, out)


def _attention_core_bwd(scale, residuals, grad_out):
  q, k, v, probs, out = residuals
  f32 = jnp.float32
  grad_v = jnp.einsum("bkgqs,bkgqd->bksd", probs, grad_out)
  grad_probs = jnp.einsum("bkgqd,bksd->bkgqs", grad_out, v, preferred_element_type=f32)
  # softmax's backward: sum_s p * dp equals sum_d out * d_out (one pass over [q, dim])
  row_sums = jnp.sum(grad_out.astype(f32) * out.astype(f32), axis=-1, keepdims=True)
  grad_logits = (probs.astype(f32) * (grad_probs - row_sums) * scale).astype(q.dtype)
  grad_q = jnp.einsum("bkgqs,bksd->bkgqd", grad_logits, k)
  grad_k = jnp.einsum("bkgqs,bkgqd->bksd", grad_logits, q)
  return grad_q, grad_k, grad_v, None  # the mask's bias takes no gradient


_attention_core.defvjp(_attention_core_fwd, _attention_core_bwd)


class Attention(nn.Module):
  """Multi-head attention with separate q/k/v projections (sharded over heads), for models
  with absolute positions (GPT-2, BERT).

  Keys get no bias even where the checkpoint has one: q·b_k is the same for every key of a
  query, so softmax cancels it. Its gradient is zero up to rounding noise, which Adam would
  blow up into lr-sized updates that differ between device layouts. (Not so under RoPE,
  where the bias is rotated by position: see llama.py.)

  With `query_index` ([batch]) only that position of each row is a query: the output is
  [batch, 1, d_model] (a classifier's last layer needs no other).
  """
  config: Any  # a family config: n_heads, d_model, dtype, param_dtype, lora_*

  @nn.compact
  def __call__(self, x, mask, query_index=None, position_bias=None):
    """position_bias: an additive bias on the logits, [heads, q_len, k_len] (MPNet)."""
    cfg = self.config
    dtype, pdtype = jnp.dtype(cfg.dtype), jnp.dtype(cfg.param_dtype)
    heads, head_dim = cfg.n_heads, cfg.d_model // cfg.n_heads

    def project(name, use_bias, inputs):
      return Projection((heads, head_dim), ("embed", "heads", "kv"), use_bias=use_bias,
                        dtype=dtype, param_dtype=pdtype, name=name,
                        **lora_options(cfg, name))(inputs)

    if query_index is not None:
      queries, mask = take_positions(x, query_index), query_rows(mask, query_index)
    else:
      queries = x
    q, k, v = project("q", True, queries), project("k", False, x), project("v", True, x)
    if position_bias is None:
      out = attend(q, k, v, mask)
    else:
      bias = position_bias[None]
      if query_index is not None:  # each row's query position: [batch, heads, 1, k_len]
        bias = jnp.transpose(position_bias[:, query_index], (1, 0, 2))[:, :, None]
      out = attend_with_position_bias(q, k, v, mask, bias)
    return Projection((x.shape[-1],), ("heads", "kv", "embed"), n_in=2, dtype=dtype,
                      param_dtype=pdtype, name="o", **lora_options(cfg, "o"))(out)
