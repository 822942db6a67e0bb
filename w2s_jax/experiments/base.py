"""What every kind of experiment shares: the Experiment record the registry holds, config
checks of model sections, the run's frame (workdir check, context, results written
atomically) and how tables name models."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import tempfile
from typing import Any, Callable, Mapping, Sequence

import jax

from w2s_jax import data, models, sharding, train
from w2s_jax.core import artefacts, fingerprint, parsing, paths, validation
from w2s_jax.errors import ConfigError, is_storage_error, storage_error
from w2s_jax.phases import Context, pretraining

POOLINGS = ("last", "first", "mean")
ROLE_FIELDS = ("model", "train", "pooling", "head_init_std", "linear_probe")

Runs = Sequence[tuple[dict, dict]]  # (config, results) of finished runs


@dataclasses.dataclass(frozen=True)
class ReportSection:
  """An experiment kind's part of a report: markdown, the rows (seeds.json), the files it
  wrote and what the command line prints."""
  markdown: str
  rows: list
  files: list
  printed: str


@dataclasses.dataclass(frozen=True)
class Experiment:
  """A kind of experiment, as the registry (experiments/__init__.py) holds it.

  validate(cfg) raises ConfigError; run(cfg, stop) computes (or reuses) every phase and
  writes results.json; run_table(results) and seeds_table([results]) are what the command
  line prints; sweep_variants(cfg) lists a sweep's model settings as (names, overrides) per
  run, beside its tasks and seeds; report(runs, out) writes the kind's tables and figures."""
  name: str
  validate: Callable[[Mapping], None]
  run: Callable[..., dict]
  run_table: Callable[[dict], str]
  seeds_table: Callable[[Sequence[dict]], str]
  sweep_variants: Callable[[Mapping], list[tuple[dict, dict]]]
  report: Callable[[Runs, pathlib.Path], ReportSection]
  result_keys: tuple[str, ...]  # what its tables read from every results.json


def check_model_section(cfg: Mapping, role: str) -> None:
  section = cfg[role]
  missing = [k for k in ROLE_FIELDS if k not in section]
  if missing:
    raise ConfigError(f"config section {role!r} lacks {missing}; a model section needs "
                      f"{', '.join(ROLE_FIELDS)}")
  model = section["model"]
  on_embeddings = data.is_embeddings(cfg["task"])
  if on_embeddings != models.is_feature_head(model):
    raise ConfigError(
        f"{role}.model: an embedding task's models are heads over its features (arch="
        f"'{models.FEATURE_HEAD}', features='<file>'), and heads read only embedding tasks; "
        "start from --config=configs/embeddings.py" if on_embeddings else
        f"{role}.model.arch='{models.FEATURE_HEAD}' reads an embedding task's features; set "
        "task.name='embeddings' (configs/embeddings.py)")
  if models.is_checkpoint(model):
    if not model.get("checkpoint"):
      models.registry.get(model.get("name", ""))  # unknown names fail here, before any work
  elif on_embeddings:
    if not isinstance(model.get("features"), str) or not model["features"]:
      raise ConfigError(f"{role}.model.features must name the task folder's <model>.npz "
                        "whose features the head reads")
    if not isinstance(model.get("hidden", 0), int) or model.get("hidden", 0) < 0:
      raise ConfigError(f"{role}.model.hidden={model.get('hidden')!r} must be an integer "
                        ">= 0 (0: a linear head)")
    if section["linear_probe"] or pretraining(cfg, role):
      raise ConfigError(f"{role}: a head over features has no backbone to freeze or "
                        f"pretrain; set {role}.linear_probe=False and "
                        f"{role}.pretrain.enabled=False")
  else:
    validation.check_choice(f"{role}.model.arch", model["arch"], models.ARCHITECTURES)
  validation.check_choice(f"{role}.pooling", section["pooling"], POOLINGS)
  train.TrainSettings.parse(section["train"], f"{role}.train")
  if section.get("pretrain"):
    train.TrainSettings.parse(section["pretrain"], f"{role}.pretrain")


