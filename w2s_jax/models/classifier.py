"""Sequence classifier (pooling + linear head) and language-model wrapper over a backbone.

Both keep the backbone's parameters under the key "backbone", so weights pretrained as a
language model drop straight into the classifier. Which parameters train (all, the head
alone in a linear probe, the head and LoRA adapters) is the training step's business:
see models.is_trainable and train.make_train_step.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

POOLINGS = ("last", "first", "mean")
TOKEN_INPUTS = ("input_ids", "attention_mask")  # what a model over text reads from a batch
# a pairwise task's documents: the first candidate's tokens, then the second's
PAIR_INPUTS = (*TOKEN_INPUTS, "input_ids_2", "attention_mask_2")


def model_inputs(model: nn.Module, batch) -> tuple:
  """The fields of `batch` that `model` is applied to, in order (its `input_fields`)."""
  return tuple(batch[name] for name in getattr(model, "input_fields", TOKEN_INPUTS))


def pooled_index(attention_mask, how: str):
  """The one position per row that pooling `how` reads ([batch]), or None for "mean"."""
  if how not in POOLINGS:
    raise ValueError(f"unknown pooling {how!r}; choose from {', '.join(POOLINGS)}")
  if how == "mean":
    return None
  if how == "first":  # CLS token of encoders
    return jnp.zeros(attention_mask.shape[:1], jnp.int32)
  # the last real token, wherever the padding is (the mask, never the pad id)
  positions = jnp.arange(attention_mask.shape[1])[None]
  return jnp.max(jnp.where(attention_mask.astype(bool), positions, -1), axis=1)


def pool(hidden, attention_mask, how: str):
  """[batch, length, d] -> [batch, d]; uses the mask, never the pad id."""
  index = pooled_index(attention_mask, how)
  if index is not None:
    return jnp.take_along_axis(hidden, index[:, None, None], axis=1)[:, 0]
  # the mean is taken in float32 (a bfloat16 sum over hundreds of positions loses digits)
  weights = attention_mask.astype(jnp.float32)[..., None]
  return (hidden.astype(jnp.float32) * weights).sum(1) / jnp.maximum(weights.sum(1), 1.0)


def pooled_hidden(backbone, input_ids, attention_mask, how: str):
  """The backbone's pooled hidden state [batch, d]. Pooling one position ("last",
  "first") runs the last layer at that position only (its keys and values still cover
  every position): the other positions' outputs would be thrown away."""
  index = pooled_index(attention_mask, how)
  if index is None:
    return pool(backbone(input_ids, attention_mask), attention_mask, how)
  return backbone(input_ids, attention_mask, output_index=index)


def head(num_classes: int, head_init_std: float) -> nn.Dense:
  """The classification head (bound as submodule "head"): zero-initialised when
  head_init_std is 0, as in the OpenAI recipe."""
  init = (nn.initializers.normal(head_init_std) if head_init_std > 0
          else nn.initializers.zeros_init())
  return nn.Dense(
      num_classes, name="head",
      kernel_init=nn.with_logical_partitioning(init, ("embed", "classes")),
      bias_init=nn.with_logical_partitioning(nn.initializers.zeros_init(), ("classes",)))


class Classifier(nn.Module):
  backbone: nn.Module
  num_classes: int = 2
  pooling: str = "last"
  head_init_std: float = 0.0
  input_fields = TOKEN_INPUTS

  @nn.compact
  def __call__(self, input_ids, attention_mask):
    pooled = pooled_hidden(self.backbone, input_ids, attention_mask,
                           self.pooling).astype(jnp.float32)
    return head(self.num_classes, self.head_init_std)(pooled)


class PairwiseClassifier(nn.Module):
  """Bradley-Terry over two candidates: one backbone and a scalar head score each, r1 and r2;
  the logits [r2, r1] make the softmax's p(class 1) = sigmoid(r1 - r2), the probability that
  the first is the better, so every loss and supervisor reads it as any binary prediction."""
  backbone: nn.Module
  pooling: str = "last"
  head_init_std: float = 0.0
  input_fields = PAIR_INPUTS

  @nn.compact
  def __call__(self, input_ids, attention_mask, input_ids_2, attention_mask_2):
    score = head(1, self.head_init_std)

    def reward(ids, mask):
      return score(pooled_hidden(self.backbone, ids, mask, self.pooling).astype(jnp.float32))
    return jnp.concatenate([reward(input_ids_2, attention_mask_2),
                            reward(input_ids, attention_mask)], axis=-1)


class FeatureHead(nn.Module):
  """A classifier over precomputed features [batch, d]: the head alone (a linear probe whose
  frozen backbone's pooled states were computed once), or with `hidden` > 0 a one-hidden-layer
  MLP under it. The head's parameters are named and initialised as Classifier's, so a linear
  probe starts and trains the same either way."""
  num_classes: int = 2
  head_init_std: float = 0.0
  hidden: int = 0
  input_fields = ("features",)

  @nn.compact
  def __call__(self, features):
    x = features.astype(jnp.float32)
    if self.hidden:
      x = nn.relu(nn.Dense(
          self.hidden, name="hidden",
          kernel_init=nn.with_logical_partitioning(nn.initializers.lecun_normal(),
                                                   ("embed", "mlp")),
          bias_init=nn.with_logical_partitioning(nn.initializers.zeros_init(), ("mlp",)))(x))
    return head(self.num_classes, self.head_init_std)(x)


class Pooled(nn.Module):
  """The backbone's pooled hidden state [batch, d_model] in float32: what probes read."""
  backbone: nn.Module
  pooling: str = "last"
  input_fields = TOKEN_INPUTS

  @nn.compact
  def __call__(self, input_ids, attention_mask):
    return pooled_hidden(self.backbone, input_ids, attention_mask,
                         self.pooling).astype(jnp.float32)


class LanguageModel(nn.Module):
  """Next-token logits: the self-supervised pretraining objective."""
  backbone: nn.Module
  input_fields = TOKEN_INPUTS

  @nn.compact
  def __call__(self, input_ids, attention_mask):
    return self.backbone.logits(self.backbone(input_ids, attention_mask))
