"""A phase's training curves as they happen: TensorBoard event files (tensorboardX), W&B
when installed and asked for, and a progress line every few seconds when stderr is not a
terminal (where tqdm's bar is off). Only process 0 writes.

Config section `logging`: tensorboard (bool), wandb (bool), wandb_project (str),
progress_every_s (seconds between progress lines; 0: none). It is not part of any key.
"""

from __future__ import annotations

import contextlib
import logging
import pathlib
import sys
import time
from typing import Callable, Mapping

import jax

from w2s_jax.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULTS = dict(tensorboard=True, wandb=False, wandb_project="w2s_jax", progress_every_s=30.0)


class Tracker:
  """Receives a training loop's scalars for one phase."""

  def __init__(self, name: str, total_steps: int, *, logdir: pathlib.Path | None = None,
               settings: Mapping | None = None,
               learning_rate: Callable[[int], float] | None = None):
    settings = {**DEFAULTS, **(settings or {})}
    self.name, self.total_steps, self.learning_rate = name, total_steps, learning_rate
    self.progress_every_s = float(settings["progress_every_s"])
    self._writer = self._wandb = None
    self._start = self._last_line = 0.0
    self._start_step = None
    primary = jax.process_index() == 0
    if primary and settings["tensorboard"] and logdir is not None:
      import tensorboardX
      self._writer = tensorboardX.SummaryWriter(str(logdir), flush_secs=30)
    if primary and settings["wandb"]:
      try:
        import wandb
      except ImportError:
        raise ConfigError("logging.wandb=True needs W&B: pip install wandb (or set it False)"
                          ) from None
      self._wandb = wandb.init(project=settings["wandb_project"], name=name, reinit=True,
                               dir=str(logdir.parent) if logdir else None)

  def scalars(self, step: int, values: Mapping[str, float]) -> None:
    values = dict(values)
    if self.learning_rate is not None:
      values.setdefault("learning_rate", float(self.learning_rate(step)))
    if self._writer is not None:
      for key, value in values.items():
        self._writer.add_scalar(f"{self.name}/{key}", value, step)
    if self._wandb is not None:
      self._wandb.log(values, step=step)

  def step(self, step: int, loss: float | None) -> None:
    """Called every step: a progress line when due and no terminal shows tqdm's bar."""
    now = time.monotonic()
    if self._start_step is None:  # rates count from the first step, after compilation
      self._start_step, self._start, self._last_line = step, now, now
      return
    if (not self.progress_every_s or sys.stderr.isatty()
        or now - self._last_line < self.progress_every_s):
      return
    self._last_line = now
    rate = (step - self._start_step) / max(now - self._start, 1e-9)
    eta = (self.total_steps - step) / max(rate, 1e-9)
    last = f", loss {loss:.4f}" if loss is not None else ""
    log.info("%s: step %d/%d (%.0f%%)%s, %.2f steps/s, ETA %s", self.name, step,
             self.total_steps, 100 * step / max(self.total_steps, 1), last, rate,
             time.strftime("%H:%M:%S", time.gmtime(eta)))

  def close(self) -> None:
    writer, self._writer = self._writer, None
    if writer is not None:
      try:
        writer.close()
      except OSError:
        # A full disk: stop tensorboardX's writer thread and mark its files closed, or it
        # retries at exit and prints tracebacks there; the error goes up to the caller.
        for file_writer in (writer.all_writers or {}).values():
          events = file_writer.event_writer
          events._closed = True
          with contextlib.suppress(Exception):
            events._worker.stop()
        raise
    if self._wandb is not None:
      self._wandb.finish()
