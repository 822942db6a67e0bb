"""Objectives and the pure train and predict steps, jitted with explicit shardings (the
train step donates the incoming state)."""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from w2s_jax import losses, sharding
from w2s_jax.data import batching
from w2s_jax.models import TOKEN_INPUTS, model_inputs
from w2s_jax.train.state import trainable_mask

# (params, batch, step, loss_state) -> (loss, (metrics, new loss_state))
Objective = Callable[[Any, Mapping[str, jax.Array], jax.Array, Any],
                     tuple[jax.Array, tuple[dict, Any]]]


def step_fraction(step, total_steps: int):
  # Behind a barrier, so XLA cannot fold this division into a loss's own (step_frac /
  # warmup_frac), which it does in some programs and not others.
  return jax.lax.optimization_barrier(step.astype(jnp.float32) / max(total_steps, 1))


def chosen_loss(index, loss_fns: Sequence[Callable], logits, labels):
  """loss_fns[index](logits, labels), always inside a conditional (one loss: two copies of it,
  an index XLA cannot fold). XLA optimises a conditional's branch on its own, so a loss rounds
  the same in a program holding only it as among the students' losses trained together."""
  branches = list(loss_fns) if len(loss_fns) > 1 else [loss_fns[0]] * 2
  return jax.lax.switch(index, branches, logits, labels)


def classification_objective(model: nn.Module, loss: losses.Loss | Callable,
                             total_steps: int) -> Objective:
  """Mean of the per-example loss against batch["labels"] (probability vectors). A loss with
  a buffer sees the recent predictions and leaves this batch's in the loss state."""
  loss = loss if isinstance(loss, losses.Loss) else losses.Loss(loss)

  def objective(params, batch, step, loss_state):
    logits = model.apply({"params": params}, *model_inputs(model, batch))
    step_frac = step_fraction(step, total_steps)
    if not loss.buffer_size:
      always_first = (step < 0).astype(jnp.int32)  # 0 at run time, unknown to the compiler
      only = functools.partial(loss.fn, step_frac=step_frac)
      per_example = chosen_loss(always_first, [only], logits, batch["labels"])
      return per_example.mean(), ({}, loss_state)
    recent = loss_state["recent"]
    per_example = loss.fn(logits, batch["labels"], step_frac=step_frac, recent=recent)
    return per_example.mean(), ({}, {"recent": with_latest(recent, logits)})
  return objective


def with_latest(recent, logits):
  """The buffer of recent p(y=1) with this batch's appended and the oldest dropped."""
  p_pos = jax.lax.stop_gradient(jax.nn.softmax(logits.astype(jnp.float32))[:, 1])
  return jnp.concatenate([recent, p_pos])[-len(recent):]


def language_model_objective(model: nn.Module) -> Objective:
  """Next-token cross-entropy over real (unmasked) positions."""
  def objective(params, batch, step, loss_state):
    del step
    logits = model.apply({"params": params}, *model_inputs(model, batch))
    targets = batch["input_ids"][:, 1:]
    weights = (batch["attention_mask"][:, 1:] * batch["attention_mask"][:, :-1]).astype(
        jnp.float32)
    nll = optax.softmax_cross_entropy_with_integer_labels(logits[:, :-1], targets)
    return (nll * weights).sum() / jnp.maximum(weights.sum(), 1.0), ({}, loss_state)
  return objective


def make_train_step(objective: Objective, tx: optax.GradientTransformation, state_shardings,
                    batch_sharding, trainable: Callable[[tuple[str, ...]], bool] | None = None,
                    accum_steps: int = 1):
  """train_step_fn jitted with the state's and batch's shardings, donating the state."""
  replicated = sharding.replicated(batch_sharding.mesh)
  return jax.jit(train_step_fn(objective, tx, trainable, accum_steps),
                 in_shardings=(state_shardings, batch_sharding),
                 out_shardings=(state_shardings, replicated), donate_argnums=0)


