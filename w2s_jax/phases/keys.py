"""Phase keys: exactly the data that determines a phase, hashed into its folder's name."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from w2s_jax import data, losses, models
from w2s_jax.data import tokenize
from w2s_jax.train import NOT_IN_KEY


def data_key(cfg, splits=("train", "test")):
  """The task and seed, the version of how text becomes tokens (text tasks), and the content
  of the local files the phase's source splits are read from (cfg["inputs"], see
  experiments.base.with_inputs): a file edited in place changes the key of exactly the
  phases that read it."""
  key = {"task": cfg["task"], "seed": cfg["seed"]}
  if data.is_text(cfg["task"]):
    key["encoding"] = tokenize.ENCODING_VERSION
  read = {split: digest for split, digest in cfg.get("inputs", {}).get("task", {}).items()
          if split in splits}
  if read:
    key["inputs"] = read
  return key


def model_config(cfg, role: str) -> dict:
  """The role's model config, with the vocabulary and length the task or tokenizer fixes for
  a custom architecture."""
  section = dict(cfg[role]["model"])
  if models.is_checkpoint(section) or models.is_feature_head(section):
    return section
  if data.is_text(cfg["task"]):
    tokenizer = models.tokenizer_for(section)
    section.setdefault("vocab_size", len(tokenizer))
    return section
  return {**section, **data.model_overrides(cfg["task"])}


def pretraining(cfg, role: str) -> Mapping | None:
  """The role's pretraining section when it pretrains in the job, else None."""
  section = cfg[role].get("pretrain")
  return section if section and section["enabled"] else None


def _semantic(section: Mapping) -> dict:
  return {k: v for k, v in section.items() if k not in NOT_IN_KEY}


def pretrain_key(cfg, role: str):
  # What a task draws its labelled splits from does not change its pretraining corpus.
  world = {k: v for k, v in cfg["task"].items()
           if k not in ("n_docs", "n_test", "n_val", "train_mix", "test_mix")}
  return {"world": world, "model": model_config(cfg, role),
          "pretrain": _semantic(cfg[role]["pretrain"])}


def role_key(cfg, role: str) -> dict:
  section = dict(cfg[role])
  section["model"] = model_config(cfg, role)
  section["train"] = _semantic(section["train"])
  section["pretrain"] = pretrain_key(cfg, role) if pretraining(cfg, role) else None
  if role in cfg.get("inputs", {}):  # the content of its checkpoint folder
    section["inputs"] = cfg["inputs"][role]
  return section


def model_key(cfg, role: str, split: str, labels_key, loss: str, replica: int) -> dict:
  return {"data": data_key(cfg), "role": role_key(cfg, role), "split": split,
          "labels": labels_key, "loss": losses.spec(loss, cfg.get("losses")),
          "replica": replica}


def backbone_key(cfg, role: str) -> dict:
  """What a role's frozen backbone computes from: its model, pretraining, pooling and the
  content of its checkpoint."""
  section = role_key(cfg, role)
  return {k: section[k] for k in ("model", "pretrain", "pooling", "inputs") if k in section}


def source_split(split: str) -> str:
  """The task split a run's split is drawn from (A, B and val: the task's train split)."""
  return "test" if split == "test" else "train"


def activations_key(cfg, role: str, layer: int) -> dict:
  """The frozen backbone's activations on B and val, which the probes read."""
  return {"data": data_key(cfg, ("train",)), "backbone": backbone_key(cfg, role),
          "layer": layer}


def features_key(cfg, role: str, layer: int, split: str) -> dict:
  """The frozen backbone's pooled features of one split."""
  return {"data": data_key(cfg, (source_split(split),)), "backbone": backbone_key(cfg, role),
          "layer": layer, "split": split}


def training_seed(seed: int, replica: int) -> int:
  """Replica 0 trains with the experiment seed; others with seeds derived from it (the data
  split stays the experiment seed's)."""
  if replica == 0:
    return seed
  return int(np.random.SeedSequence([seed, replica]).generate_state(1)[0] % 2**31)
