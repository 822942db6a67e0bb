"""The phases of a weak-to-strong experiment, each cached under a hash of what determines it.

  pretrain (strong, optional) ─┐
  weak: GT on A → soft labels on B ─→ student (one per loss): weak labels on B
  ceiling: strong on GT ──────────────→ results: test metrics and PGR per loss

A phase writes into `<workdir>/phases/<phase>-<hash>/` and is reused by any later run whose
config gives the same hash (so every student naming the same weak setup shares one weak-label
artefact). A phase folder appears only once complete. Results go to
`<workdir>/results/<config hash>/results.json`, beside the resolved config.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
import shutil
import time
from typing import Any, Callable, Mapping

import jax
import numpy as np
from jax.experimental import multihost_utils

from w2s_jax import checkpoints, config as config_lib, data, losses, metrics, models, sharding
from w2s_jax import pretrain, train
from w2s_jax.data import batching
from w2s_jax.errors import CheckpointError, ConfigError

log = logging.getLogger(__name__)

# Part of every phase key: bump it when a change to the code makes old artefacts invalid
# (a new parameter layout, a changed file format), so stale caches are never reused.
CACHE_VERSION = 1

WEAK_LABELS_FILE = "weak_labels.npz"
PREDICTIONS_FILE = "predictions.npz"
PHASE_FILE = "phase.json"


@dataclasses.dataclass
class Context:
  cfg: Mapping[str, Any]
  workdir: pathlib.Path
  mesh: jax.sharding.Mesh
  splits: Mapping[str, Mapping[str, np.ndarray]]
  phases: dict = dataclasses.field(default_factory=dict)  # name -> {dir, reused, wall_s}


# ---------------------------------------------------------------- keys

def data_key(cfg):
  return {"task": cfg["task"], "seed": cfg["seed"]}


def model_config(cfg, role: str) -> dict:
  """The role's model config, with the task's vocabulary and length where the task sets them."""
  return {**cfg[role]["model"], **data.model_overrides(cfg["task"])}


def pretrain_key(cfg):
  world = {k: v for k, v in cfg["task"].items() if k not in ("n_docs", "n_test")}
  return {"world": world, "model": model_config(cfg, "strong"),
          "pretrain": cfg["strong"]["pretrain"]}


def _strong_key(cfg):
  strong = dict(cfg["strong"])
  strong["model"] = model_config(cfg, "strong")
  strong["pretrain"] = pretrain_key(cfg) if strong["pretrain"]["enabled"] else None
  return strong


def weak_key(cfg):
  return {"data": data_key(cfg), "weak": {**cfg["weak"], "model": model_config(cfg, "weak")}}


def ceiling_key(cfg):
  return {"data": data_key(cfg), "strong": _strong_key(cfg), "split": cfg["ceiling"]["split"]}


def student_key(cfg, loss: str):
  return {"weak": weak_key(cfg), "strong": _strong_key(cfg), "loss": loss,
          "loss_hparams": config_lib.loss_hparams(cfg, loss)}


# ---------------------------------------------------------------- caching

def _cached(ctx: Context, name: str, key, compute: Callable[[pathlib.Path], dict]) -> pathlib.Path:
  """Runs `compute(tmp_dir)` unless a finished folder for this key exists; returns the folder."""
  key = {"cache_version": CACHE_VERSION, **key}
  phase_dir = ctx.workdir / "phases" / f"{name.split(':')[0]}-{config_lib.stable_hash(key)}"
  if (phase_dir / PHASE_FILE).exists():
    log.info("%s: reusing %s", name, phase_dir)
    ctx.phases[name] = {"dir": str(phase_dir), "reused": True, "wall_s": 0.0}
    return phase_dir
  tmp = phase_dir.with_name(f".{phase_dir.name}.partial")
  if jax.process_index() == 0:
    for leftover in (phase_dir, tmp):  # remains of an interrupted run
      shutil.rmtree(leftover, ignore_errors=True)
    tmp.mkdir(parents=True)
  multihost_utils.sync_global_devices(f"{name} start")
  start = time.time()
  info = compute(tmp)
  wall = time.time() - start
  if jax.process_index() == 0:
    checkpoints.write_json(tmp / PHASE_FILE, {"phase": name, "key": key, "wall_s": wall, **info})
    os.replace(tmp, phase_dir)
  multihost_utils.sync_global_devices(f"{name} done")
  log.info("%s: done in %.1fs -> %s", name, wall, phase_dir)
  ctx.phases[name] = {"dir": str(phase_dir), "reused": False, "wall_s": wall}
  return phase_dir


def _load_npz(path: pathlib.Path) -> dict[str, np.ndarray]:
  try:
    with np.load(path) as f:
      return dict(f)
  except Exception as e:
    raise CheckpointError(f"artefact {path} is unreadable ({type(e).__name__}); delete "
                          f"{path.parent} to recompute it") from None


# ---------------------------------------------------------------- phases

def _pretrain_phase(ctx: Context) -> pathlib.Path:
  cfg = ctx.cfg
  pretrain_cfg = cfg["strong"]["pretrain"]

  def compute(out: pathlib.Path):
    n_docs = pretrain_cfg["steps"] * pretrain_cfg["batch_size"]
    docs = data.pretraining_documents(cfg["task"], n_docs, pretrain_cfg["seed"])
    params, history = pretrain.pretrain_backbone(model_config(cfg, "strong"), pretrain_cfg,
                                                 docs, ctx.mesh)
    checkpoints.save_params(out / "backbone", params)
    return {"history": history, "n_docs": n_docs}

  return _cached(ctx, "pretrain", pretrain_key(cfg), compute)


def _train_classifier(ctx: Context, role: str, train_arrays, soft_labels: np.ndarray, loss: str,
                      eval_sets: Mapping[str, Mapping[str, np.ndarray]], *, backbone_dir=None):
  """Fine-tunes the role's classifier on (inputs, soft labels); returns logits per eval set."""
  cfg, section = ctx.cfg, ctx.cfg[role]
  train_cfg = section["train"]
  model = models.build_classifier(model_config(cfg, role), pooling=section["pooling"],
                                  head_init_std=section["head_init_std"],
                                  linear_probe=section["linear_probe"])
  n = len(soft_labels)
  total_steps = batching.steps_per_run(n, train_cfg["batch_size"], train_cfg["epochs"])
  tx = train.make_optimizer(train_cfg, total_steps, freeze_backbone=section["linear_probe"])
  arrays = {"input_ids": train_arrays["input_ids"],
            "attention_mask": train_arrays["attention_mask"],
            "labels": soft_labels.astype(np.float32)}
  sample = {k: v[: train_cfg["batch_size"]] for k, v in arrays.items()}
  abstract, shardings = train.describe_state(model, tx, ctx.mesh, sample)
  backbone = None
  if backbone_dir is not None:
    backbone = checkpoints.restore_params(backbone_dir / "backbone",
                                          abstract["params"]["backbone"])
  state = train.init_state(model, tx, shardings, sample, ctx.cfg["seed"], backbone)
  batch_sharding = sharding.batch_sharding(ctx.mesh)
  objective = train.classification_objective(
      model, losses.get_loss(loss, config_lib.loss_hparams(cfg, loss)), total_steps)
  step_fn = train.make_train_step(objective, tx, shardings, batch_sharding)
  batches = batching.train_batches(arrays, batch_size=train_cfg["batch_size"],
                                   num_epochs=train_cfg["epochs"], seed=ctx.cfg["seed"])
  state, history = train.fit(state, step_fn, batches, total_steps, batch_sharding,
                             log_every=train_cfg.get("log_every", 25), desc=f"{role}:{loss}")
  predict_step = train.make_predict_step(model, shardings["params"], batch_sharding)
  logits = {name: train.predict(predict_step, state["params"], split, cfg["eval_batch_size"],
                                batch_sharding)
            for name, split in eval_sets.items()}
  return logits, {"history": history, "steps": total_steps, "n_train": n}