def train_step_fn(objective: Objective, tx: optax.GradientTransformation,
                  trainable: Callable[[tuple[str, ...]], bool] | None = None,
                  accum_steps: int = 1):
  """The pure step (state, batch) -> (state, metrics). Frozen parameters (trainable(path)
  False) pass through stop_gradient, so no gradient is ever computed for them (a LoRA step
  skips every weight gradient).

  With accum_steps > 1 the batch is cut into that many micro-batches, whose gradients are
  averaged before one optimizer update (for a mean loss: the full batch's gradient, at a
  micro-batch's memory). Micro-batch j takes rows j, j + k, j + 2k, ... so each device holds
  its share of every micro-batch and nothing moves between devices; a loss state (the
  buffer of recent predictions) is carried from one micro-batch to the next.
  """
  def gradients(params, batch, step, loss_state):
    def loss_of(params):
      if trainable is not None:
        params = jax.tree.map(lambda p, t: p if t else jax.lax.stop_gradient(p), params,
                              trainable_mask(params, trainable))
      return objective(params, batch, step, loss_state)
    (loss, (aux, loss_state)), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
    return loss, aux, loss_state, grads

  def accumulated(params, batch, step, loss_state):
    def micro_batches(x):
      return x.reshape(x.shape[0] // accum_steps, accum_steps, *x.shape[1:]).swapaxes(0, 1)

    def add(carry, micro):
      loss_sum, aux_sum, loss_state, grad_sum = carry
      loss, aux, loss_state, grads = gradients(params, micro, step, loss_state)
      return (loss_sum + loss, jax.tree.map(jnp.add, aux_sum, aux), loss_state,
              jax.tree.map(jnp.add, grad_sum, grads)), None

    micro = jax.tree.map(micro_batches, batch)
    first = jax.tree.map(lambda x: x[0], micro)
    shapes = jax.eval_shape(gradients, params, first, step, loss_state)
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), (shapes[0], shapes[1], shapes[3]))
    (loss, aux, loss_state, grads), _ = jax.lax.scan(
        add, (zeros[0], zeros[1], loss_state, zeros[2]), micro)
    scale = 1.0 / accum_steps
    return loss * scale, jax.tree.map(lambda a: a * scale, aux), loss_state, jax.tree.map(
        lambda g: g * scale, grads)

  def train_step(state, batch):
    compute = gradients if accum_steps == 1 else accumulated
    loss, aux, loss_state, grads = compute(state["params"], batch, state["step"],
                                           state["loss_state"])
    updates, opt = tx.update(grads, state["opt"], state["params"])
    new_state = {"params": optax.apply_updates(state["params"], updates), "opt": opt,
                 "step": state["step"] + 1, "loss_state": loss_state}
    return new_state, {"loss": loss, "grad_norm": optax.tree.norm(grads), **aux}

  return train_step


def stacked_shardings(shardings):
  """The shardings of a state stacked over students: the new leading axis replicated, so each
  device holds its share of every student."""
  return jax.tree.map(lambda s: NamedSharding(s.mesh, P(None, *s.spec)), shardings,
                      is_leaf=lambda x: isinstance(x, NamedSharding))


def map_students(fn, stacked, chunk: int | None):
  """fn over the leading (student) axis of `stacked`, `chunk` students vmapped at a time
  inside one program (None or 1: one after another)."""
  return jax.lax.map(fn, stacked, batch_size=None if chunk in (None, 1) else chunk)


def make_predict_step(model: nn.Module, param_shardings, batch_sharding,
                      students_chunk: int = 0):
  """(params, batch) -> logits [batch, classes], float32. With students_chunk != 0 the
  params are stacked over students and the logits are [students, batch, classes]."""
  def predict_step(params, batch):
    logits = model.apply({"params": params}, *model_inputs(model, batch))
    return logits.astype(jnp.float32)
  if students_chunk == 0:
    return jax.jit(predict_step, in_shardings=(param_shardings, batch_sharding),
                   out_shardings=batch_sharding)
  return jax.jit(lambda params, batch: map_students(lambda p: predict_step(p, batch), params,
                                                    students_chunk),
                 in_shardings=(stacked_shardings(param_shardings), batch_sharding),
                 out_shardings=stacked_shardings(batch_sharding))


def predict(predict_step, params, arrays: Mapping[str, np.ndarray], batch_size: int,
            batch_sharding, fields: Sequence[str] = TOKEN_INPUTS) -> np.ndarray:
  """Logits for every row of `arrays` (the model's input `fields`), in order, gathered to
  the host."""
  inputs = {k: arrays[k] for k in fields}
  out = None
  for batch, real in batching.eval_batches(inputs, batch_size):
    logits = predict_step(params, sharding.put_batch(batch, batch_sharding))
    logits = np.asarray(multihost_utils.process_allgather(logits, tiled=True)
                        if jax.process_count() > 1 else logits)
    if out is None:
      out = np.empty((*logits.shape[:-2], len(inputs[fields[0]]), logits.shape[-1]),
                     np.float32)
    out[..., real, :] = logits[..., : len(real), :]
  return out if out is not None else np.zeros((0, 2), np.float32)


def make_predictor(model: nn.Module, param_shardings, mesh, students_chunk: int = 0):
  """(params, arrays, batch_size) -> logits of every row: one compiled predict step, reused
  for every split and every validation."""
  batch_sharding = sharding.batch_sharding(mesh)
  step = make_predict_step(model, param_shardings, batch_sharding, students_chunk)
  fields = getattr(model, "input_fields", TOKEN_INPUTS)
  return lambda params, arrays, batch_size: predict(step, params, arrays, batch_size,
                                                    batch_sharding, fields)
