"""The Llama architecture in Flax linen: Llama 2/3, Qwen2/2.5, Qwen3 and Mistral.

The differences between those families are options here: grouped-query attention
(n_kv_heads), RoPE scaling (default, linear, llama3), tied embeddings, q/k/v biases (Qwen2),
per-head q/k RMSNorm (Qwen3), and a sliding attention window (Mistral v0.1).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Iterator, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from w2s_jax.errors import ConfigError
from w2s_jax.models import _layers

ROPE_TYPES = ("default", "linear", "llama3")


@dataclasses.dataclass(frozen=True)
class LlamaConfig:
  vocab_size: int = 32000
  d_model: int = 4096
  n_layers: int = 32
  n_heads: int = 32
  n_kv_heads: int = 8
  head_dim: int = 0  # 0: d_model // n_heads
  d_mlp: int = 14336
  rms_norm_eps: float = 1e-5
  rope_theta: float = 10000.0
  rope_type: str = "default"
  rope_factor: float = 1.0
  rope_low_freq_factor: float = 1.0
  rope_high_freq_factor: float = 4.0
  rope_original_max_positions: int = 8192
  max_positions: int = 8192
  tie_embeddings: bool = False
  attention_bias: bool = False  # Qwen2: biases on q, k and v
  mlp_bias: bool = False  # biases on gate, up and down
  activation: str = "silu"  # a name in _layers.ACTIVATIONS
  qk_norm: bool = False  # Qwen3: RMSNorm over each head of q and k
  sliding_window: int = 0  # 0: full causal attention
  sliding_layers: tuple[int, ...] = ()  # layers that use the window; () with a window: all
  dtype: str = "float32"
  param_dtype: str = "float32"
  remat: bool = False
  remat_policy: str = "full"  # a name in _layers.REMAT_POLICIES
  scan_layers: bool = False  # blocks under nn.scan ("blocks", stacked) instead of layers_<i>
  lora_rank: int = 0  # > 0: low-rank adapters on the block projections (lora_targets)
  lora_alpha: float = 16.0
  lora_targets: tuple[str, ...] = ()  # () = q, k, v, o, gate, up, down

  @property
  def attention_head_dim(self) -> int:
    return self.head_dim or self.d_model // self.n_heads


def rope_frequencies(cfg: LlamaConfig) -> np.ndarray:
  """Inverse frequencies [head_dim / 2] of the rotary embedding, with the config's scaling."""
  dim = cfg.attention_head_dim
  inv_freq = 1.0 / cfg.rope_theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim)
  if cfg.rope_type == "default":
    return inv_freq
  if cfg.rope_type == "linear":
    return inv_freq / cfg.rope_factor
  if cfg.rope_type == "llama3":  # Llama 3.1: long wavelengths slowed, a smooth ramp between
    low_wavelen = cfg.rope_original_max_positions / cfg.rope_low_freq_factor
    high_wavelen = cfg.rope_original_max_positions / cfg.rope_high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    scaled = np.where(wavelen > low_wavelen, inv_freq / cfg.rope_factor, inv_freq)
    smooth = ((cfg.rope_original_max_positions / wavelen - cfg.rope_low_freq_factor)
              / (cfg.rope_high_freq_factor - cfg.rope_low_freq_factor))
    blended = (1 - smooth) * scaled / cfg.rope_factor + smooth * scaled
    medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
    return np.where(medium, blended, scaled)
  raise ConfigError(f"rope_type {cfg.rope_type!r} is not supported; supported: "
                    f"{', '.join(ROPE_TYPES)}")


def apply_rope(x, positions, inv_freq):
  """Rotates [batch, length, heads, dim] by position, in the half-split layout HF uses."""
  angles = positions[:, :, None].astype(jnp.float32) * jnp.asarray(inv_freq, jnp.float32)
  angles = jnp.concatenate([angles, angles], axis=-1)[:, :, None, :]
  x32 = x.astype(jnp.float32)
  first, second = jnp.split(x32, 2, axis=-1)
  rotated = jnp.concatenate([-second, first], axis=-1)
  return (x32 * jnp.cos(angles) + rotated * jnp.sin(angles)).astype(x.dtype)


