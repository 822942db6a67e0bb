"""A train or pretrain config section, parsed and checked once: the one place that holds
their keys' defaults."""

from __future__ import annotations

import dataclasses
from typing import Mapping

from w2s_jax.core import validation
from w2s_jax.data import batching
from w2s_jax.errors import ConfigError

# Keys that change how a run reports, saves or guards, not what it computes: they stay out of
# phase keys.
NOT_IN_KEY = ("log_every", "checkpoint_every_steps", "checkpoint_every_minutes",
              "checkpoints_kept", "max_loss_ratio")


@dataclasses.dataclass(frozen=True)
class TrainSettings:
  """Optimiser, batching, logging, checkpointing and guards of one training loop.

  A classifier trains for `epochs` over its rows; a pretraining section gives `steps` (and
  its own data `seed`) instead. See configs/default.py's train_section for what each key
  does."""
  lr: float
  batch_size: int = 32
  epochs: float | None = None
  steps: int | None = None
  seed: int = 0
  enabled: bool = True
  grad_accum_steps: int = 1
  warmup_steps: int = 0
  weight_decay: float = 0.0
  b1: float = 0.9
  b2: float = 0.999
  max_grad_norm: float = 0.0
  bucket_window: int = 0
  log_every: int = 25
  eval_every: int = 0
  select_best: bool = False
  early_stop_patience: int = 0
  checkpoint_every_steps: int = 0
  checkpoint_every_minutes: float = 0.0
  checkpoints_kept: int = 2
  max_loss_ratio: float = 0.0
  save_weights: bool = False
  section: str = dataclasses.field(default="train", compare=False)  # its config path

  @classmethod
  def parse(cls, section: Mapping, path: str) -> "TrainSettings":
    """The settings of config section `path` (e.g. "strong.train"); unknown keys and
    non-positive sizes are ConfigErrors naming the key."""
    fields = {f.name for f in dataclasses.fields(cls)} - {"section"}
    unknown = sorted(set(section) - fields)
    if unknown:
      raise ConfigError(f"{path} has unknown keys {unknown}; it takes {sorted(fields)}")
    settings = cls(**section, section=path)
    if settings.enabled:
      length = ("steps",) if settings.steps is not None else ("epochs",)
      for key in ("lr", *length, "batch_size"):
        validation.positive(f"{path}.{key}", getattr(settings, key))
      if settings.steps is not None:
        settings.check_warmup(int(settings.steps))
    return settings

  def check_warmup(self, total_steps: int) -> None:
    """A warmup as long as the run leaves no steps for the schedule's decay."""
    if self.warmup_steps and self.warmup_steps >= total_steps:
      raise ConfigError(f"{self.section}.warmup_steps={self.warmup_steps} is not below the "
                        f"{total_steps} steps it trains for; lower it")

  def total_steps(self, n_rows: int) -> int:
    if self.steps is not None:
      return int(self.steps)
    return batching.steps_per_run(n_rows, self.batch_size, self.epochs)

  def num_epochs(self, n_rows: int) -> float:
    if self.steps is not None:
      return self.steps * self.batch_size / n_rows
    return self.epochs

