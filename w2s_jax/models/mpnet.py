"""MPNet encoders (all-mpnet-base-v2) in Flax linen: BERT's post-LayerNorm blocks (bert.Layer,
bert.encoder_layer), no token types, absolute positions counted from the padding index, and a relative position bias
(bucketed, one table shared by all layers) added to every head's attention logits.

Pool with "mean", as sentence-transformers does.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable, Iterator, Mapping

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from w2s_jax.errors import ConfigError
from w2s_jax.models import _layers, bert

# The padding index, fixed in Hugging Face's MPNet: positions of real tokens start after it
# and a token with this id takes it as its position.
PAD_ID = 1
# The bucketing of relative positions, fixed in Hugging Face's MPNet whatever the config's
# table size (relative_attention_num_buckets) says.
N_BUCKETS, MAX_DISTANCE = 32, 128


@dataclasses.dataclass(frozen=True)
class MPNetConfig:
  vocab_size: int = 30527
  d_model: int = 768
  n_layers: int = 12
  n_heads: int = 12
  d_mlp: int = 3072
  n_position_embeddings: int = 514  # rows of the table; inputs up to 2 fewer tokens
  n_relative_buckets: int = 32  # rows of the relative bias table
  layer_norm_eps: float = 1e-5
  activation: str = "gelu"
  dtype: str = "float32"
  param_dtype: str = "float32"
  remat: bool = False
  remat_policy: str = "full"  # a name in _layers.REMAT_POLICIES
  scan_layers: bool = False  # layers under nn.scan ("layers", stacked) instead of layer_<i>
  lora_rank: int = 0  # > 0: low-rank adapters on the layer projections (lora_targets)
  lora_alpha: float = 16.0
  lora_targets: tuple[str, ...] = ()  # () = q, k, v, o, mlp_in, mlp_out

  @property
  def max_positions(self) -> int:
    """The longest input: positions run from PAD_ID + 1."""
    return self.n_position_embeddings - PAD_ID - 1


@functools.lru_cache(maxsize=None)
def relative_buckets(length: int) -> np.ndarray:
  """[length, length] bucket of each (query, key) offset, computed as Hugging Face computes
  it (float32 logarithms, truncated), so every offset lands in the same bucket."""
  position = np.arange(length)
  n = -(position[None, :] - position[:, None])  # query - key
  half = N_BUCKETS // 2
  bucket = (n < 0).astype(np.int64) * half
  n = np.abs(n)
  max_exact = half // 2
  with np.errstate(divide="ignore"):
    scaled = (np.log(n.astype(np.float32) / np.float32(max_exact))
              / np.float32(math.log(MAX_DISTANCE / max_exact))
              * np.float32(half - max_exact))
  large = max_exact + np.where(n < max_exact, 0, scaled).astype(np.int64)
  return bucket + np.where(n < max_exact, n, np.minimum(large, half - 1))


class MPNet(nn.Module):
  """Returns the last hidden states [batch, length, d_model], or with `output_index`
  ([batch]) those at one position per row, [batch, d_model]."""
  config: MPNetConfig

  @nn.compact
  def __call__(self, input_ids, attention_mask, output_index=None):
    cfg = self.config
    dtype, pdtype = jnp.dtype(cfg.dtype), jnp.dtype(cfg.param_dtype)
    length = input_ids.shape[1]
    _layers.check_encoder_input(cfg, length)
    real = (input_ids != PAD_ID).astype(jnp.int32)
    positions = jnp.cumsum(real, axis=1) * real + PAD_ID
    x = (_layers.embed("word", cfg.vocab_size, cfg.d_model, param_dtype=pdtype)(input_ids)
         + _layers.embed("position", cfg.n_position_embeddings, cfg.d_model, ("pos", "embed"),
                         pdtype)(positions))
    x = _layers.layer_norm("embed_ln", cfg.layer_norm_eps, dtype, pdtype)(x.astype(dtype))
    table = _layers.embed("relative_bias", cfg.n_relative_buckets, cfg.n_heads, (None, "heads"),
                          pdtype)
    position_bias = jnp.transpose(table(jnp.asarray(relative_buckets(length))), (2, 0, 1))
    mask = _layers.padding_mask(attention_mask)
    if cfg.scan_layers:
      x, _ = _layers.scanned(bert.Layer, cfg, cfg.n_layers, n_broadcast=2)(
          cfg, name="layers")(x, mask, position_bias)
      return _layers.select_output(x, output_index, False)
    layer = _layers.layer_class(bert.Layer, cfg)
    for i in range(cfg.n_layers):
      x = layer(cfg, name=f"layer_{i}")(
          x, mask, position_bias, output_index if i == cfg.n_layers - 1 else None)
    return _layers.select_output(x, output_index, cfg.n_layers > 0)

  def logits(self, hidden):
    raise ConfigError("MPNet encoders have no next-token head; set "
                      "strong.pretrain.enabled=False")


# ---------------------------------------------------------------- Hugging Face checkpoints

HF_MODEL_TYPES = ("mpnet",)
LAYER_NAMES = ("layer_", "layers")
# HF options this module does not implement: option -> which values it cannot honour.
UNSUPPORTED_OPTIONS = {
    "hidden_act": lambda v: v not in _layers.ACTIVATIONS,
    "relative_attention_num_buckets": lambda v: v < N_BUCKETS,  # HF indexes 32 buckets
    "is_decoder": bool,
    "add_cross_attention": bool,
}
# Tensors no backbone parameter reads: the pooler and masked-LM heads, the position-id
# buffer, and key biases (softmax cancels them; see _layers.Attention).
IGNORED_TENSORS = (r"(^|\.)pooler\.", r"^lm_head\.", r"position_ids$", r"attn\.k\.bias$")


def config_from_hf(hf: Mapping[str, Any], **overrides) -> MPNetConfig:
  return MPNetConfig(**{**dict(
      vocab_size=hf["vocab_size"], d_model=hf["hidden_size"], n_layers=hf["num_hidden_layers"],
      n_heads=hf["num_attention_heads"], d_mlp=hf["intermediate_size"],
      n_position_embeddings=hf["max_position_embeddings"],
      n_relative_buckets=hf.get("relative_attention_num_buckets", N_BUCKETS),
      layer_norm_eps=hf.get("layer_norm_eps", 1e-5), activation=hf.get("hidden_act", "gelu")),
      **overrides})


def convert_hf(read, cfg: MPNetConfig) -> Iterator[tuple[tuple[str, ...], Callable]]:
  """(our parameter path, thunk giving the array); Linear weights [out, in] are transposed,
  the key bias is dropped (softmax cancels it exactly, see _layers.Attention)."""
  for ours, hf in (("word", "embeddings.word_embeddings"),
                   ("position", "embeddings.position_embeddings"),
                   ("relative_bias", "encoder.relative_attention_bias")):
    yield (ours, "embedding"), lambda hf=hf: read(f"{hf}.weight")
  yield from bert.norm(read, ("embed_ln",), "embeddings.LayerNorm")
  for i in range(cfg.n_layers):
    yield from bert.encoder_layer(
        read, cfg, f"layer_{i}", f"encoder.layer.{i}.",
        {"q": "attention.attn.q", "k": "attention.attn.k", "v": "attention.attn.v",
         "o": "attention.attn.o", "attn_ln": "attention.LayerNorm"})
