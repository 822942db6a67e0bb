"""Batches for training (grain: seeded shuffle, reshuffled every epoch) and for evaluation."""

from __future__ import annotations

from typing import Iterator, Mapping

import grain
import jax
import numpy as np

from w2s_jax.errors import DataError


def steps_per_run(n_examples: int, batch_size: int, num_epochs: float) -> int:
  return int(n_examples * num_epochs) // batch_size


def process_rows(batch_size: int) -> slice:
  """The rows of a global batch that this process feeds (all of them on one host)."""
  n_proc, proc = jax.process_count(), jax.process_index()
  if batch_size % n_proc:
    raise DataError(f"batch size {batch_size} does not split over {n_proc} processes")
  return slice(proc * batch_size // n_proc, (proc + 1) * batch_size // n_proc)


def train_batches(arrays: Mapping[str, np.ndarray], *, batch_size: int, num_epochs: float,
                  seed: int) -> Iterator[dict[str, np.ndarray]]:
  """This process's rows of each global batch; the last partial batch is dropped."""
  n = len(next(iter(arrays.values())))
  if n < batch_size:
    raise DataError(f"{n} training examples are fewer than one batch of {batch_size}; "
                    "lower the batch size or add data")
  local = process_rows(batch_size)
  repeats = int(np.ceil(num_epochs))
  dataset = (grain.MapDataset.range(n).shuffle(seed=seed).repeat(repeats)
             .batch(batch_size, drop_remainder=True)
             .map(lambda idx: {k: v[idx[local]] for k, v in arrays.items()}))
  for step, batch in enumerate(dataset):
    if step >= steps_per_run(n, batch_size, num_epochs):
      return
    yield batch


def eval_batches(arrays: Mapping[str, np.ndarray], batch_size: int):
  """(this process's rows of each batch, n_real) in order; the last global batch is padded
  with copies of row 0, and its first n_real rows are real."""
  n = len(next(iter(arrays.values())))
  local = process_rows(batch_size)
  for start in range(0, n, batch_size):
    idx = np.arange(start, min(start + batch_size, n))
    n_real = len(idx)
    idx = np.concatenate([idx, np.zeros(batch_size - n_real, idx.dtype)])
    yield {k: v[idx[local]] for k, v in arrays.items()}, n_real
