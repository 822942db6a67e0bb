"""Checks on a resolved experiment config, and the stable hashes that key cached phases.

Configs are ml_collections ConfigDicts built by `configs/*.py`; everything here works on the
plain dict (`config.to_dict()`), so a phase's key is exactly the data that determines it.
"""

from __future__ import annotations

import hashlib
import json
import math
import pathlib
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


# Where, on how many devices and with what logging a run ran does not change what it computed.
NOT_IN_RESULTS_KEY = ("workdir", "mesh", "eval_batch_size", "logging")


def results_hash(cfg: Mapping) -> str:
  """The folder name of a run's results: <workdir>/results/<hash>/."""
  return stable_hash({k: v for k, v in cfg.items() if k not in NOT_IN_RESULTS_KEY})


def results_folder(cfg: Mapping) -> pathlib.Path:
  """Where a run writes results.json and config.json."""
  return pathlib.Path(cfg["workdir"]) / "results" / results_hash(cfg)


def results_files(workdir) -> list[pathlib.Path]:
  """The results.json of every finished run under a workdir."""
  return sorted(pathlib.Path(workdir).glob("results/*/results.json"))


DEFAULT_SUPERVISOR = "weak"


def student_methods(cfg: Mapping) -> dict[str, tuple[str, str]]:
  """{method: (loss, supervisor)} from student.losses, a comma-separated list such as
  "xent,logconf,xent@weak_ensemble": a loss (built in, or a variant defined in `losses`),
  optionally @ a supervisor (default: the weak model). A method on the weak model is named
  by its loss alone."""
  items = [n.strip() for n in str(cfg["student"]["losses"]).split(",") if n.strip()]
  known = ", ".join(dict.fromkeys([*losses.LOSSES, *cfg.get("losses", {})]))
  if not items:
    raise ConfigError(f"student.losses is empty; choose from {known}")
  methods = {}
  for item in items:
    loss, _, supervisor = item.partition("@")
    supervisor = supervisor or DEFAULT_SUPERVISOR
    try:
      losses.spec(loss, cfg.get("losses"))
    except ConfigError as e:
      raise ConfigError(f"student.losses: {e}") from None
    name = loss if supervisor == DEFAULT_SUPERVISOR else f"{loss}@{supervisor}"
    methods[name] = (loss, supervisor)
  return methods


def roles(cfg: Mapping) -> list[str]:
  """The model sections a run trains: weak, strong, and those its supervisors name."""
  from w2s_jax import supervision  # supervision builds on phases, which builds on this module
  names = {s for _, s in student_methods(cfg).values()} | {DEFAULT_SUPERVISOR}
  return list(dict.fromkeys(["weak", "strong", *sorted(supervision.roles(cfg, names))]))


def check_positive(cfg: Mapping, path: str) -> None:
  value: Any = cfg
  for key in path.split("."):
    value = value[key]
  if (not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0
      or not math.isfinite(value)):
    raise ConfigError(f"{path}={value!r} must be a positive number")


def check_finite(node: Any, path: str = "") -> None:
  """No NaN or infinity anywhere: such a value (lr=nan) would train to garbage."""
  if isinstance(node, Mapping):
    for key, value in node.items():
      check_finite(value, f"{path}.{key}" if path else str(key))
  elif isinstance(node, float) and not math.isfinite(node):
    raise ConfigError(f"{path}={node!r} must be a finite number")


ROLE_FIELDS = ("model", "train", "pooling", "head_init_std", "linear_probe")


def check_model_section(cfg: Mapping, role: str) -> None:
  section = cfg[role]
  missing = [k for k in ROLE_FIELDS if k not in section]
  if missing:
    raise ConfigError(f"config section {role!r} lacks {missing}; a model section needs "
                      f"{', '.join(ROLE_FIELDS)}")
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
    check_positive(cfg, f"{role}.train.{key}")
  pretrain = section.get("pretrain")
  if pretrain and pretrain["enabled"]:
    for key in ("steps", "batch_size", "lr"):
      check_positive(cfg, f"{role}.pretrain.{key}")


def validate(cfg: Mapping) -> None:
  """Raises ConfigError naming the first bad key and what it may be."""
  if cfg.get("experiment", "w2s") == "mtd":
    from w2s_jax.mtd import pipeline as mtd  # which builds on this module
    return mtd.validate(cfg)
  check_finite(cfg)
  if cfg["task"]["name"] not in data.TASKS:
    raise ConfigError(f"task.name={cfg['task']['name']!r} is unknown; choose from "
                      f"{', '.join(data.TASKS)}")
  for key in ("n_docs", "n_test", "eval_batch_size"):
    check_positive(cfg, key if key == "eval_batch_size" else f"task.{key}")
  if data.is_text(cfg["task"]):
    task = cfg["task"]
    if "source" not in task:
      raise ConfigError(f"task.name={task['name']!r} is a text task, and this config's task "
                        f"section is the synthetic one's; start from "
                        f"--config=configs/text.py:{task['name']}")
    if task.get("source") not in sources.SOURCES:
      raise ConfigError(f"task.source={task.get('source')!r} is unknown; choose from "
                        f"{', '.join(sources.SOURCES)}")
    if task.get("long_docs") not in tokenize.POLICIES:
      raise ConfigError(f"task.long_docs={task.get('long_docs')!r} is unknown; choose from "
                        f"{', '.join(tokenize.POLICIES)}")
    check_positive(cfg, "task.max_ctx")
  if cfg["task"].get("n_val", 0) < 0:
    raise ConfigError(f"task.n_val={cfg['task']['n_val']} must be >= 0")
  from w2s_jax import supervision  # supervision builds on phases, which builds on this module
  methods = student_methods(cfg)
  supervision.validate(cfg, {DEFAULT_SUPERVISOR, *(s for _, s in methods.values())})
  if supervision.spec(cfg, DEFAULT_SUPERVISOR)["kind"] != "model":
    raise ConfigError("supervisors.weak must be a model (kind='model'): PGR is measured "
                      "against its test accuracy")
  for role in roles(cfg):
    check_model_section(cfg, role)
    if role_uses_validation(cfg, role) and not cfg["task"].get("n_val", 0):
      raise ConfigError(f"{role}.train.eval_every > 0 selects on validation; set "
                        "task.n_val > 0")
  if cfg["ceiling"]["split"] not in CEILING_SPLITS:
    raise ConfigError(f"ceiling.split={cfg['ceiling']['split']!r} is unknown; choose from "
                      f"{', '.join(CEILING_SPLITS)}")
  for name in cfg.get("losses", {}):
    losses.spec(name, cfg["losses"])


def role_uses_validation(cfg: Mapping, role: str) -> bool:
  return bool(cfg[role]["train"].get("eval_every", 0))