class RMSNorm(nn.Module):
  eps: float
  dtype: Any
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    scale = self.param("scale", nn.with_logical_partitioning(nn.initializers.ones_init(),
                                                             ("norm",)),
                       (x.shape[-1],), self.param_dtype)
    x32 = x.astype(jnp.float32)
    normed = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
    return scale.astype(self.dtype) * normed.astype(self.dtype)


class Attention(nn.Module):
  config: LlamaConfig

  @nn.compact
  def __call__(self, x, mask, positions, query_index=None):
    """With `query_index` ([batch]) only that position of each row is a query (output
    [batch, 1, d_model])."""
    cfg = self.config
    dtype, pdtype = jnp.dtype(cfg.dtype), jnp.dtype(cfg.param_dtype)
    head_dim = cfg.attention_head_dim

    def project(name, heads, axes, inputs):
      return _layers.Projection((heads, head_dim), ("embed",) + axes,
                                use_bias=cfg.attention_bias, dtype=dtype, param_dtype=pdtype,
                                name=name, **_layers.lora_options(cfg, name))(inputs)

    queries, query_positions = x, positions
    if query_index is not None:
      queries = _layers.take_positions(x, query_index)
      query_positions = _layers.take_positions(positions, query_index)
      mask = _layers.query_rows(mask, query_index)
    q = project("q", cfg.n_heads, ("heads", "kv"), queries)
    k = project("k", cfg.n_kv_heads, ("kv_heads", "kv"), x)
    v = project("v", cfg.n_kv_heads, ("kv_heads", "kv"), x)
    if cfg.qk_norm:
      q = RMSNorm(cfg.rms_norm_eps, dtype, pdtype, name="q_norm")(q)
      k = RMSNorm(cfg.rms_norm_eps, dtype, pdtype, name="k_norm")(k)
    inv_freq = rope_frequencies(cfg)
    q, k = apply_rope(q, query_positions, inv_freq), apply_rope(k, positions, inv_freq)
    out = _layers.attend(q, k, v, mask)
    return _layers.Projection((x.shape[-1],), ("heads", "kv", "embed"), n_in=2, use_bias=False,
                              dtype=dtype, param_dtype=pdtype, name="o",
                              **_layers.lora_options(cfg, "o"))(out)


class Block(nn.Module):
  config: LlamaConfig

  @nn.compact
  def __call__(self, x, full_mask, windowed_mask, positions, in_window, query_index=None):
    """query_index ([batch]): compute only that position of each row -> [batch, 1, d]."""
    cfg = self.config
    mask = jnp.where(in_window, windowed_mask, full_mask)
    dtype, pdtype = jnp.dtype(cfg.dtype), jnp.dtype(cfg.param_dtype)
    h = RMSNorm(cfg.rms_norm_eps, dtype, pdtype, name="input_norm")(x)
    if query_index is not None:
      x = _layers.take_positions(x, query_index)
    x = x + Attention(cfg, name="attn")(h, mask, positions, query_index)
    h = RMSNorm(cfg.rms_norm_eps, dtype, pdtype, name="post_attention_norm")(x)
    def mlp(name, features, axes, h):
      return _layers.dense(name, features, axes, dtype, cfg.mlp_bias, pdtype,
                           **_layers.lora_options(cfg, name))(h)
    activation = _layers.ACTIVATIONS[cfg.activation]
    gated = activation(mlp("gate", cfg.d_mlp, ("embed", "mlp"), h)) * mlp(
        "up", cfg.d_mlp, ("embed", "mlp"), h)
    out = x + mlp("down", cfg.d_model, ("mlp", "embed"), gated)
    return (out, None) if cfg.scan_layers else out