# The share of the machine's memory a run's generated data may take: above it, a config is
# refused before any work (it would otherwise swap for minutes, then be killed).
HOST_MEMORY_SHARE = 0.8


def check_host_memory(cfg: Mapping, roles, host_bytes: int | None = None) -> None:
  """Refuses document counts whose generation cannot fit in host memory: the task's splits
  and each role's pretraining corpus (steps x batch_size documents)."""
  host_bytes = host_bytes or os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
  task = cfg["task"]
  n_task = task["n_docs"] + task["n_test"] + task.get("n_val", 0)
  counts = {"task.n_docs": (f"task.n_docs={task['n_docs']} (with n_test and n_val: "
                            f"{n_task:,} documents)", n_task)}
  for role in roles:
    if pretraining(cfg, role):
      settings = train.TrainSettings.parse(cfg[role]["pretrain"], f"{role}.pretrain")
      n_pretrain = settings.steps * settings.batch_size
      counts[f"{role}.pretrain.steps"] = (
          f"{role}.pretrain.steps={settings.steps} (x batch_size {settings.batch_size}: "
          f"{n_pretrain:,} documents)", n_pretrain)
  for key, (what, n_docs) in counts.items():
    needed = data.generation_bytes(task, n_docs)
    if needed > HOST_MEMORY_SHARE * host_bytes:
      raise ConfigError(
          f"{what} needs about {needed / 2**30:.1f} GiB of memory to generate, more than "
          f"{HOST_MEMORY_SHARE:.0%} of this machine's {host_bytes / 2**30:.1f} GiB; lower {key}")


def check_checkpoints_at_hand(cfg: Mapping, roles) -> None:
  """Each role's checkpoint is on this machine (or downloadable): a hub id missing from the
  local cache, offline, fails here and not after the phases before its own have trained."""
  for role in roles:
    if models.is_checkpoint(cfg[role]["model"]):
      models.checkpoint_folder(cfg[role]["model"])


def with_inputs(cfg: Mapping) -> dict:
  """The config with `inputs`, the content fingerprints of the local files it reads (the
  task's files by source split, each checkpoint folder by role), when it reads any: phase
  keys and the results folder then change with the files' content, and config.json records
  them."""
  prints = fingerprint.Fingerprints(paths.workdir(cfg))
  inputs = {}
  task_files = data.input_files(cfg["task"])
  if task_files:
    inputs["task"] = {split: prints.of(path) for split, path in task_files.items()}
  for role, section in cfg.items():
    if (role != "inputs" and isinstance(section, Mapping) and "train" in section
        and isinstance(section.get("model"), Mapping) and models.is_checkpoint(section["model"])):
      folder = models.local_checkpoint_folder(section["model"])
      if folder is not None:
        inputs[role] = prints.of(folder)
  prints.save()
  return {**cfg, "inputs": inputs} if inputs else dict(cfg)


def check_batch_sizes(cfg, mesh, roles) -> None:
  """Every (micro-)batch of the roles' training and pretraining, and every evaluation batch,
  is split evenly over the data-parallel devices."""
  ways = sharding.data_parallel_size(mesh)
  sizes = {"eval_batch_size": (cfg["eval_batch_size"], 1)}
  for role in roles:
    sections = [("train", cfg[role]["train"])]
    if pretraining(cfg, role):
      sections.append(("pretrain", cfg[role]["pretrain"]))
    for name, section in sections:
      settings = train.TrainSettings.parse(section, f"{role}.{name}")
      sizes[f"{role}.{name}.batch_size"] = (settings.batch_size, settings.grad_accum_steps)
  for key, (size, accum) in sizes.items():
    if size % (ways * accum):
      accumulation = f" in {accum} micro-batches" if accum > 1 else ""
      raise ConfigError(f"{key}={size} does not split{accumulation} over the {ways} "
                        "data-parallel devices (mesh data x fsdp); use a multiple of "
                        f"{ways * accum}")


