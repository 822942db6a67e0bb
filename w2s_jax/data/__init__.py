"""Tasks and their splits: A (weak model's ground truth), B (weak labels → student; the
ceiling by default), val (model selection; drawn from the training pool, present when
task.n_val > 0) and test.

A split is a dict of per-document arrays with "label", "id" and either "text" (text tasks,
tokenised later by each model's own tokenizer), "input_ids"/"attention_mask" (the synthetic
task) or nothing more (embedding tasks: each model's features are read by id from its own
file, data/embeddings.py). A document's id is its row in the source (text tasks) or its index in the generated
pool (latent_topics, where val follows the training documents): the key of external label
files.
"""

from __future__ import annotations

import functools
import pathlib
import random
from typing import Mapping

import numpy as np

from w2s_jax.data import embeddings, latent_topics, pairwise, sources, text_tasks, vault
from w2s_jax.errors import ConfigError, DataError

# Text tasks: one text per document, or two candidates (pairwise)
TEXT_TASKS = {**text_tasks.TASKS, **pairwise.TASKS}
TASKS = ("latent_topics", *TEXT_TASKS, embeddings.TASK)

Arrays = dict[str, np.ndarray]


def take(arrays: Mapping[str, np.ndarray], index) -> Arrays:
  return {k: v[index] for k, v in arrays.items()}


def split_a_b(train: Mapping[str, np.ndarray], n_docs: int, seed: int) -> tuple[Arrays, Arrays]:
  """Shuffle with the seed, cap at n_docs, halve into A and B."""
  n = len(train["label"])
  order = np.random.default_rng(seed).permutation(n)[: min(n_docs, n)]
  half = len(order) // 2
  return take(train, order[:half]), take(train, order[half:])


def check_split(task: str, name: str, arrays: Mapping[str, np.ndarray]) -> None:
  """Empty or one-class data cannot train or evaluate a binary classifier."""
  labels = arrays["label"]
  if len(labels) == 0:
    raise DataError(f"task {task!r}: split {name} is empty; raise task.n_docs/n_test")
  present = np.unique(labels)
  if len(present) < 2:
    raise DataError(f"task {task!r}: split {name} has only label {present[0]} "
                    f"({len(labels)} examples); binary tasks need both classes")


def load_splits(task_cfg: Mapping, seed: int) -> dict[str, Arrays]:
  name = task_cfg["name"]
  n_docs, n_val = task_cfg["n_docs"], task_cfg.get("n_val", 0)
  if name == "latent_topics":
    # The documents are fixed by the world (like a real dataset); the seed only shuffles.
    world = latent_topics.make_world(task_cfg)
    world_seed = task_cfg["world_seed"]
    train = latent_topics.sample_documents(world, n_docs, np.random.default_rng([world_seed, 1]))
    train["id"] = np.arange(n_docs)
    test = latent_topics.sample_documents(world, task_cfg["n_test"],
                                          np.random.default_rng([world_seed, 3]))
    val = None
    if n_val:  # its own stream, so adding a validation split leaves A and B as they were
      val = latent_topics.sample_documents(world, n_val, np.random.default_rng([world_seed, 4]))
      val["id"] = n_docs + np.arange(n_val)
  elif is_text(task_cfg):
    train, val, test = _text_splits(name, task_cfg, seed)
  elif is_embeddings(task_cfg):
    train, val, test = embeddings.load_splits(task_cfg, seed)
  else:
    raise ConfigError(f"task.name={name!r} is unknown; choose from {', '.join(TASKS)}")
  split_a, split_b = split_a_b(train, n_docs, seed)
  splits = {"A": split_a, "B": split_b, "test": test}
  if val is not None:
    splits["val"] = val
  for split, arrays in splits.items():
    check_split(name, split, arrays)
  return splits