class Llama(nn.Module):
  """Returns final hidden states [batch, length, d_model] (after the final norm), or with
  `output_index` ([batch]) those at one position per row, [batch, d_model]."""
  config: LlamaConfig

  def setup(self):
    cfg = self.config
    self.embed_tokens = _layers.embed("embed_tokens", cfg.vocab_size, cfg.d_model,
                                      param_dtype=jnp.dtype(cfg.param_dtype))
    if cfg.scan_layers:  # the masks and positions are shared; in_window is per layer
      self.blocks = _layers.scanned(Block, cfg, cfg.n_layers, n_broadcast=3, n_scanned=1)(
          cfg, name="blocks")
    else:
      block = _layers.layer_class(Block, cfg)
      self.blocks = [block(cfg, name=f"layers_{i}") for i in range(cfg.n_layers)]
    self.norm = RMSNorm(cfg.rms_norm_eps, jnp.dtype(cfg.dtype), jnp.dtype(cfg.param_dtype))
    if not cfg.tie_embeddings:
      self.lm_head = _layers.dense("lm_head", cfg.vocab_size, ("embed", "vocab"), jnp.float32,
                                   False, jnp.dtype(cfg.param_dtype))

  def __call__(self, input_ids, attention_mask, output_index=None):
    cfg = self.config
    x = self.embed_tokens(input_ids).astype(jnp.dtype(cfg.dtype))
    full = _layers.causal_mask(attention_mask)
    windowed = full
    length = input_ids.shape[1]
    if cfg.sliding_window:
      offsets = jnp.arange(length)[:, None] - jnp.arange(length)[None, :]
      windowed = full & (offsets < cfg.sliding_window)[None, None]
    positions = jnp.broadcast_to(jnp.arange(length)[None], input_ids.shape)
    in_window = jnp.array([bool(cfg.sliding_window) and (not cfg.sliding_layers
                                                         or i in cfg.sliding_layers)
                           for i in range(cfg.n_layers)])
    if cfg.scan_layers:
      x, _ = self.blocks(x, full, windowed, positions, in_window)
    else:
      for i, block in enumerate(self.blocks):
        x = block(x, full, windowed, positions, in_window[i],
                  output_index if i == cfg.n_layers - 1 else None)
    last_ran_at_index = not cfg.scan_layers and cfg.n_layers > 0
    return self.norm(_layers.select_output(x, output_index, last_ran_at_index))

  def logits(self, hidden):
    if self.config.tie_embeddings:
      return self.embed_tokens.attend(hidden.astype(jnp.float32))
    return self.lm_head(hidden.astype(jnp.float32))


# ---------------------------------------------------------------- Hugging Face checkpoints

HF_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3")
LAYER_NAMES = ("layers_", "blocks")  # a layer's parameters unrolled (layers_<i>) and under scan
# HF options this module does not implement: option -> which values it cannot honour.
UNSUPPORTED_OPTIONS = {
    "hidden_act": lambda v: v not in _layers.ACTIVATIONS,
    "attn_logit_softcapping": lambda v: v is not None,
    "final_logit_softcapping": lambda v: v is not None,
}
# Tensors a checkpoint may hold that no backbone parameter reads: old RoPE buffers and a
# saved copy of a tied LM head.
IGNORED_TENSORS = (r"rotary_emb\.inv_freq$", r"^lm_head\.weight$")