def _one_hot(labels: np.ndarray) -> np.ndarray:
  return np.eye(2, dtype=np.float32)[labels]


def _softmax(logits: np.ndarray) -> np.ndarray:
  z = np.exp(logits - logits.max(-1, keepdims=True))
  return z / z.sum(-1, keepdims=True)


def _weak_phase(ctx: Context) -> pathlib.Path:
  split_a, split_b = ctx.splits["A"], ctx.splits["B"]

  def compute(out: pathlib.Path):
    logits, info = _train_classifier(ctx, "weak", split_a, _one_hot(split_a["label"]), "xent",
                                     {"B": split_b, "test": ctx.splits["test"]})
    p_pos = _softmax(logits["B"])[:, 1]
    accuracy = metrics.accuracy(p_pos, split_b["label"])
    checkpoints.write_npz(out / WEAK_LABELS_FILE, p_pos=p_pos, logits=logits["B"],
                          gt_label=split_b["label"], hard_label=(p_pos > 0.5).astype(np.int32))
    checkpoints.write_npz(out / PREDICTIONS_FILE, test_logits=logits["test"])
    return {**info, "weak_label_accuracy": accuracy}

  return _cached(ctx, "weak", weak_key(ctx.cfg), compute)


def _strong_phase(ctx: Context, name: str, key, train_split, soft_labels, loss,
                  backbone_dir) -> pathlib.Path:
  def compute(out: pathlib.Path):
    logits, info = _train_classifier(ctx, "strong", train_split, soft_labels, loss,
                                     {"test": ctx.splits["test"]}, backbone_dir=backbone_dir)
    checkpoints.write_npz(out / PREDICTIONS_FILE, test_logits=logits["test"])
    return info

  return _cached(ctx, name, key, compute)