class _StrictRow(Mapping):
  """A source row whose missing or empty (None) fields raise KeyError, so a formatter never
  writes "None" into a document (hub and JSON loaders fill absent fields with None)."""

  def __init__(self, row):
    self._row = row

  def __getitem__(self, key):
    value = self._row[key]
    if value is None:
      raise KeyError(key)
    return value

  def __iter__(self):
    return iter(self._row)

  def __len__(self):
    return len(self._row)

  def __contains__(self, key):
    return key in self._row and self._row[key] is not None


def _row_error(name, where: str, error: Exception, row: Mapping) -> DataError:
  if isinstance(error, KeyError):
    fields = sorted(k for k in row if k in row)  # those with a value
    return DataError(f"task {name!r}: {where}: field {error} is missing or empty (the row "
                     f"has {fields}); does the source hold this dataset?")
  return DataError(f"task {name!r}: {where}: {error}")


# What a formatter raises on a row it cannot use: a bad value (BadRow, ValueError), a missing
# field (KeyError), an answer index out of range (IndexError), a wrong type (TypeError).
_ROW_ERRORS = (KeyError, ValueError, IndexError, TypeError)


def _collect(name, task, rows, order, rng: random.Random, cap: int, balance: bool, locate):
  """Formats rows in `order` until `cap` records (half of each label when balancing) are in
  hand; returns ({text, label, id}, number of rows consumed), id being the source row of
  each record. Stopping early keeps large sources (millions of rows) cheap. A row the task
  cannot use is a DataError naming it (`locate(index)`: its file and line; `locate(None)`:
  the file)."""
  per_label = {0: [], 1: []}
  want = {0: cap // 2, 1: cap - cap // 2} if balance else None
  formatted = None
  if task.format_split:  # the whole split at once: records that draw on other rows
    selected = [_StrictRow(rows[int(i)]) for i in order]
    try:
      formatted = task.format_rows(selected, rng)
    except _ROW_ERRORS as e:
      raise _row_error(name, locate(int(order[0])) + " (or a later row)", e,
                       selected[0]) from None
  consumed = 0
  for position, index in enumerate(order):
    consumed = position + 1
    row = _StrictRow(rows[int(index)])
    try:
      record = formatted[position] if formatted is not None else task.format(row, rng)
    except _ROW_ERRORS as e:
      raise _row_error(name, locate(int(index)), e, row) from None
    if record is None or not record[0].strip():
      continue
    text, label = record
    if want is None or len(per_label[label]) < want[label]:
      per_label[label].append((text, int(index)))
    done = (sum(map(len, per_label.values())) >= cap if want is None else
            all(len(per_label[k]) >= want[k] for k in want))
    if done:
      break
  if balance:  # undersample the majority class (when the minority ran out first)
    present = [k for k in per_label if per_label[k]]
    if len(present) == 1:
      raise DataError(f"task {name!r}: all {consumed} rows read from {locate(None)} have "
                      f"label {present[0]}; balancing (task.balance) needs both classes")
    n = min(len(per_label[0]), len(per_label[1]))
    per_label = {k: v[:n] for k, v in per_label.items()}
  records = per_label[0] + per_label[1]
  labels = np.array([0] * len(per_label[0]) + [1] * len(per_label[1]), np.int32)
  mix = np.random.default_rng(rng.randrange(2**32)).permutation(len(records))
  texts = np.array([text for text, _ in records], dtype=object)
  rows_used = np.array([row for _, row in records], np.int64)
  return {"text": texts[mix], "label": labels[mix], "id": rows_used[mix]}, consumed


def _text_splits(name: str, task_cfg: Mapping, seed: int):
  """Train pool, validation split (None when task.n_val is 0) and test split of a text task.
  The test split is fixed by task.test_seed (the same for every experiment seed); a source
  with no test file gives up rows of train. Validation takes rows of the training pool that
  the training documents did not use."""
  task = TEXT_TASKS[name]
  balance = task_cfg.get("balance", True)
  test_seed = task_cfg.get("test_seed", 0)
  train_rows = sources.load_rows(name, task, "train", task_cfg)
  test_rows = sources.load_rows(name, task, "test", task_cfg)
  in_train = functools.partial(sources.row_location, task, "train", task_cfg)
  train_pool = np.arange(len(train_rows))
  if test_rows is None:  # carve the test split out of train, the same rows for every seed
    order = np.random.default_rng(test_seed).permutation(len(train_rows))
    test, used = _collect(name, task, train_rows, order[: len(order) // 2],
                          random.Random(test_seed), task_cfg["n_test"], balance, in_train)
    train_pool = np.sort(order[used:])
  else:
    order = np.random.default_rng(test_seed).permutation(len(test_rows))
    test, _ = _collect(name, task, test_rows, order, random.Random(test_seed),
                       task_cfg["n_test"], balance,
                       functools.partial(sources.row_location, task, "test", task_cfg))
  order = train_pool[np.random.default_rng(seed).permutation(len(train_pool))]
  train, used = _collect(name, task, train_rows, order, random.Random(seed),
                         task_cfg["n_docs"], balance, in_train)
  val = None
  if task_cfg.get("n_val", 0):
    val, _ = _collect(name, task, train_rows, order[used:], random.Random(f"{seed}-val"),
                      task_cfg["n_val"], balance, in_train)
  return train, val, test


def input_files(task_cfg: Mapping) -> dict[str, pathlib.Path]:
  """The local files a task's splits are read from, by source split ("train", "test"); none
  for a generated task."""
  if is_embeddings(task_cfg):  # every split reads the folder (labels and each model's file)
    folder = embeddings.folder_of(task_cfg)
    return {"train": folder, "test": folder}
  if not is_text(task_cfg):
    return {}
  return sources.local_inputs(TEXT_TASKS[task_cfg["name"]], task_cfg)


def pretraining_documents(task_cfg: Mapping, n: int, seed: int) -> Arrays:
  """Unlabeled documents from the task's world, for self-supervised pretraining."""
  name = task_cfg["name"]
  if name == "vault":
    return vault.pretraining_documents(vault.make_vault(task_cfg), n,
                                       np.random.default_rng([seed, 2]))
  if name != "latent_topics":
    raise ConfigError(f"task {name!r} has no generator for pretraining documents; "
                      "set strong.pretrain.enabled=False or task.name=latent_topics")
  world = latent_topics.make_world(task_cfg)
  docs = latent_topics.sample_documents(world, n, np.random.default_rng([seed, 2]),
                                       pretraining=True)
  return {"input_ids": docs["input_ids"], "attention_mask": docs["attention_mask"]}


# Peak host bytes per token of generated documents (the generators' int64 temporaries):
# tracemalloc measured 24-31 over load_splits and pretraining_documents of three configs.
GENERATED_BYTES_PER_TOKEN = 32


def generation_bytes(task_cfg: Mapping, n_docs: int) -> int:
  """Host memory that generating `n_docs` of a synthetic task's documents peaks at; 0 for a
  text task, whose files bound it."""
  seq_len = model_overrides(task_cfg).get("n_positions", 0)
  return GENERATED_BYTES_PER_TOKEN * int(n_docs) * seq_len


def is_text(task_cfg: Mapping) -> bool:
  return task_cfg["name"] in TEXT_TASKS


def is_pairwise(task_cfg: Mapping) -> bool:
  """A task whose documents are two candidates, label 1 when the first is the better."""
  return task_cfg["name"] in pairwise.TASKS


def is_embeddings(task_cfg: Mapping) -> bool:
  """A task whose examples are precomputed feature vectors, one file per model."""
  return task_cfg["name"] == embeddings.TASK


def model_overrides(task_cfg: Mapping) -> dict:
  """Model fields the task fixes: a synthetic task brings its own vocabulary and length."""
  if task_cfg["name"] == "latent_topics":
    world = latent_topics.make_world(task_cfg)
    return {"vocab_size": world.vocab_size, "n_positions": world.seq_len}
  if task_cfg["name"] == "vault":
    task = vault.make_vault(task_cfg)
    return {"vocab_size": task.vocab_size, "n_positions": task.seq_len}
  return {}
