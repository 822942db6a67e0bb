"""Checks on a resolved experiment config, and the stable hashes that key cached phases.

Configs are ml_collections ConfigDicts built by `configs/*.py`; everything here works on the
plain dict (`config.to_dict()`), so a phase's key is exactly the data that determines it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

from w2s_jax import data, losses, models
from w2s_jax.data import sources, tokenize
from w2s_jax.errors import ConfigError

CEILING_SPLITS = ("A", "B")
POOLINGS = ("last", "first", "mean")


def stable_hash(obj: Any, length: int = 12) -> str:
  """Hash of the canonical JSON of `obj`: the same config always gives the same folder."""
  text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
  return hashlib.sha256(text.encode()).hexdigest()[:length]


def student_losses(cfg: Mapping) -> list[str]:
  """student.losses is a comma-separated string such as "xent,logconf"."""
  names = [n.strip() for n in str(cfg["student"]["losses"]).split(",") if n.strip()]
  if not names:
    raise ConfigError(f"student.losses is empty; choose from {', '.join(losses.LOSSES)}")
  for name in names:
    if name not in losses.LOSSES:
      raise ConfigError(f"student.losses: unknown loss {name!r}; choose from "
                        f"{', '.join(losses.LOSSES)}")
  return list(dict.fromkeys(names))


def loss_hparams(cfg: Mapping, name: str) -> dict:
  return dict(cfg.get("losses", {}).get(name, {}))


def _positive(cfg: Mapping, path: str) -> None:
  value: Any = cfg
  for key in path.split("."):
    value = value[key]
  if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
    raise ConfigError(f"{path}={value!r} must be a positive number")


def _check_model_section(cfg: Mapping, role: str) -> None:
  section = cfg[role]
  model = section["model"]
  if models.is_checkpoint(model):
    if not model.get("checkpoint"):
      models.registry.get(model.get("name", ""))  # unknown names fail here, before any work
  elif model["arch"] not in models.ARCHITECTURES:
    raise ConfigError(f"{role}.model.arch={model['arch']!r} is unknown; choose from "
                      f"{', '.join(models.ARCHITECTURES)}")
  if section["pooling"] not in POOLINGS:
    raise ConfigError(f"{role}.pooling={section['pooling']!r} is unknown; choose from "
                      f"{', '.join(POOLINGS)}")
  for key in ("lr", "epochs", "batch_size"):
    _positive(cfg, f"{role}.train.{key}")


def validate(cfg: Mapping) -> None:
  """Raises ConfigError naming the first bad key and what it may be."""
  if cfg["task"]["name"] not in data.TASKS:
    raise ConfigError(f"task.name={cfg['task']['name']!r} is unknown; choose from "
                      f"{', '.join(data.TASKS)}")
  for key in ("n_docs", "n_test", "eval_batch_size"):
    _positive(cfg, key if key == "eval_batch_size" else f"task.{key}")
  if data.is_text(cfg["task"]):
    task = cfg["task"]
    if task.get("source") not in sources.SOURCES:
      raise ConfigError(f"task.source={task.get('source')!r} is unknown; choose from "
                        f"{', '.join(sources.SOURCES)}")
    if task.get("long_docs") not in tokenize.POLICIES:
      raise ConfigError(f"task.long_docs={task.get('long_docs')!r} is unknown; choose from "
                        f"{', '.join(tokenize.POLICIES)}")
    _positive(cfg, "task.max_ctx")
  for role in ("weak", "strong"):
    _check_model_section(cfg, role)
  if cfg["ceiling"]["split"] not in CEILING_SPLITS:
    raise ConfigError(f"ceiling.split={cfg['ceiling']['split']!r} is unknown; choose from "
                      f"{', '.join(CEILING_SPLITS)}")
  for name in student_losses(cfg):
    losses.get_loss(name, loss_hparams(cfg, name))
  pretrain = cfg["strong"]["pretrain"]
  if pretrain["enabled"]:
    for key in ("steps", "batch_size", "lr"):
      _positive(cfg, f"strong.pretrain.{key}")
