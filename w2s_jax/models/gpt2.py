"""GPT-2 decoder in Flax linen, with logical axis names on every parameter.

Parameter layout follows the logical axes in `w2s_jax.sharding`: ("vocab", "embed"),
("embed", "heads", "kv"), ("embed", "mlp"). Dropout is left out: every training recipe we
replicate turns it off for fine-tuning.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from w2s_jax.models import _layers


@dataclasses.dataclass(frozen=True)
class GPT2Config:
  vocab_size: int = 50257
  n_positions: int = 1024
  d_model: int = 768
  n_layers: int = 12
  n_heads: int = 12
  d_mlp: int | None = None  # None: 4 * d_model
  layer_norm_eps: float = 1e-5
  dtype: str = "float32"  # compute dtype; parameters stay float32
  remat: bool = False

  @property
  def mlp_dim(self) -> int:
    return self.d_mlp or 4 * self.d_model


class Block(nn.Module):
  config: GPT2Config

  @nn.compact
  def __call__(self, x, mask):
    cfg = self.config
    dtype = jnp.dtype(cfg.dtype)
    h = _layers.layer_norm("ln_1", cfg.layer_norm_eps, dtype)(x)
    x = x + _layers.Attention(
        n_heads=cfg.n_heads, head_dim=cfg.d_model // cfg.n_heads, dtype=dtype,
        use_bias=True, name="attn")(h, mask)
    h = _layers.layer_norm("ln_2", cfg.layer_norm_eps, dtype)(x)
    h = _layers.dense("c_fc", cfg.mlp_dim, ("embed", "mlp"), dtype)(h)
    h = jax.nn.gelu(h, approximate=True)  # GPT-2's "gelu_new"
    h = _layers.dense("c_proj", cfg.d_model, ("mlp", "embed"), dtype)(h)
    return x + h


class GPT2(nn.Module):
  """Returns final hidden states [batch, length, d_model] (after ln_f)."""
  config: GPT2Config

  def setup(self):
    cfg = self.config
    self.wte = _layers.embed("wte", cfg.vocab_size, cfg.d_model)
    self.wpe = _layers.embed("wpe", cfg.n_positions, cfg.d_model, axes=("pos", "embed"))
    block = nn.remat(Block) if cfg.remat else Block
    self.blocks = [block(cfg, name=f"h_{i}") for i in range(cfg.n_layers)]
    self.ln_f = _layers.layer_norm("ln_f", cfg.layer_norm_eps, jnp.dtype(cfg.dtype))

  def __call__(self, input_ids, attention_mask):
    cfg = self.config
    length = input_ids.shape[1]
    if length > cfg.n_positions:
      raise ValueError(f"sequence length {length} exceeds n_positions={cfg.n_positions}")
    x = self.wte(input_ids) + self.wpe(jnp.arange(length))[None]
    x = x.astype(jnp.dtype(cfg.dtype))
    mask = _layers.causal_mask(attention_mask)
    for block in self.blocks:
      x = block(x, mask)
    return self.ln_f(x)

  def logits(self, hidden):
    """Next-token logits through the tied input embedding, as GPT-2 does."""
    return self.wte.attend(hidden.astype(jnp.float32))
