"""GPT-2 decoder in Flax linen, with logical axis names on every parameter.

Dropout is left out: every training recipe we replicate turns it off for fine-tuning.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterator, Mapping

import flax.linen as nn
import jax.numpy as jnp

from w2s_jax.models import _layers


@dataclasses.dataclass(frozen=True)
class GPT2Config:
  vocab_size: int = 50257
  n_positions: int = 1024
  d_model: int = 768
  n_layers: int = 12
  n_heads: int = 12
  d_mlp: int = 0  # 0: 4 * d_model
  layer_norm_eps: float = 1e-5
  activation: str = "gelu_new"  # a name in _layers.ACTIVATIONS
  dtype: str = "float32"  # compute dtype
  param_dtype: str = "float32"
  remat: bool = False
  remat_policy: str = "full"  # a name in _layers.REMAT_POLICIES
  scan_layers: bool = False  # blocks under nn.scan ("blocks", stacked) instead of h_0, h_1, ...
  lora_rank: int = 0  # > 0: low-rank adapters on the block projections (lora_targets)
  lora_alpha: float = 16.0
  lora_targets: tuple[str, ...] = ()  # () = q, k, v, o, c_fc, c_proj

  @property
  def mlp_dim(self) -> int:
    return self.d_mlp or 4 * self.d_model


class Block(nn.Module):
  config: GPT2Config

  @nn.compact
  def __call__(self, x, mask, query_index=None):
    """query_index ([batch]): compute only that position of each row -> [batch, 1, d]."""
    cfg = self.config
    dtype, pdtype = jnp.dtype(cfg.dtype), jnp.dtype(cfg.param_dtype)
    h = _layers.layer_norm("ln_1", cfg.layer_norm_eps, dtype, pdtype)(x)
    if query_index is not None:
      x = _layers.take_positions(x, query_index)
    x = x + _layers.Attention(cfg, name="attn")(h, mask, query_index)
    h = _layers.layer_norm("ln_2", cfg.layer_norm_eps, dtype, pdtype)(x)
    h = _layers.dense("c_fc", cfg.mlp_dim, ("embed", "mlp"), dtype, True, pdtype,
                      **_layers.lora_options(cfg, "c_fc"))(h)
    h = _layers.ACTIVATIONS[cfg.activation](h)
    h = _layers.dense("c_proj", cfg.d_model, ("mlp", "embed"), dtype, True, pdtype,
                      **_layers.lora_options(cfg, "c_proj"))(h)
    return (x + h, None) if cfg.scan_layers else x + h


class GPT2(nn.Module):
  """Returns final hidden states [batch, length, d_model] (after ln_f), or with
  `output_index` ([batch]) those at one position per row, [batch, d_model]."""
  config: GPT2Config

  def setup(self):
    cfg = self.config
    pdtype = jnp.dtype(cfg.param_dtype)
    self.wte = _layers.embed("wte", cfg.vocab_size, cfg.d_model, param_dtype=pdtype)
    self.wpe = _layers.embed("wpe", cfg.n_positions, cfg.d_model, axes=("pos", "embed"),
                             param_dtype=pdtype)
    if cfg.scan_layers:
      self.blocks = _layers.scanned(Block, cfg, cfg.n_layers, n_broadcast=1)(cfg, name="blocks")
    else:
      block = _layers.layer_class(Block, cfg)
      self.blocks = [block(cfg, name=f"h_{i}") for i in range(cfg.n_layers)]
    self.ln_f = _layers.layer_norm("ln_f", cfg.layer_norm_eps, jnp.dtype(cfg.dtype), pdtype)

  def __call__(self, input_ids, attention_mask, output_index=None):
    cfg = self.config
    length = input_ids.shape[1]
    if length > cfg.n_positions:
      raise ValueError(f"sequence length {length} exceeds n_positions={cfg.n_positions}")
    x = self.wte(input_ids) + self.wpe(jnp.arange(length))[None]
    x = x.astype(jnp.dtype(cfg.dtype))
    mask = _layers.causal_mask(attention_mask)
    if cfg.scan_layers:
      x, _ = self.blocks(x, mask)
    else:
      for i, block in enumerate(self.blocks):
        x = block(x, mask, output_index if i == cfg.n_layers - 1 else None)
    last_ran_at_index = not cfg.scan_layers and cfg.n_layers > 0
    return self.ln_f(_layers.select_output(x, output_index, last_ran_at_index))

  def logits(self, hidden):
    """Next-token logits through the tied input embedding, as GPT-2 does."""
    return self.wte.attend(hidden.astype(jnp.float32))


# ---------------------------------------------------------------- Hugging Face checkpoints

HF_MODEL_TYPES = ("gpt2",)
LAYER_NAMES = ("h_", "blocks")  # a layer's parameters unrolled (h_<i>) and under scan
# HF options this module does not implement: option -> which values it cannot honour.
UNSUPPORTED_OPTIONS = {
    "activation_function": lambda v: v not in _layers.ACTIVATIONS,
    "scale_attn_by_inverse_layer_idx": bool,
    "scale_attn_weights": lambda v: v is False,
    "add_cross_attention": bool,
}
# Tensors a checkpoint may hold that no backbone parameter reads: old causal-mask buffers
# and the LM head (tied to wte).
IGNORED_TENSORS = (r"\.attn\.(masked_)?bias$", r"^lm_head\.weight$")


def config_from_hf(hf: Mapping[str, Any], **overrides) -> GPT2Config:
  return GPT2Config(**{**dict(vocab_size=hf["vocab_size"], n_positions=hf["n_positions"],
                    d_model=hf["n_embd"], n_layers=hf["n_layer"], n_heads=hf["n_head"],
                    d_mlp=hf.get("n_inner") or 0,
                    layer_norm_eps=hf.get("layer_norm_epsilon", 1e-5),
                    activation=hf.get("activation_function", "gelu_new")), **overrides})


def convert_hf(read, cfg: GPT2Config) -> Iterator[tuple[tuple[str, ...], Callable]]:
  """(our parameter path, thunk giving the array). GPT-2 stores Conv1D weights as
  [in, out] (our Dense layout) and fuses q, k, v into c_attn; the key bias is dropped
  (softmax cancels it exactly, see _layers.Attention)."""
  d, heads = cfg.d_model, cfg.n_heads
  head_dim = d // heads
  yield ("wte", "embedding"), lambda: read("transformer.wte.weight")
  yield ("wpe", "embedding"), lambda: read("transformer.wpe.weight")
  for i in range(cfg.n_layers):
    hf, ours = f"transformer.h.{i}.", f"h_{i}"
    for norm in ("ln_1", "ln_2"):
      yield (ours, norm, "scale"), lambda hf=hf, norm=norm: read(f"{hf}{norm}.weight")
      yield (ours, norm, "bias"), lambda hf=hf, norm=norm: read(f"{hf}{norm}.bias")
    for j, name in enumerate("qkv"):
      yield ((ours, "attn", name, "kernel"), lambda hf=hf, j=j: read(
          hf + "attn.c_attn.weight")[:, j * d:(j + 1) * d].reshape(d, heads, head_dim))
      if name != "k":
        yield ((ours, "attn", name, "bias"), lambda hf=hf, j=j: read(
            hf + "attn.c_attn.bias")[j * d:(j + 1) * d].reshape(heads, head_dim))
    yield ((ours, "attn", "o", "kernel"),
           lambda hf=hf: read(hf + "attn.c_proj.weight").reshape(heads, head_dim, d))
    yield (ours, "attn", "o", "bias"), lambda hf=hf: read(hf + "attn.c_proj.bias")
    for name in ("c_fc", "c_proj"):
      yield (ours, name, "kernel"), lambda hf=hf, name=name: read(f"{hf}mlp.{name}.weight")
      yield (ours, name, "bias"), lambda hf=hf, name=name: read(f"{hf}mlp.{name}.bias")
  yield ("ln_f", "scale"), lambda: read("transformer.ln_f.weight")
  yield ("ln_f", "bias"), lambda: read("transformer.ln_f.bias")