def config_from_hf(hf: Mapping[str, Any], **overrides) -> LlamaConfig:
  rope = dict(hf.get("rope_parameters") or {})  # transformers v5 layout
  if not rope:  # v4 layout: rope_theta beside an optional rope_scaling dict
    rope = {"rope_theta": hf.get("rope_theta", 10000.0), **(hf.get("rope_scaling") or {})}
  rope_type = rope.get("rope_type", rope.get("type", "default"))
  n_heads = hf["num_attention_heads"]
  use_window = hf.get("use_sliding_window")
  if use_window is None:  # Mistral configs leave it out and mean yes
    use_window = hf.get("model_type") == "mistral"
  layer_types = hf.get("layer_types") or []
  sliding_layers = tuple(i for i, t in enumerate(layer_types) if t == "sliding_attention")
  if layer_types and not sliding_layers:
    use_window = False
  cfg = LlamaConfig(**{**dict(
      vocab_size=hf["vocab_size"], d_model=hf["hidden_size"], n_layers=hf["num_hidden_layers"],
      n_heads=n_heads, n_kv_heads=hf.get("num_key_value_heads") or n_heads,
      head_dim=hf.get("head_dim") or hf["hidden_size"] // n_heads,
      d_mlp=hf["intermediate_size"], rms_norm_eps=hf.get("rms_norm_eps", 1e-6),
      rope_theta=rope.get("rope_theta", 10000.0), rope_type=rope_type,
      rope_factor=rope.get("factor", 1.0),
      rope_low_freq_factor=rope.get("low_freq_factor", 1.0),
      rope_high_freq_factor=rope.get("high_freq_factor", 4.0),
      rope_original_max_positions=rope.get("original_max_position_embeddings", 8192),
      max_positions=hf.get("max_position_embeddings", 8192),
      tie_embeddings=hf.get("tie_word_embeddings", False),
      attention_bias=hf.get("attention_bias", hf.get("model_type") == "qwen2"),
      mlp_bias=bool(hf.get("mlp_bias", False)), activation=hf.get("hidden_act", "silu"),
      qk_norm=hf.get("model_type") == "qwen3",
      sliding_window=(hf.get("sliding_window") or 0) if use_window else 0,
      sliding_layers=sliding_layers), **overrides})
  rope_frequencies(cfg)  # unsupported RoPE types fail here, before any weights are read
  return cfg


def convert_hf(read, cfg: LlamaConfig) -> Iterator[tuple[tuple[str, ...], Callable]]:
  """(our parameter path, thunk giving the array) for each parameter.

  `read(name)` returns an HF tensor (lazily mapped); thunks let the loader skip parameters
  the target model does not have (a classifier has no lm_head).
  """
  heads, kv_heads, head_dim, d = (cfg.n_heads, cfg.n_kv_heads, cfg.attention_head_dim,
                                  cfg.d_model)
  yield ("embed_tokens", "embedding"), lambda: read("model.embed_tokens.weight")
  for i in range(cfg.n_layers):
    hf, ours = f"model.layers.{i}.", f"layers_{i}"
    yield (ours, "input_norm", "scale"), lambda hf=hf: read(hf + "input_layernorm.weight")
    yield ((ours, "post_attention_norm", "scale"),
           lambda hf=hf: read(hf + "post_attention_layernorm.weight"))
    for name, n in (("q", heads), ("k", kv_heads), ("v", kv_heads)):
      proj = f"{hf}self_attn.{name}_proj"  # weight [n * head_dim, d_model]
      yield ((ours, "attn", name, "kernel"),
             lambda proj=proj, n=n: read(proj + ".weight").T.reshape(d, n, head_dim))
      if cfg.attention_bias:
        yield ((ours, "attn", name, "bias"),
               lambda proj=proj, n=n: read(proj + ".bias").reshape(n, head_dim))
    if cfg.qk_norm:
      for name in ("q_norm", "k_norm"):
        yield (ours, "attn", name, "scale"), lambda hf=hf, name=name: read(
            f"{hf}self_attn.{name}.weight")
    yield ((ours, "attn", "o", "kernel"),  # weight [d_model, heads * head_dim]
           lambda hf=hf: read(hf + "self_attn.o_proj.weight").T.reshape(heads, head_dim, d))
    for name in ("gate", "up", "down"):
      yield (ours, name, "kernel"), lambda hf=hf, name=name: read(
          f"{hf}mlp.{name}_proj.weight").T
      if cfg.mlp_bias:
        yield (ours, name, "bias"), lambda hf=hf, name=name: read(f"{hf}mlp.{name}_proj.bias")
  yield ("norm", "scale"), lambda: read("model.norm.weight")
  if not cfg.tie_embeddings:
    yield ("lm_head", "kernel"), lambda: read("lm_head.weight").T
