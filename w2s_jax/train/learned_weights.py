"""A student whose soft labels are a learned weighting of several supervisors' (RAVEN, Jeon
et al. 2024): label = Σ_k w_k p_k, with the weights w on the simplex trained jointly with the
student by plain gradient descent on the student's own loss, then clamped at 1e-6 and
renormalised. While step_frac < freeze_frac the weights stay uniform; while step_frac <
easy_frac only the examples all members agree on count (RAVEN's easy-sample start).

The weights live in the loss state (loss_state["ensemble_weights"]), so the train step, its
shardings and checkpoints are those of any other student."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from w2s_jax import losses
from w2s_jax.models import model_inputs
from w2s_jax.train import state as state_lib
from w2s_jax.train import steps

MIN_WEIGHT = 1e-6  # RAVEN's floor: a member can always come back


@dataclasses.dataclass(frozen=True)
class Weighting:
  """How the weights learn: their step size, and the fractions of training during which they
  are frozen and during which members' disagreements are left out."""
  weight_lr: float
  freeze_frac: float
  easy_frac: float


def initial_loss_state(members: int, loss: losses.Loss) -> dict:
  """Uniform weights (and the loss's buffer of recent predictions, if it keeps one)."""
  return {**state_lib.initial_loss_state(loss),
          "ensemble_weights": jnp.full((members,), 1.0 / members, jnp.float32)}


def members_agree(member_p: jax.Array) -> jax.Array:
  """[batch] whether every member's hard label equals the first member's."""
  hard = member_p > 0.5
  return jnp.all(hard == hard[:, :1], axis=-1)


def updated_weights(weights, gradient, lr):
  """One projected step: descend, clamp at MIN_WEIGHT, renormalise."""
  stepped = jnp.maximum(weights - lr * gradient, MIN_WEIGHT)
  return stepped / stepped.sum()


def learned_weights_objective(model, loss: losses.Loss, weighting: Weighting,
                              total_steps: int) -> steps.Objective:
  """The student's mean loss against the weighted members' labels (batch["member_p"]:
  [batch, members] p(y=1)); the new loss state carries the stepped weights."""
  def objective(params, batch, step, loss_state):
    logits = model.apply({"params": params}, *model_inputs(model, batch))
    step_frac = steps.step_fraction(step, total_steps)
    member_p = batch["member_p"].astype(jnp.float32)
    counted = jnp.where(step_frac < weighting.easy_frac,
                        members_agree(member_p).astype(jnp.float32), 1.0)
    recent = loss_state.get("recent")
    extra = {"recent": recent} if recent is not None else {}

    def mean_loss(logits, weights):
      p_pos = member_p @ weights
      labels = jnp.stack([1.0 - p_pos, p_pos], axis=-1)
      per_example = loss.fn(logits, labels, step_frac=step_frac, **extra)
      return (per_example * counted).sum() / jnp.maximum(counted.sum(), 1.0)

    weights = loss_state["ensemble_weights"]
    value = mean_loss(logits, jax.lax.stop_gradient(weights))
    gradient = jax.grad(mean_loss, argnums=1)(jax.lax.stop_gradient(logits), weights)
    learning = step_frac >= weighting.freeze_frac
    new_state = {"ensemble_weights": jnp.where(
        learning, updated_weights(weights, gradient, weighting.weight_lr), weights)}
    if recent is not None:
      new_state["recent"] = steps.with_latest(recent, logits)
    return value, ({}, new_state)
  return objective
