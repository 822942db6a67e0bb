"""Batches for training and evaluation, as grain datasets.

Training order is a pure function of (seed, epoch): each epoch's permutation is cut into
windows of `bucket_window` batches, each window is sorted by length and cut into batches, and
the batches of the epoch are shuffled. Documents of similar length then share a batch, and
each batch is padded only to a power of two (at least MIN_WIDTH) above its longest document,
so short documents do not pay for long ones and only a handful of shapes ever compile.
The iterator is a grain DatasetIterator: `get_state()` / `set_state()` restore the exact
position. Each process reads only its own rows of every global batch.
"""

from __future__ import annotations

import math
from typing import Mapping

import grain
import jax
import numpy as np

from w2s_jax.errors import DataError

MIN_WIDTH = 16


def steps_per_run(n_examples: int, batch_size: int, num_epochs: float) -> int:
  return int(n_examples * num_epochs) // batch_size


def process_rows(batch_size: int) -> slice:
  """The rows of a global batch that this process feeds (all of them on one host)."""
  n_proc, proc = jax.process_count(), jax.process_index()
  if batch_size % n_proc:
    raise DataError(f"batch size {batch_size} does not split over {n_proc} processes")
  return slice(proc * batch_size // n_proc, (proc + 1) * batch_size // n_proc)


def padded_width(longest: int, full_width: int) -> int:
  """The batch's padded length: the next power of two, within [MIN_WIDTH, full_width]."""
  return min(full_width, max(MIN_WIDTH, 1 << max(int(longest) - 1, 0).bit_length()))


def epoch_batches(lengths: np.ndarray, batch_size: int, seed: int, epoch: int,
                  bucket_window: int = 0) -> list[np.ndarray]:
  """Index arrays of one epoch's full batches (the remainder is dropped)."""
  rng = np.random.default_rng([seed, epoch])
  order = rng.permutation(len(lengths))
  if bucket_window > 1:
    window = batch_size * bucket_window
    order = np.concatenate([chunk[np.argsort(lengths[chunk], kind="stable")]
                            for chunk in np.array_split(order, max(1, math.ceil(
                                len(order) / window)))])
  n_batches = len(order) // batch_size
  batches = order[: n_batches * batch_size].reshape(n_batches, batch_size)
  if bucket_window > 1:
    batches = batches[rng.permutation(n_batches)]
  return list(batches)


def _gather(arrays: Mapping[str, np.ndarray], index: np.ndarray, rows: slice,
            trim: bool) -> dict:
  """This process's rows of a global batch; with `trim`, cut to the padded width of the
  whole global batch (the same on every process)."""
  batch = {k: v[index[rows]] for k, v in arrays.items()}
  if trim and "attention_mask" in arrays:
    full = arrays["attention_mask"].shape[1]
    width = padded_width(arrays["attention_mask"][index].sum(1).max(initial=1), full)
    for key in ("input_ids", "attention_mask"):
      batch[key] = batch[key][:, :width]
  return batch


def document_lengths(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
  """Tokens per row: from the attention mask, else from a "lengths" field (rows of features
  keep their documents' lengths, so they are batched as the documents were), else 1."""
  if "attention_mask" in arrays:
    return arrays["attention_mask"].sum(1)
  if "lengths" in arrays:
    return np.asarray(arrays["lengths"])
  return np.ones(len(next(iter(arrays.values()))), np.int64)


def train_batches(arrays: Mapping[str, np.ndarray], *, batch_size: int, num_epochs: float,
                  seed: int, bucket_window: int = 0) -> grain.DatasetIterator:
  """A resumable iterator over steps_per_run(...) training batches.

  Rows are right-padded ({input_ids, attention_mask, ...}); `bucket_window` > 1 groups
  documents of similar length (0 or 1: plain shuffling, every batch at full width).
  """
  n = len(next(iter(arrays.values())))
  if n < batch_size:
    raise DataError(f"{n} training examples are fewer than one batch of {batch_size}; "
                    "lower the batch size or add data")
  lengths = document_lengths(arrays)
  steps = steps_per_run(n, batch_size, num_epochs)
  batches = []
  for epoch in range(math.ceil(num_epochs) + 1):
    if len(batches) >= steps:
      break
    batches += epoch_batches(lengths, batch_size, seed, epoch, bucket_window)
  rows, trim = process_rows(batch_size), bucket_window > 1
  dataset = grain.MapDataset.source(batches[:steps]).map(
      lambda index: _gather(arrays, index, rows, trim))
  return iter(dataset.to_iter_dataset())


def eval_batches(arrays: Mapping[str, np.ndarray], batch_size: int, *, bucket: bool = True):
  """(this process's rows of a batch, positions of its real rows in `arrays`) covering every
  row once. With `bucket`, rows go in order of length, so each batch is padded only as far
  as its longest document; the last batch is padded with copies of a real row."""
  n = len(next(iter(arrays.values())))
  lengths = document_lengths(arrays)
  order = np.argsort(lengths, kind="stable") if bucket else np.arange(n)
  rows = process_rows(batch_size)
  for start in range(0, n, batch_size):
    real = order[start:start + batch_size]
    index = np.concatenate([real, np.full(batch_size - len(real), real[0], real.dtype)])
    yield _gather(arrays, index, rows, bucket), real
