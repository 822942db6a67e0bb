"""A weak-to-strong config's checks, its students (student.losses) and the model sections it
trains."""

from __future__ import annotations

from typing import Mapping

from w2s_jax import data, losses, train
from w2s_jax.core import parsing, validation
from w2s_jax.data import latent_topics, sources, tokenize
from w2s_jax.errors import ConfigError
from w2s_jax.experiments import base
from w2s_jax.experiments.w2s import supervisors

CEILING_SPLITS = ("A", "B")
DEFAULT_SUPERVISOR = "weak"


def student_methods(cfg: Mapping) -> dict[str, tuple[str, str]]:
  """{method: (loss, supervisor)} from student.losses, a comma-separated list such as
  "xent,logconf,xent@weak_ensemble": a loss (built in, or a variant defined in `losses`),
  optionally @ a supervisor (default: the weak model). A method on the weak model is named
  by its loss alone."""
  items = parsing.names(cfg["student"]["losses"])
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
  names = {s for _, s in student_methods(cfg).values()} | {DEFAULT_SUPERVISOR}
  return list(dict.fromkeys(["weak", "strong", *sorted(supervisors.roles(cfg, names))]))


def validate(cfg: Mapping) -> None:
  """Raises ConfigError naming the first bad key and what it may be."""
  validation.check_finite(cfg)
  task = cfg["task"]
  validation.check_choice("task.name", task["name"], data.TASKS)
  for key in ("task.n_docs", "task.n_test", "eval_batch_size"):
    validation.check_positive(cfg, key)
  if task["name"] == "latent_topics":
    latent_topics.check_config(task)
  if data.is_text(task):
    if "source" not in task:
      raise ConfigError(f"task.name={task['name']!r} is a text task, and this config's task "
                        f"section is the synthetic one's; start from "
                        f"--config=configs/text.py:{task['name']}")
    validation.check_choice("task.source", task.get("source"), sources.SOURCES)
    validation.check_choice("task.long_docs", task.get("long_docs"), tokenize.POLICIES)
    validation.check_positive(cfg, "task.max_ctx")
  if task.get("n_val", 0) < 0:
    raise ConfigError(f"task.n_val={task['n_val']} must be >= 0")
  methods = student_methods(cfg)
  supervisors.validate(cfg, {DEFAULT_SUPERVISOR, *(s for _, s in methods.values())})
  if supervisors.spec(cfg, DEFAULT_SUPERVISOR)["kind"] != "model":
    raise ConfigError("supervisors.weak must be a model (kind='model'): PGR is measured "
                      "against its test accuracy")
  for role in roles(cfg):
    base.check_model_section(cfg, role)
    settings = train.TrainSettings.parse(cfg[role]["train"], f"{role}.train")
    if settings.eval_every and not task.get("n_val", 0):
      raise ConfigError(f"{role}.train.eval_every > 0 selects on validation; set "
                        "task.n_val > 0")
  validation.check_choice("ceiling.split", cfg["ceiling"]["split"], CEILING_SPLITS)
  salience = cfg.get("diagnostics", {}).get("salience_examples", 0)
  if not isinstance(salience, int) or isinstance(salience, bool) or salience < 0:
    raise ConfigError(f"diagnostics.salience_examples={salience!r} must be an integer >= 0 "
                      "(0: salience not measured)")
  base.check_host_memory(cfg, roles(cfg))
  for name in cfg.get("losses", {}):
    losses.spec(name, cfg["losses"])


def sweep_variants(cfg: Mapping) -> list[tuple[dict, dict]]:
  """Every (weak, strong) pair of sweep sizes with the weak model no larger, as openai's
  sweeps pair them: (names, the weak and strong sections) per pair."""
  order, chosen = base.sweep_sizes(cfg, "weak", "strong")
  return [({"weak": w, "strong": s}, {"weak": cfg["sizes"][w], "strong": cfg["sizes"][s]})
          for w in chosen["weak"] for s in chosen["strong"]
          if order.index(w) <= order.index(s)]
