"""Student losses as optax-style pure functions.

Every loss has the signature `loss(logits, labels, *, step_frac, **hparams)` and returns one
value per example (the caller reduces, as with `optax.losses.*`). `labels` are probability
vectors over the classes (the weak model's soft labels), `step_frac` is step / total_steps.
Weak and ceiling models train with `xent` on one-hot ground truth.
"""

from __future__ import annotations

import functools
import inspect
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from w2s_jax.errors import ConfigError

LossFn = Callable[..., jax.Array]


def xent(logits, labels, *, step_frac=0.0):
  """Cross-entropy against the soft labels themselves (not hardened)."""
  del step_frac
  return optax.softmax_cross_entropy(logits, labels)


def confidence_weight(step_frac, a_max, warmup_frac):
  """a = a_max * min(step_frac / warmup_frac, 1): the paper's linear warmup."""
  if warmup_frac <= 0:
    return jnp.asarray(a_max, jnp.float32)
  return a_max * jnp.minimum(jnp.asarray(step_frac, jnp.float32) / warmup_frac, 1.0)


def balanced_hard_predictions(logits, labels):
  """The student's predictions made one-hot, with the threshold set so that the fraction of
  hardened positives in the batch equals the batch mean of the weak labels (binary only)."""
  if logits.shape[-1] != 2:
    raise ValueError(f"balanced hardening is defined for 2 classes, got {logits.shape[-1]}")
  p_pos = jax.nn.softmax(logits.astype(jnp.float32))[:, 1]
  weak_pos_rate = labels[:, 1].mean()
  threshold = jnp.quantile(p_pos, 1.0 - weak_pos_rate)
  positive = (p_pos > threshold).astype(jnp.float32)
  return jnp.stack([1.0 - positive, positive], axis=-1)


def _xent_to_detached(logits, target):
  return optax.softmax_cross_entropy(logits, jax.lax.stop_gradient(target))


def logconf(logits, labels, *, step_frac, a_max=0.5, warmup_frac=0.2):
  """Auxiliary confidence loss: target = (1 - a) * w + a * hard(p), hard(p) detached."""
  a = confidence_weight(step_frac, a_max, warmup_frac)
  target = (1.0 - a) * labels + a * balanced_hard_predictions(logits, labels)
  return _xent_to_detached(logits, target)


def logconf_legacy(logits, labels, *, step_frac, a_max=0.5, warmup_frac=0.1):
  """The OpenAI code's schedule, kept only to reproduce its numbers: a = a_max * step_frac
  during warmup (reaching 0.05 at 10%), then a jump to a_max. Prefer `logconf`."""
  step_frac = jnp.asarray(step_frac, jnp.float32)
  a = jnp.where(step_frac > warmup_frac, a_max, a_max * step_frac)
  target = (1.0 - a) * labels + a * balanced_hard_predictions(logits, labels)
  return _xent_to_detached(logits, target)


def product(logits, labels, *, step_frac=0.0, alpha=1.0, beta=1.0):
  """Cross-entropy against target ∝ w^alpha * p^beta (normalised, detached)."""
  del step_frac
  tiny = jnp.finfo(jnp.float32).tiny
  log_target = alpha * jnp.log(labels + tiny) + beta * jax.nn.log_softmax(logits, axis=-1)
  return _xent_to_detached(logits, jax.nn.softmax(log_target, axis=-1))


LOSSES: dict[str, LossFn] = {
    "xent": xent,
    "logconf": logconf,
    "product": product,
    "logconf_legacy": logconf_legacy,
}


def get_loss(name: str, hparams=None) -> LossFn:
  """The named loss with its hyperparameters bound; unknown names raise ConfigError."""
  if name not in LOSSES:
    raise ConfigError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)}")
  hparams = dict(hparams or {})
  fn = LOSSES[name]
  allowed = [p for p in inspect.signature(fn).parameters if p not in ("logits", "labels",
                                                                        "step_frac")]
  unknown = sorted(set(hparams) - set(allowed))
  if unknown:
    raise ConfigError(f"loss {name!r} has no hyperparameters {unknown}; it takes {allowed}")
  return functools.partial(fn, **hparams)
