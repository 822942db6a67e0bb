"""Tasks: each gives tokenised arrays {input_ids, attention_mask, label} for the splits
A (weak model's ground truth), B (weak labels → student; ceiling by default) and test."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from w2s_jax.data import latent_topics
from w2s_jax.errors import ConfigError, DataError

TASKS = ("latent_topics",)

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
  if name == "latent_topics":
    # The documents are fixed by the world (like a real dataset); the seed only shuffles.
    world = latent_topics.make_world(task_cfg)
    world_seed = task_cfg["world_seed"]
    train = latent_topics.sample_documents(world, task_cfg["n_docs"],
                                           np.random.default_rng([world_seed, 1]))
    test = latent_topics.sample_documents(world, task_cfg["n_test"],
                                          np.random.default_rng([world_seed, 3]))
  else:
    raise ConfigError(f"task.name={name!r} is unknown; choose from {', '.join(TASKS)}")
  split_a, split_b = split_a_b(train, task_cfg["n_docs"], seed)
  splits = {"A": split_a, "B": split_b, "test": test}
  for split, arrays in splits.items():
    check_split(name, split, arrays)
  return splits


def pretraining_documents(task_cfg: Mapping, n: int, seed: int) -> Arrays:
  """Unlabeled documents from the task's world, for self-supervised pretraining."""
  name = task_cfg["name"]
  if name != "latent_topics":
    raise ConfigError(f"task {name!r} has no generator for pretraining documents; "
                      "set strong.pretrain.enabled=False or task.name=latent_topics")
  world = latent_topics.make_world(task_cfg)
  docs = latent_topics.sample_documents(world, n, np.random.default_rng([seed, 2]),
                                       pretraining=True)
  return {"input_ids": docs["input_ids"], "attention_mask": docs["attention_mask"]}


def model_overrides(task_cfg: Mapping) -> dict:
  """Model fields the task fixes: a synthetic task brings its own vocabulary and length."""
  if task_cfg["name"] == "latent_topics":
    world = latent_topics.make_world(task_cfg)
    return {"vocab_size": world.vocab_size, "n_positions": world.seq_len}
  return {}