def check_workdir(workdir: pathlib.Path) -> None:
  """The folders a run writes in (phases; results, where it exists already) must be
  writable: say so now, not after hours of training."""
  for folder in (workdir / "phases", workdir / "results"):
    if folder.name == "results" and not folder.exists():
      continue  # made with the first results, in the workdir just checked
    try:
      folder.mkdir(parents=True, exist_ok=True)
      tempfile.TemporaryFile(dir=folder).close()
    except OSError as e:
      raise ConfigError(f"workdir {workdir} is not usable: {folder} "
                        f"({e.strerror or type(e).__name__}); choose another with "
                        "--config.workdir") from None


def start(cfg: Mapping[str, Any], splits, roles, stop: train.StopRequest | None) -> Context:
  """The context of a validated config's run, once its workdir and batch sizes are
  checked."""
  workdir = paths.workdir(cfg)
  if jax.process_index() == 0:
    check_workdir(workdir)
  ctx = Context(cfg=cfg, workdir=workdir, mesh=sharding.make_mesh(cfg["mesh"]),
                splits=splits(), stop=stop or train.StopRequest())
  check_batch_sizes(cfg, ctx.mesh, roles)
  return ctx


def write_results(cfg: Mapping, results: dict) -> dict:
  """results.json beside the resolved config.json (process 0); returns the results with the
  file's path."""
  if jax.process_index() != 0:
    return results
  out = paths.results_folder(cfg)
  results = {**results, "results_file": str(out / paths.RESULTS_FILE)}
  try:
    artefacts.write_json(out / paths.CONFIG_FILE, cfg)
    artefacts.write_json(out / paths.RESULTS_FILE, results)
  except OSError as e:  # a full disk: no config.json without results beside it
    if not (out / paths.RESULTS_FILE).exists():
      (out / paths.CONFIG_FILE).unlink(missing_ok=True)
    if is_storage_error(e):
      raise storage_error(e, out) from None
    raise
  return results


def model_name(cfg: Mapping, role: str) -> str:
  """A role's model as tables and figures name it: names.<role> when the config gives one
  (a sweep's size), else its checkpoint or architecture."""
  given = cfg.get("names", {}).get(role)
  if given:
    return given
  model = cfg[role]["model"]
  if models.is_feature_head(model):
    return model["features"] + (f"-mlp{model['hidden']}" if model.get("hidden") else "")
  if models.is_checkpoint(model):
    name = model.get("name") or pathlib.Path(model["checkpoint"]).name
    name += f"-L{model['n_layers']}" if model.get("n_layers") else ""
    return name + ("" if model.get("pretrained", True) else "-random")
  name = f"{model['arch']}-{model['n_layers']}L-d{model['d_model']}"
  return name + ("-pretrained" if pretraining(cfg, role) else "")


def sweep_sizes(cfg: Mapping, *roles: str) -> tuple[list[str], dict[str, list[str]]]:
  """A sweep's sizes in capability order (sweep.sizes, entries of `sizes`) and, per role,
  the sizes sweep.<role> names (default: all), each checked."""
  sweep = cfg["sweep"]
  order = parsing.names(sweep["sizes"])
  unknown = sorted(set(order) - set(cfg["sizes"]))
  if unknown or not order:
    raise ConfigError(f"sweep.sizes names {unknown or 'nothing'}; the sizes are "
                      f"{', '.join(cfg['sizes'])}")
  chosen = {role: parsing.names(sweep.get(role, "")) or order for role in roles}
  for size in (s for sizes in chosen.values() for s in sizes):
    if size not in order:
      raise ConfigError(f"size {size!r} is not in sweep.sizes ({', '.join(order)})")
  return order, chosen
