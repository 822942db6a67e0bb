"""Students trained together: several students of one model, data and seed that differ only
in their loss, trained with one compiled step.

On a CPU each student is stepped by its own call of the shared step, the calls running side
by side in a thread pool that whoever trains the students owns; elsewhere their states are
stacked and vmapped."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import optax

from w2s_jax import losses, sharding
from w2s_jax.models import model_inputs
from w2s_jax.train import steps


def students_objective(model, student_losses: Sequence[losses.Loss],
                       total_steps: int) -> steps.Objective:
  """The classification objective of several students trained together, each with its own
  loss: loss_state["student"] picks it (where students are vmapped, every loss is computed
  and the student's selected, which costs little next to the model). Losses that keep a
  state of their own (a buffer) are not supported here."""
  if any(loss.buffer_size for loss in student_losses):
    raise ValueError("students trained together cannot keep a buffer of predictions")

  def objective(params, batch, step, loss_state):
    logits = model.apply({"params": params}, *model_inputs(model, batch))
    step_frac = steps.step_fraction(step, total_steps)
    fns = [functools.partial(loss.fn, step_frac=step_frac) for loss in student_losses]
    per_example = steps.chosen_loss(loss_state["student"], fns, logits, batch["labels"])
    return per_example.mean(), ({}, loss_state)
  return objective


def students_in_parallel(chunk: int, count: int) -> int:
  """How many students trained together one program computes at once: `chunk` when > 0;
  else all of them (vmapped) on an accelerator, and one at a time on a CPU, where the
  batched matmuls and embedding scatters of vmap ran at 0.75x the speed of separate ones
  (benchmarks/students.py). One at a time is make_students_step (each student its own call,
  the calls side by side); more, vmapped chunks of a stacked state
  (make_vectorised_train_step)."""
  if chunk > 0:
    return min(chunk, count)
  return 1 if jax.default_backend() == "cpu" else count


def each_student(fn, items: Sequence, pool: concurrent.futures.Executor | None) -> list:
  """[fn(item) for item in items], the calls made from the pool's threads (one process only).

  One student's program leaves part of a CPU idle (the offline default's student step: 10.2
  ms called in turn, 7.1 ms each four at a time; docs/performance.md), and calls made from
  one thread run one after another. Each call has inputs of its own, so what it computes is
  the same either way. Processes of a multi-process run keep one order: their programs meet
  in collectives."""
  if pool is None or len(items) < 2 or jax.process_count() > 1:
    return [fn(item) for item in items]
  return list(pool.map(fn, items))


def make_students_step(objective: steps.Objective, tx: optax.GradientTransformation,
                       state_shardings, batch_sharding,
                       trainable: Callable[[tuple[str, ...]], bool] | None = None,
                       accum_steps: int = 1, pool: concurrent.futures.Executor | None = None):
  """Students each stepped by its own call of one compiled step, side by side (each_student):
  (states, batch) -> (states, metrics with a list over students), a tuple of states whose
  loss_state["student"] picks each one's loss in `objective` (students_objective). A loss
  runs in a conditional branch in every classifier step (steps.chosen_loss), so each
  student's parameters are those of training it alone bit for bit (vmapping or slicing
  stacked states instead changed XLA's fusions and their rounding, which a self-referential
  loss such as `product` carried forward to 1.5e-5 in p)."""
  step = steps.make_train_step(objective, tx, state_shardings, batch_sharding, trainable,
                         accum_steps)

  def students_step(states, batch):
    stepped = each_student(lambda state: step(state, batch), states, pool)
    metrics = {k: [one[k] for _, one in stepped] for k in stepped[0][1]}
    return tuple(state for state, _ in stepped), metrics
  return students_step


def make_vectorised_train_step(objective: steps.Objective, tx: optax.GradientTransformation,
                               state_shardings, batch_sharding,
                               trainable: Callable[[tuple[str, ...]], bool] | None = None,
                               accum_steps: int = 1, chunk: int | None = None):
  """train_step_fn over students: states stacked on a leading axis, one batch shared by all;
  one compiled program and one dispatch per step for every student (see map_students)."""
  replicated = sharding.replicated(batch_sharding.mesh)
  single = steps.train_step_fn(objective, tx, trainable, accum_steps)

  def step(states, batch):
    return steps.map_students(lambda state: single(state, batch), states, chunk)
  stacked = steps.stacked_shardings(state_shardings)
  return jax.jit(step, in_shardings=(stacked, batch_sharding),
                 out_shardings=(stacked, replicated), donate_argnums=0)


@dataclasses.dataclass
class StudentGroup:
  """How run_training trains `count` students at once: `chunk` of them per program (1: each
  its own call, side by side in `pool`)."""
  count: int
  chunk: int
  pool: concurrent.futures.Executor | None = None

  def loss_state(self) -> dict:
    return {"student": jnp.zeros((), jnp.int32)}

  def initial(self, single, shardings):
    """Every student starts where a student trained alone would."""
    if self.chunk == 1:  # each its own buffers, as the step donates them
      return tuple(
          {**(single if i == 0 else jax.tree.map(jnp.copy, single)),
           "loss_state": jax.device_put({"student": jnp.asarray(i, jnp.int32)},
                                        shardings["loss_state"])}
          for i in range(self.count))

    def stack(state):
      stacked = jax.tree.map(lambda x: jnp.stack([x] * self.count), state)
      return {**stacked, "loss_state": {"student": jnp.arange(self.count, dtype=jnp.int32)}}
    return jax.jit(stack, out_shardings=steps.stacked_shardings(shardings))(single)

  def step(self, objective, tx, shardings, batch_sharding, trainable, accum_steps):
    if self.chunk == 1:
      return make_students_step(objective, tx, shardings, batch_sharding, trainable,
                                accum_steps=accum_steps, pool=self.pool)
    return make_vectorised_train_step(objective, tx, shardings, batch_sharding, trainable,
                                      accum_steps=accum_steps, chunk=self.chunk)
