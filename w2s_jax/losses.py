"""Student losses as optax-style pure functions.

Every loss has the signature `loss(logits, labels, *, step_frac, **hparams)` and returns one
value per example (the caller reduces, as with `optax.losses.*`). `labels` are probability
vectors over the classes (the supervisor's soft labels), `step_frac` is step / total_steps.
Weak and ceiling models train with `xent` on one-hot ground truth.

The confidence losses (logconf, entropy) also accept `recent`: the student's p(y=1) on the
examples of recent steps (NaN where empty), kept by the training step when the loss's
`buffer_size` hyperparameter is > 0. The hardening threshold is then taken over those and the
current batch together, which keeps it meaningful when a (micro-)batch is small.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax

from w2s_jax.errors import ConfigError

LossFn = Callable[..., jax.Array]


def xent(logits, labels, *, step_frac=0.0):
  """Cross-entropy against the soft labels themselves (not hardened)."""
  del step_frac
  return optax.softmax_cross_entropy(logits, labels)


def kl(logits, labels, *, step_frac=0.0):
  """KL(w ‖ p) = Σ w (log w − log p): cross-entropy minus the labels' own entropy."""
  del step_frac
  return optax.kl_divergence(jax.nn.log_softmax(logits.astype(jnp.float32)), labels)


def confidence_weight(step_frac, a_max, warmup_frac):
  """a = a_max * min(step_frac / warmup_frac, 1): the paper's linear warmup."""
  if warmup_frac <= 0:
    return jnp.asarray(a_max, jnp.float32)
  return a_max * jnp.minimum(jnp.asarray(step_frac, jnp.float32) / warmup_frac, 1.0)


def balanced_hard_predictions(logits, labels, recent=None, positive_rate=None):
  """The student's predictions made one-hot, with the threshold set so that the fraction of
  hardened positives equals `positive_rate` (default: the batch mean of the labels; binary
  only). With `recent`, the threshold is that quantile over the recent predictions and this
  batch's together."""
  if logits.shape[-1] != 2:
    raise ValueError(f"balanced hardening is defined for 2 classes, got {logits.shape[-1]}")
  p_pos = jax.nn.softmax(logits.astype(jnp.float32))[:, 1]
  pool = p_pos if recent is None else jnp.concatenate([recent, p_pos])
  if positive_rate is None:
    positive_rate = labels[:, 1].mean()
  threshold = jnp.nanquantile(pool, 1.0 - positive_rate)
  positive = (p_pos > threshold).astype(jnp.float32)
  return jnp.stack([1.0 - positive, positive], axis=-1)


def centre_log_odds(labels):
  """EleutherAI's balance_batch: shift the labels' log-odds by their batch mean, so the
  batch's labels are balanced around 0.5."""
  eps = 1e-7
  log_odds = jnp.log(labels[:, 1] + eps) - jnp.log(labels[:, 0] + eps)
  p_pos = jax.nn.sigmoid(log_odds - log_odds.mean())
  return jnp.stack([1.0 - p_pos, p_pos], axis=-1)


def _xent_to_target(logits, target):
  """Cross-entropy against a target whose student-derived parts the caller has detached; the
  labels' part stays differentiable, so labels that are learned (train/learned_weights.py)
  get the gradient a student's loss gives them."""
  return optax.softmax_cross_entropy(logits, target)


def logconf(logits, labels, *, step_frac, a_max=0.5, warmup_frac=0.2, balance_batch=False,
            recent=None):
  """Auxiliary confidence loss: target = (1 - a) * w + a * hard(p), hard(p) detached.
  balance_batch centres the labels (centre_log_odds) and hardens half the batch positive."""
  positive_rate = None
  if balance_batch:
    labels, positive_rate = centre_log_odds(labels), 0.5
  a = confidence_weight(step_frac, a_max, warmup_frac)
  hard = jax.lax.stop_gradient(balanced_hard_predictions(logits, labels, recent, positive_rate))
  return _xent_to_target(logits, (1.0 - a) * labels + a * hard)


def entropy(logits, labels, *, step_frac, a_max=0.5, warmup_frac=0.2, balance_batch=False,
            recent=None):
  """The confidence loss with soft self-targets: target = (1 - a) * w + a * p, p detached
  (minimising it also lowers the student's entropy). `recent` is accepted for symmetry with
  logconf; soft targets need no threshold."""
  del recent
  if balance_batch:
    labels = centre_log_odds(labels)
  a = confidence_weight(step_frac, a_max, warmup_frac)
  own = jax.lax.stop_gradient(jax.nn.softmax(logits.astype(jnp.float32)))
  return _xent_to_target(logits, (1.0 - a) * labels + a * own)


def logconf_legacy(logits, labels, *, step_frac, a_max=0.5, warmup_frac=0.1):
  """The OpenAI code's schedule, kept only to reproduce its numbers: a = a_max * step_frac
  during warmup (reaching 0.05 at 10%), then a jump to a_max. Prefer `logconf`."""
  step_frac = jnp.asarray(step_frac, jnp.float32)
  a = jnp.where(step_frac > warmup_frac, a_max, a_max * step_frac)
  hard = jax.lax.stop_gradient(balanced_hard_predictions(logits, labels))
  return _xent_to_target(logits, (1.0 - a) * labels + a * hard)


