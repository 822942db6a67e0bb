"""The optimizer of a training loop: Adam(W) on a cosine schedule, frozen parameters left
out."""

from __future__ import annotations

from typing import Callable

import jax
import optax

from w2s_jax.train.settings import TrainSettings
from w2s_jax.train.state import trainable_mask


def learning_rate_schedule(settings: TrainSettings, total_steps: int) -> optax.Schedule:
  """Cosine decay to 0 after an optional linear warmup."""
  lr, warmup = settings.lr, int(settings.warmup_steps)
  total_steps = max(total_steps, 1)
  if warmup > 0:
    return optax.warmup_cosine_decay_schedule(0.0, lr, min(warmup, total_steps), total_steps,
                                              end_value=0.0)
  return optax.cosine_decay_schedule(lr, total_steps, alpha=0.0)


def make_optimizer(settings: TrainSettings, total_steps: int, *,
                   trainable: Callable[[tuple[str, ...]], bool] | None = None
                   ) -> optax.GradientTransformation:
  """Adam(W) on learning_rate_schedule. Parameters for which `trainable(path)` is False get
  no updates and no optimizer state."""
  schedule = learning_rate_schedule(settings, total_steps)
  tx = optax.adamw(schedule, b1=settings.b1, b2=settings.b2,
                   weight_decay=settings.weight_decay)
  if settings.max_grad_norm:
    tx = optax.chain(optax.clip_by_global_norm(settings.max_grad_norm), tx)
  if trainable is not None:
    tx = optax.multi_transform(
        {"train": tx, "frozen": optax.set_to_zero()},
        lambda params: jax.tree.map(lambda t: "train" if t else "frozen",
                                    trainable_mask(params, trainable)))
  return tx
