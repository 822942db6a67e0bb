"""BERT-style encoders (BERT, MiniLM) in Flax linen: post-LayerNorm, bidirectional attention.

Pool with "first" (the CLS token) or "mean" (sentence-transformers models such as MiniLM).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterator, Mapping

import flax.linen as nn
import jax.numpy as jnp

from w2s_jax.errors import ConfigError
from w2s_jax.models import _layers


@dataclasses.dataclass(frozen=True)
class BertConfig:
  vocab_size: int = 30522
  d_model: int = 768
  n_layers: int = 12
  n_heads: int = 12
  d_mlp: int = 3072
  max_positions: int = 512
  type_vocab_size: int = 2
  layer_norm_eps: float = 1e-12
  activation: str = "gelu"
  dtype: str = "float32"
  param_dtype: str = "float32"
  remat: bool = False
  remat_policy: str = "full"  # a name in _layers.REMAT_POLICIES
  scan_layers: bool = False  # layers under nn.scan ("layers", stacked) instead of layer_<i>
  lora_rank: int = 0  # > 0: low-rank adapters on the layer projections (lora_targets)
  lora_alpha: float = 16.0
  lora_targets: tuple[str, ...] = ()  # () = q, k, v, o, mlp_in, mlp_out


class Layer(nn.Module):
  config: BertConfig

  @nn.compact
  def __call__(self, x, mask, position_bias=None, query_index=None):
    """query_index ([batch]): compute only that position of each row -> [batch, 1, d].
    position_bias ([heads, q, k]): added to the attention logits (MPNet, which shares this
    block)."""
    cfg = self.config
    dtype, pdtype = jnp.dtype(cfg.dtype), jnp.dtype(cfg.param_dtype)
    attended = _layers.Attention(cfg, name="attn")(x, mask, query_index, position_bias)
    if query_index is not None:
      x = _layers.take_positions(x, query_index)
    x = _layers.layer_norm("attn_ln", cfg.layer_norm_eps, dtype, pdtype)(x + attended)
    h = _layers.dense("mlp_in", cfg.d_mlp, ("embed", "mlp"), dtype, True, pdtype,
                      **_layers.lora_options(cfg, "mlp_in"))(x)
    h = _layers.dense("mlp_out", cfg.d_model, ("mlp", "embed"), dtype, True, pdtype,
                      **_layers.lora_options(cfg, "mlp_out"))(
                          _layers.ACTIVATIONS[cfg.activation](h))
    out = _layers.layer_norm("out_ln", cfg.layer_norm_eps, dtype, pdtype)(x + h)
    return (out, None) if cfg.scan_layers else out


class Bert(nn.Module):
  """Returns the last hidden states [batch, length, d_model], or with `output_index`
  ([batch]) those at one position per row, [batch, d_model]; one segment (token type 0)."""
  config: BertConfig

  @nn.compact
  def __call__(self, input_ids, attention_mask, output_index=None):
    cfg = self.config
    dtype, pdtype = jnp.dtype(cfg.dtype), jnp.dtype(cfg.param_dtype)
    length = input_ids.shape[1]
    _layers.check_encoder_input(cfg, length)
    x = (_layers.embed("word", cfg.vocab_size, cfg.d_model, param_dtype=pdtype)(input_ids)
         + _layers.embed("position", cfg.max_positions, cfg.d_model, ("pos", "embed"),
                         pdtype)(jnp.arange(length))[None]
         + _layers.embed("token_type", cfg.type_vocab_size, cfg.d_model, (None, "embed"),
                         pdtype)(jnp.zeros_like(input_ids)))
    x = _layers.layer_norm("embed_ln", cfg.layer_norm_eps, dtype, pdtype)(x.astype(dtype))
    mask = _layers.padding_mask(attention_mask)
    if cfg.scan_layers:
      x, _ = _layers.scanned(Layer, cfg, cfg.n_layers, n_broadcast=1)(cfg, name="layers")(x, mask)
      return _layers.select_output(x, output_index, False)
    layer = _layers.layer_class(Layer, cfg)
    for i in range(cfg.n_layers):
      x = layer(cfg, name=f"layer_{i}")(
          x, mask, query_index=output_index if i == cfg.n_layers - 1 else None)
    return _layers.select_output(x, output_index, cfg.n_layers > 0)

  def logits(self, hidden):
    raise ConfigError("BERT-style encoders have no next-token head; set "
                      "strong.pretrain.enabled=False")


# ---------------------------------------------------------------- Hugging Face checkpoints

HF_MODEL_TYPES = ("bert",)
LAYER_NAMES = ("layer_", "layers")  # a layer's parameters unrolled (layer_<i>) and under scan
# HF options this module does not implement: option -> which values it cannot honour.
UNSUPPORTED_OPTIONS = {
    "hidden_act": lambda v: v not in _layers.ACTIVATIONS,
    "position_embedding_type": lambda v: v not in (None, "absolute"),
    "is_decoder": bool,
    "add_cross_attention": bool,
}
# Tensors a checkpoint may hold that no backbone parameter reads: the pooler and masked-LM
# heads, the position-id buffer, and key biases (softmax cancels them; see _layers).
IGNORED_TENSORS = (r"(^|\.)pooler\.", r"^cls\.", r"position_ids$",
                   r"attention\.self\.key\.bias$")


def config_from_hf(hf: Mapping[str, Any], **overrides) -> BertConfig:
  return BertConfig(**{**dict(vocab_size=hf["vocab_size"], d_model=hf["hidden_size"],
                    n_layers=hf["num_hidden_layers"], n_heads=hf["num_attention_heads"],
                    d_mlp=hf["intermediate_size"], max_positions=hf["max_position_embeddings"],
                    type_vocab_size=hf.get("type_vocab_size", 2),
                    layer_norm_eps=hf.get("layer_norm_eps", 1e-12),
                    activation=hf.get("hidden_act", "gelu")), **overrides})


def convert_hf(read, cfg: BertConfig) -> Iterator[tuple[tuple[str, ...], Callable]]:
  """(our parameter path, thunk giving the array); Linear weights [out, in] are transposed,
  the key bias is dropped (softmax cancels it exactly, see _layers.Attention)."""
  for ours, hf in (("word", "word_embeddings"), ("position", "position_embeddings"),
                   ("token_type", "token_type_embeddings")):
    yield (ours, "embedding"), lambda hf=hf: read(f"embeddings.{hf}.weight")
  yield from norm(read, ("embed_ln",), "embeddings.LayerNorm")
  for i in range(cfg.n_layers):
    yield from encoder_layer(
        read, cfg, f"layer_{i}", f"encoder.layer.{i}.",
        {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
         "o": "attention.output.dense", "attn_ln": "attention.output.LayerNorm"})


def encoder_layer(read, cfg, ours: str, hf: str, attention_names: Mapping[str, str]):
  """The converter of one post-LN encoder block (Layer): `attention_names` gives the HF names
  of q, k, v, o and attn_ln under `hf`, which differ between BERT and MPNet; the MLP and the
  output LayerNorm are named alike."""
  d, heads = cfg.d_model, cfg.n_heads
  head_dim = d // heads
  names = {k: hf + v for k, v in attention_names.items()}
  for name in ("q", "k", "v"):
    yield ((ours, "attn", name, "kernel"), lambda name=name: read(
        f"{names[name]}.weight").T.reshape(d, heads, head_dim))
    if name != "k":
      yield ((ours, "attn", name, "bias"), lambda name=name: read(
          f"{names[name]}.bias").reshape(heads, head_dim))
  yield ((ours, "attn", "o", "kernel"), lambda: read(
      f"{names['o']}.weight").T.reshape(heads, head_dim, d))
  yield (ours, "attn", "o", "bias"), lambda: read(f"{names['o']}.bias")
  yield from norm(read, (ours, "attn_ln"), names["attn_ln"])
  yield from _linear(read, (ours, "mlp_in"), hf + "intermediate.dense")
  yield from _linear(read, (ours, "mlp_out"), hf + "output.dense")
  yield from norm(read, (ours, "out_ln"), hf + "output.LayerNorm")


def norm(read, ours, hf):
  yield (*ours, "scale"), lambda: read(hf + ".weight")
  yield (*ours, "bias"), lambda: read(hf + ".bias")


def _linear(read, ours, hf):
  yield (*ours, "kernel"), lambda: read(hf + ".weight").T
  yield (*ours, "bias"), lambda: read(hf + ".bias")
