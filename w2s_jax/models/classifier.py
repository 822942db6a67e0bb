"""Sequence classifier (pooling + linear head) and language-model wrapper over a backbone.

Both keep the backbone's parameters under the key "backbone", so weights pretrained as a
language model drop straight into the classifier. Which parameters train (all, the head
alone in a linear probe, the head and LoRA adapters) is the training step's business:
see models.is_trainable and train.make_train_step.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


def pool(hidden, attention_mask, how: str):
  """[batch, length, d] -> [batch, d]; uses the mask, never the pad id."""
  mask = attention_mask.astype(bool)
  if how == "last":  # last real token, wherever the padding is
    positions = jnp.arange(mask.shape[1])[None]
    last = jnp.max(jnp.where(mask, positions, -1), axis=1)
    return jnp.take_along_axis(hidden, last[:, None, None], axis=1)[:, 0]
  if how == "first":  # CLS token of encoders
    return hidden[:, 0]
  if how == "mean":
    weights = mask.astype(hidden.dtype)[..., None]
    return (hidden * weights).sum(1) / jnp.maximum(weights.sum(1), 1.0)
  raise ValueError(f"unknown pooling {how!r}; choose from last, first, mean")


class Classifier(nn.Module):
  backbone: nn.Module
  num_classes: int = 2
  pooling: str = "last"
  head_init_std: float = 0.0  # 0: zero-initialised head, as in the OpenAI recipe

  @nn.compact
  def __call__(self, input_ids, attention_mask):
    hidden = self.backbone(input_ids, attention_mask)
    pooled = pool(hidden, attention_mask, self.pooling).astype(jnp.float32)
    init = (nn.initializers.normal(self.head_init_std) if self.head_init_std > 0
            else nn.initializers.zeros_init())
    return nn.Dense(
        self.num_classes, name="head",
        kernel_init=nn.with_logical_partitioning(init, ("embed", "classes")),
        bias_init=nn.with_logical_partitioning(nn.initializers.zeros_init(), ("classes",)),
    )(pooled)


class Pooled(nn.Module):
  """The backbone's pooled hidden state [batch, d_model] in float32: what probes read."""
  backbone: nn.Module
  pooling: str = "last"

  @nn.compact
  def __call__(self, input_ids, attention_mask):
    hidden = self.backbone(input_ids, attention_mask)
    return pool(hidden, attention_mask, self.pooling).astype(jnp.float32)


class LanguageModel(nn.Module):
  """Next-token logits: the self-supervised pretraining objective."""
  backbone: nn.Module

  @nn.compact
  def __call__(self, input_ids, attention_mask):
    return self.backbone.logits(self.backbone(input_ids, attention_mask))
