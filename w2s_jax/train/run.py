"""run_training: the one way every phase trains a model.

optimizer -> state description -> checkpoints -> init or restore -> jitted step -> batches ->
the loop; what comes back can predict with the trained parameters."""

from __future__ import annotations

import contextlib
import dataclasses
import pathlib
from typing import Any, Callable, Mapping

import flax.linen as nn
import numpy as np

from w2s_jax import checkpoints as checkpoints_lib
from w2s_jax import sharding
from w2s_jax.data import batching
from w2s_jax.train import loop, optim, steps
from w2s_jax.train import state as state_lib
from w2s_jax.train.settings import TrainSettings
from w2s_jax.train.students import StudentGroup


@dataclasses.dataclass
class Trained:
  state: Any  # a tuple of states or a stacked state for a StudentGroup
  log: dict  # fit's record
  total_steps: int
  n_train: int
  predict: Callable[[Any, Mapping[str, np.ndarray], int], np.ndarray]  # params, arrays, bs
  param_shardings: Any


def run_training(model: nn.Module, objective: Callable[[int], steps.Objective],
                 arrays: Mapping[str, np.ndarray], settings: TrainSettings, mesh, *,
                 seed: int, desc: str, remedy: str,
                 backbone: Callable[[Any], Any] | None = None,
                 initial_state: Callable[[Any, Any, Any, Any], Any] | None = None,
                 trainable: Callable[[tuple[str, ...]], bool] | None = None,
                 loss_state: dict | None = None,
                 checkpoint_dir: pathlib.Path | None = None,
                 tracker: Callable[[int, Any], Any] | None = None,
                 validate: Callable[[Callable], Callable[[Any], float]] | None = None,
                 students: StudentGroup | None = None,
                 stop: loop.StopRequest | None = None) -> Trained:
  """Trains `model` on the rows of `arrays` (the batch's fields) as `settings` say.

  objective(total_steps) gives the objective. The state starts from `initial_state(abstract,
  shardings, sample, tx)` when given, else from a fresh initialisation with `seed` whose
  backbone is `backbone(abstract backbone params)` (None: initialised too); with a
  `checkpoint_dir` it resumes from the latest checkpoint there instead. `tracker(total_steps,
  schedule)` makes the curves' tracker; `validate(predict)` the loop's validation score.
  `students` trains a StudentGroup (states per student; no checkpoints)."""
  n_train = len(next(iter(arrays.values())))
  total_steps = settings.total_steps(n_train)
  settings.check_warmup(total_steps)
  tx = optim.make_optimizer(settings, total_steps, trainable=trainable)
  sample = {k: v[: settings.batch_size] for k, v in arrays.items()}
  if students is not None:
    loss_state = students.loss_state()
  abstract, shardings = state_lib.describe_state(model, tx, mesh, sample, loss_state=loss_state)
  ckpt = None
  if checkpoint_dir is not None:
    ckpt = checkpoints_lib.TrainCheckpoints(
        checkpoint_dir, abstract, every_steps=settings.checkpoint_every_steps,
        every_minutes=settings.checkpoint_every_minutes, keep=settings.checkpoints_kept)
  # closed on every way out (fit closes it too), so no orbax thread outlives the phase
  with contextlib.closing(ckpt) if ckpt is not None else contextlib.nullcontext():
    state = None  # resumed from the latest checkpoint when there is one
    if ckpt is None or ckpt.latest_step() is None:
      if initial_state is not None:
        state = initial_state(abstract, shardings, sample, tx)
      else:
        start = backbone(abstract["params"]["backbone"]) if backbone is not None else None
        state = state_lib.init_state(model, tx, shardings, sample, seed, start, loss_state)
    batch_sharding = sharding.batch_sharding(mesh)
    accum = settings.grad_accum_steps
    if students is None:
      step_fn = steps.make_train_step(objective(total_steps), tx, shardings, batch_sharding,
                                      trainable, accum_steps=accum)
      predict = steps.make_predictor(model, shardings["params"], mesh)
    else:
      state = students.initial(state, shardings)
      step_fn = students.step(objective(total_steps), tx, shardings, batch_sharding,
                              trainable, accum)
      predict = steps.make_predictor(model, shardings["params"], mesh,
                                     0 if students.chunk == 1 else students.chunk)
    batches = batching.train_batches(arrays, batch_size=settings.batch_size,
                                     num_epochs=settings.num_epochs(n_train), seed=seed,
                                     bucket_window=settings.bucket_window)
    state, fit_log = loop.fit(
        state, step_fn, batches, total_steps, batch_sharding, log_every=settings.log_every,
        desc=desc, validate=validate(predict) if validate is not None else None,
        validate_every=settings.eval_every, select_best=settings.select_best,
        patience=settings.early_stop_patience, checkpoints=ckpt,
        max_loss_ratio=settings.max_loss_ratio, remedy=remedy,
        tracker=(tracker(total_steps, optim.learning_rate_schedule(settings, total_steps))
                 if tracker is not None else None), stop=stop)
  return Trained(state, fit_log, total_steps, n_train, predict, shardings["params"])
