"""The training loop: steps over resumable batches, logging, validation with best-weights
selection and early stopping, mid-phase checkpoints, and stopping on request."""

from __future__ import annotations

import logging
import math
import threading
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from w2s_jax import sharding
from w2s_jax.errors import Interrupted, TrainingError

log = logging.getLogger(__name__)


class StopRequest:
  """A request to stop training, made from a signal handler: the running loop saves a
  checkpoint and stops at its next step boundary. The entry point (command line) owns one and
  passes it down to every loop of its run."""

  def __init__(self):
    self._asked = threading.Event()
    self._loops = 0

  def request(self) -> bool:
    """Asks the running loop to save a checkpoint and stop after its current step; False when
    none runs (or a stop was already asked for): interrupt directly then."""
    if self._loops == 0 or self._asked.is_set():
      return False
    self._asked.set()
    return True

  @property
  def asked(self) -> bool:
    return self._asked.is_set()

  def enter(self) -> None:
    self._loops += 1

  def leave(self) -> None:
    self._loops -= 1
    self._asked.clear()

def fit(state, train_step, batches, total_steps: int, batch_sharding, *, log_every: int = 25,
        desc: str = "train", validate: Callable[[Any], float] | None = None,
        validate_every: int = 0, select_best: bool = False, patience: int = 0,
        checkpoints=None, max_loss_ratio: float = 0.0, remedy: str = "lower the learning rate",
        tracker=None, stop: StopRequest | None = None):
  """Runs train_step over the batches (a resumable grain iterator when checkpointing).

  The loss is read back at step 1 and every `log_every` steps, so the host does not stall
  the device. A non-finite loss, or one above max_loss_ratio times the first (when > 0), is a
  TrainingError naming `desc`, the step and the `remedy`.

  With `validate` (params -> score, higher is better; NaN counts as worst) and
  validate_every > 0, the params are scored every validate_every steps and at the end:
  `select_best` returns the best-scoring params (EleutherAI's best checkpoint) and
  `patience` > 0 stops after that many scores in a row without improvement.

  With `checkpoints` (checkpoints.TrainCheckpoints), training resumes from the latest one
  when there is one (`state` may then be None) and saves as they are due; a stop request
  (`stop`, a StopRequest) saves one and raises Interrupted. A `tracker` (tracking.Tracker) receives
  the logged scalars and is told of every step.

  Returns (state, log): log = {"history": [{step, loss, grad_norm}], "validation":
  [{step, score}], "best_step": step of the returned params' score or None, "stopped_at":
  the step of an early stop or None, "resumed_from": the step training resumed at or None}.
  """
  stop = stop or StopRequest()
  record = {"step": 0, "history": [], "validation": [], "best_score": None,
            "best_step": None, "since_best": 0, "stopped_at": None, "start_loss": None}
  best_params, resumed_from = None, None
  if checkpoints is not None and checkpoints.latest_step() is not None:
    try:
      state, record, best_params = checkpoints.restore(batches)
    except BaseException:
      if tracker is not None:
        tracker.close()
      raise
    resumed_from = record["step"]
    log.info("%s: resuming at step %d/%d from %s", desc, resumed_from, total_steps,
             checkpoints.directory)
  if state is None:
    raise ValueError("fit needs a state or a checkpoint to resume from")
  bar = tqdm.tqdm(total=total_steps, initial=record["step"], desc=desc, disable=None,
                  leave=False)
  stop.enter()
  try:
    for step, batch in enumerate(batches, start=record["step"] + 1):
      state, metrics = train_step(state, sharding.put_batch(batch, batch_sharding))
      record["step"] = step
      bar.update(1)
      if step == 1 or step % log_every == 0 or step == total_steps:
        # A scalar, or one value per student when students train together.
        loss, grad_norm = (np.asarray(metrics[k], np.float64).tolist()
                           for k in ("loss", "grad_norm"))
        worst = max(np.atleast_1d(loss), key=lambda v: (not math.isfinite(v), v))
        _check_loss(float(worst), record, step, total_steps, desc, max_loss_ratio, remedy)
        record["history"].append({"step": step, "loss": loss, "grad_norm": grad_norm})
        bar.set_postfix(loss=f"{float(np.mean(loss)):.4f}")
        if tracker is not None and not isinstance(loss, list):
          tracker.scalars(step, {"loss": loss, "grad_norm": grad_norm})
      if tracker is not None:
        last = record["history"][-1]["loss"] if record["history"] else None
        tracker.step(step, float(np.mean(last)) if last is not None else None)
      if validate is not None and validate_every and (step % validate_every == 0
                                                      or step == total_steps):
        score = float(validate(state["params"]))
        record["validation"].append({"step": step, "score": score})
        if tracker is not None:
          tracker.scalars(step, {"validation_auroc": score})
        if math.isfinite(score) and (record["best_score"] is None
                                     or score > record["best_score"]):
          record.update(best_score=score, best_step=step, since_best=0)
          if select_best:  # the step donates its input: keep a copy, not the buffers
            best_params = jax.tree.map(jnp.copy, state["params"])
        else:
          record["since_best"] += 1
          if patience and record["since_best"] >= patience:
            record["stopped_at"] = step
            break
      stopping = stop.asked
      if checkpoints is not None and step < total_steps and (stopping or checkpoints.due(step)):
        checkpoints.save(step, state, batches, record, best_params)
      if stopping:
        saved = "checkpoint saved" if checkpoints is not None else "checkpointing is off"
        raise Interrupted(f"at step {step}/{total_steps} ({saved})")
  finally:
    stop.leave()
    bar.close()
    if checkpoints is not None:
      checkpoints.close()
    if tracker is not None:
      tracker.close()
  if record["history"]:
    log.info("%s: %d steps, final loss %s", desc, record["history"][-1]["step"],
             np.round(record["history"][-1]["loss"], 4))
  if best_params is not None:
    state = {**state, "params": best_params}
    log.info("%s: best validation score %.4f at step %d", desc, record["best_score"],
             record["best_step"])
  return state, {"history": record["history"], "validation": record["validation"],
                 "best_step": record["best_step"] if select_best else None,
                 "stopped_at": record["stopped_at"], "resumed_from": resumed_from}


def _check_loss(loss, record, step, total_steps, desc, max_loss_ratio, remedy) -> None:
  """Stops a diverged run: a non-finite loss, or one far above where training started."""
  if not math.isfinite(loss):
    raise TrainingError(f"{desc}: loss is {loss} at step {step}/{total_steps}; {remedy} or "
                        "check the labels for NaN")
  if record["start_loss"] is None:
    record["start_loss"] = loss
  bound = max_loss_ratio * max(record["start_loss"], 1e-2)
  if max_loss_ratio and loss > bound:
    raise TrainingError(f"{desc}: loss {loss:.3g} at step {step}/{total_steps} is over "
                        f"{max_loss_ratio:g}x its start ({record['start_loss']:.3g}): training "
                        f"diverged; {remedy}")