def product(logits, labels, *, step_frac=0.0, alpha=1.0, beta=1.0):
  """Cross-entropy against target ∝ w^alpha * p^beta (normalised, detached)."""
  del step_frac
  tiny = jnp.finfo(jnp.float32).tiny
  own = jax.lax.stop_gradient(jax.nn.log_softmax(logits, axis=-1))
  log_target = alpha * jnp.log(labels + tiny) + beta * own
  return _xent_to_target(logits, jax.nn.softmax(log_target, axis=-1))


def window(logits, labels, *, step_frac=0.0, radius=0.15):
  """Cross-entropy only where the student is unsure (max probability < 0.5 + radius), zero
  elsewhere; the caller's mean divides by the whole batch, as EleutherAI's does. radius
  "midweak" (median |w - 0.5| of the training labels) is resolved by `bind`."""
  del step_frac
  unsure = jax.nn.softmax(logits.astype(jnp.float32)).max(-1) < 0.5 + radius
  return jnp.where(unsure, optax.softmax_cross_entropy(logits, labels), 0.0)


def adaptconf(logits, labels, *, step_frac=0.0, temperature=0.5):
  """AdaptConf (Guo et al. 2024): (1 - β) KL(w ‖ p) + β CE(p, hard(p)) per example, with
  β = exp(c_s/T) / (exp(c_s/T) + exp(c_w/T)) (detached), c_s = CE(p, hard(p)) and
  c_w = CE(p, hard(w)). Where the student agrees with its supervisor β = 1/2; the more
  confidently it disagrees, the more weight goes back to the supervisor."""
  del step_frac
  classes = logits.shape[-1]
  self_hard = jax.nn.one_hot(jnp.argmax(logits, -1), classes)
  supervisor_hard = jax.nn.one_hot(jnp.argmax(labels, -1), classes)
  ce_self = _xent_to_target(logits, self_hard)
  ce_supervisor = _xent_to_target(logits, supervisor_hard)
  beta = jax.lax.stop_gradient(jax.nn.sigmoid((ce_self - ce_supervisor) / temperature))
  return (1.0 - beta) * kl(logits, labels) + beta * ce_self


LOSSES: dict[str, LossFn] = {
    "xent": xent,
    "logconf": logconf,
    "product": product,
    "entropy": entropy,
    "window": window,
    "kl": kl,
    "adaptconf": adaptconf,
    "logconf_legacy": logconf_legacy,
}
# Handled by the training step, not the loss: the length of the buffer of recent predictions.
STEP_HPARAMS = ("buffer_size",)
_CALLER_ARGS = ("logits", "labels", "step_frac", "recent")


@dataclasses.dataclass(frozen=True)
class Loss:
  """A loss with its hyperparameters bound, and what the training step must keep for it."""
  fn: LossFn
  buffer_size: int = 0  # > 0: pass the last buffer_size predictions as `recent`


def spec(name: str, losses_cfg: Mapping[str, Any] | None = None) -> tuple[str, dict]:
  """(base loss, hyperparameters) of a loss named in a config: a registered loss with the
  hyperparameters in losses_cfg[name], or a variant defined there as {"base": <loss>, ...}."""
  section = dict((losses_cfg or {}).get(name, {}))
  base = section.pop("base", name)
  if base not in LOSSES:
    known = list(dict.fromkeys([*LOSSES, *(losses_cfg or {})]))
    raise ConfigError(f"unknown loss {name!r}; choose from {', '.join(known)}")
  allowed = [p for p in inspect.signature(LOSSES[base]).parameters if p not in _CALLER_ARGS]
  if "recent" in inspect.signature(LOSSES[base]).parameters:
    allowed += list(STEP_HPARAMS)
  unknown = sorted(set(section) - set(allowed))
  if unknown:
    raise ConfigError(f"loss {name!r} has no hyperparameters {unknown}; it takes {allowed}")
  return base, section


def bind(name: str, losses_cfg: Mapping[str, Any] | None = None,
         train_labels: np.ndarray | None = None) -> Loss:
  """The named loss with its hyperparameters bound. Data-dependent values are resolved from
  the training labels [n, 2]: window's radius "midweak" becomes the median |w - 0.5|."""
  base, hparams = spec(name, losses_cfg)
  if hparams.get("radius") == "midweak":
    if train_labels is None:
      raise ConfigError(f"loss {name!r}: radius 'midweak' needs the training labels")
    hparams["radius"] = float(np.median(np.abs(np.asarray(train_labels)[:, 1] - 0.5)))
  elif isinstance(hparams.get("radius"), str):
    raise ConfigError(f"loss {name!r}: radius={hparams['radius']!r}; give a number or "
                      "'midweak'")
  buffer_size = int(hparams.pop("buffer_size", 0))
  return Loss(functools.partial(LOSSES[base], **hparams), buffer_size)


def get_loss(name: str, hparams=None) -> LossFn:
  """The registered loss `name` with `hparams` bound; unknown names raise ConfigError."""
  return bind(name, {name: dict(hparams or {})}).fn


def resolved_hparams(name: str, losses_cfg, train_labels) -> dict:
  """The hyperparameters a bound loss runs with (for the record: midweak's radius)."""
  loss = bind(name, losses_cfg, train_labels)
  return {**loss.fn.keywords, "buffer_size": loss.buffer_size} if loss.buffer_size else dict(
      loss.fn.keywords)