# ---------------------------------------------------------------- the experiment

def _check_batch_sizes(cfg, mesh) -> None:
  """Every batch is split evenly over the data-parallel devices."""
  ways = sharding.data_parallel_size(mesh)
  sizes = {"weak.train.batch_size": cfg["weak"]["train"]["batch_size"],
           "strong.train.batch_size": cfg["strong"]["train"]["batch_size"],
           "eval_batch_size": cfg["eval_batch_size"]}
  if cfg["strong"]["pretrain"]["enabled"]:
    sizes["strong.pretrain.batch_size"] = cfg["strong"]["pretrain"]["batch_size"]
  for key, size in sizes.items():
    if size % ways:
      raise ConfigError(f"{key}={size} does not split over the {ways} data-parallel devices "
                        "(mesh data x fsdp); use a multiple of it")


def run(cfg: Mapping[str, Any]) -> dict:
  """Runs (or reuses) every phase for a resolved config dict; writes and returns results."""
  config_lib.validate(cfg)
  start = time.time()
  ctx = Context(cfg=cfg, workdir=pathlib.Path(cfg["workdir"]),
                mesh=sharding.make_mesh(cfg["mesh"]),
                splits=data.load_splits(cfg["task"], cfg["seed"]))
  loss_names = config_lib.student_losses(cfg)
  _check_batch_sizes(cfg, ctx.mesh)

  backbone_dir = _pretrain_phase(ctx) if cfg["strong"]["pretrain"]["enabled"] else None
  weak_dir = _weak_phase(ctx)
  weak_labels = _load_npz(weak_dir / WEAK_LABELS_FILE)
  weak_soft = np.stack([1 - weak_labels["p_pos"], weak_labels["p_pos"]], -1)

  ceiling_split = ctx.splits[cfg["ceiling"]["split"]]
  ceiling_dir = _strong_phase(ctx, "ceiling", ceiling_key(cfg), ceiling_split,
                              _one_hot(ceiling_split["label"]), "xent", backbone_dir)
  student_dirs = {
      loss: _strong_phase(ctx, f"student:{loss}", student_key(cfg, loss), ctx.splits["B"],
                          weak_soft, loss, backbone_dir)
      for loss in loss_names}

  test_labels = ctx.splits["test"]["label"]

  def test_p_pos(phase_dir):
    return _softmax(_load_npz(phase_dir / PREDICTIONS_FILE)["test_logits"])[:, 1]

  weak_p, ceiling_p = test_p_pos(weak_dir), test_p_pos(ceiling_dir)
  weak_m, ceiling_m = metrics.summarize(weak_p, test_labels), metrics.summarize(ceiling_p,
                                                                               test_labels)
  students = {}
  for loss, phase_dir in student_dirs.items():
    p = test_p_pos(phase_dir)
    m = metrics.summarize(p, test_labels)
    m["agreement_with_weak"] = metrics.agreement(p, weak_p)
    m.update(metrics.pgr_report(p, weak_p, ceiling_p, test_labels, seed=cfg["seed"]))
    m["pgr_auroc"] = (metrics.pgr(m["auroc"], weak_m["auroc"], ceiling_m["auroc"])
                      if m["pgr"] is not None else None)
    students[loss] = m

  # Where and on how many devices it ran does not change what was computed.
  config_hash = config_lib.stable_hash(
      {k: v for k, v in cfg.items() if k not in ("workdir", "mesh", "eval_batch_size")})
  results = {
      "config_hash": config_hash, "seed": cfg["seed"], "task": cfg["task"]["name"],
      "weak": weak_m, "ceiling": ceiling_m, "students": students,
      "weak_label_accuracy": metrics.accuracy(weak_labels["p_pos"], weak_labels["gt_label"]),
      "n": {split: int(len(arrays["label"])) for split, arrays in ctx.splits.items()},
      "phases": ctx.phases, "wall_s": time.time() - start,
  }
  if jax.process_index() == 0:
    out = ctx.workdir / "results" / config_hash
    checkpoints.write_json(out / "config.json", cfg)
    checkpoints.write_json(out / "results.json", results)
    results["results_file"] = str(out / "results.json")
  return results
