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
import functools
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
from w2s_jax.data import batching, tokenize
from w2s_jax.errors import CheckpointError, ConfigError

log = logging.getLogger(__name__)

# Part of every phase key: bump it when a change to the code makes old artefacts invalid
# (a new parameter layout, a changed file format), so stale caches are never reused.
CACHE_VERSION = 2

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
  _encoded: dict = dataclasses.field(default_factory=dict)

  def encoded(self, role: str, split: str):
    """(arrays {input_ids, attention_mask}, keep mask) of a split for the role's model: text
    tokenised by that model's tokenizer; keep is False for documents the max_ctx policy
    drops."""
    if (role, split) not in self._encoded:
      records = self.splits[split]
      if "text" in records:
        task = self.cfg["task"]
        backbone = models.build_backbone(model_config(self.cfg, role))
        max_ctx = min(task["max_ctx"], models.max_positions(backbone))
        self._encoded[role, split] = tokenize.encode(
            records["text"], models.tokenizer_for(self.cfg[role]["model"]), max_ctx,
            task["long_docs"])
      else:
        arrays = {k: records[k] for k in ("input_ids", "attention_mask")}
        self._encoded[role, split] = arrays, np.ones(len(records["label"]), bool)
    return self._encoded[role, split]


# ---------------------------------------------------------------- keys

def data_key(cfg):
  return {"task": cfg["task"], "seed": cfg["seed"]}


def model_config(cfg, role: str) -> dict:
  """The role's model config, with the vocabulary and length the task or tokenizer fixes for
  a custom architecture."""
  section = dict(cfg[role]["model"])
  if models.is_checkpoint(section):
    return section
  if data.is_text(cfg["task"]):
    tokenizer = models.tokenizer_for(section)
    section.setdefault("vocab_size", len(tokenizer))
    return section
  return {**section, **data.model_overrides(cfg["task"])}


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


def _train_classifier(ctx: Context, role: str, split: str, soft_labels: np.ndarray, loss: str,
                      eval_splits, *, backbone_dir=None):
  """Fine-tunes the role's classifier on a split with soft labels (rows with NaN labels or
  dropped by max_ctx are left out); returns logits per eval split, NaN where dropped."""
  cfg, section = ctx.cfg, ctx.cfg[role]
  train_cfg = section["train"]
  model_cfg = model_config(cfg, role)
  model = models.build_classifier(model_cfg, pooling=section["pooling"],
                                  head_init_std=section["head_init_std"])
  trainable = None
  if section["linear_probe"] or model_cfg.get("lora_rank", 0):
    trainable = functools.partial(models.is_trainable, linear_probe=section["linear_probe"],
                                  lora=bool(model_cfg.get("lora_rank", 0)))
  inputs, keep = ctx.encoded(role, split)
  use = keep & np.isfinite(soft_labels).all(-1)
  arrays = {**{k: v[use] for k, v in inputs.items()},
            "labels": soft_labels[use].astype(np.float32)}
  n = int(use.sum())
  total_steps = batching.steps_per_run(n, train_cfg["batch_size"], train_cfg["epochs"])
  tx = train.make_optimizer(train_cfg, total_steps, trainable=trainable)
  sample = {k: v[: train_cfg["batch_size"]] for k, v in arrays.items()}
  abstract, shardings = train.describe_state(model, tx, ctx.mesh, sample)
  backbone_target = abstract["params"]["backbone"]
  if backbone_dir is not None:  # pretrained in this job (the synthetic task)
    backbone = checkpoints.restore_params(backbone_dir / "backbone", backbone_target)
  else:  # a checkpoint's weights, or None: a fresh initialisation
    backbone = models.pretrained_backbone_params(model_cfg, backbone_target)
  state = train.init_state(model, tx, shardings, sample, ctx.cfg["seed"], backbone)
  batch_sharding = sharding.batch_sharding(ctx.mesh)
  objective = train.classification_objective(
      model, losses.get_loss(loss, config_lib.loss_hparams(cfg, loss)), total_steps)
  step_fn = train.make_train_step(objective, tx, shardings, batch_sharding, trainable)
  batches = batching.train_batches(arrays, batch_size=train_cfg["batch_size"],
                                   num_epochs=train_cfg["epochs"], seed=ctx.cfg["seed"],
                                   bucket_window=train_cfg.get("bucket_window", 0))
  state, history = train.fit(state, step_fn, batches, total_steps, batch_sharding,
                             log_every=train_cfg.get("log_every", 25), desc=f"{role}:{loss}")
  predict_step = train.make_predict_step(model, shardings["params"], batch_sharding)
  logits = {}
  for name in eval_splits:
    eval_inputs, eval_keep = ctx.encoded(role, name)
    out = np.full((len(eval_keep), 2), np.nan, np.float32)
    out[eval_keep] = train.predict(predict_step, state["params"],
                                   {k: v[eval_keep] for k, v in eval_inputs.items()},
                                   cfg["eval_batch_size"], batch_sharding)
    logits[name] = out
  return logits, {"history": history, "steps": total_steps, "n_train": n}


def _one_hot(labels: np.ndarray) -> np.ndarray:
  return np.eye(2, dtype=np.float32)[labels]


def _softmax(logits: np.ndarray) -> np.ndarray:
  z = np.exp(logits - logits.max(-1, keepdims=True))
  return z / z.sum(-1, keepdims=True)


def _weak_phase(ctx: Context) -> pathlib.Path:
  split_b = ctx.splits["B"]

  def compute(out: pathlib.Path):
    logits, info = _train_classifier(ctx, "weak", "A", _one_hot(ctx.splits["A"]["label"]),
                                     "xent", ["B", "test"])
    p_pos = _softmax(logits["B"])[:, 1]  # NaN where the weak model could not read the doc
    labelled = np.isfinite(p_pos)
    accuracy = metrics.accuracy(p_pos[labelled], split_b["label"][labelled])
    checkpoints.write_npz(out / WEAK_LABELS_FILE, p_pos=p_pos, logits=logits["B"],
                          gt_label=split_b["label"], hard_label=(p_pos > 0.5).astype(np.int32))
    checkpoints.write_npz(out / PREDICTIONS_FILE, test_logits=logits["test"])
    return {**info, "weak_label_accuracy": accuracy}

  return _cached(ctx, "weak", weak_key(ctx.cfg), compute)


def _strong_phase(ctx: Context, name: str, key, split: str, soft_labels, loss,
                  backbone_dir) -> pathlib.Path:
  def compute(out: pathlib.Path):
    logits, info = _train_classifier(ctx, "strong", split, soft_labels, loss, ["test"],
                                     backbone_dir=backbone_dir)
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
  labelled = np.isfinite(weak_labels["p_pos"])

  ceiling_split = cfg["ceiling"]["split"]
  ceiling_dir = _strong_phase(ctx, "ceiling", ceiling_key(cfg), ceiling_split,
                              _one_hot(ctx.splits[ceiling_split]["label"]), "xent",
                              backbone_dir)
  student_dirs = {
      loss: _strong_phase(ctx, f"student:{loss}", student_key(cfg, loss), "B", weak_soft,
                          loss, backbone_dir)
      for loss in loss_names}

  # Score every model on the same documents: those none of them had to drop.
  test_p = {name: _softmax(_load_npz(d / PREDICTIONS_FILE)["test_logits"])[:, 1]
            for name, d in [("weak", weak_dir), ("ceiling", ceiling_dir),
                            *student_dirs.items()]}
  scored = np.all([np.isfinite(p) for p in test_p.values()], axis=0)
  test_p = {name: p[scored] for name, p in test_p.items()}
  test_labels = ctx.splits["test"]["label"][scored]
  weak_p, ceiling_p = test_p["weak"], test_p["ceiling"]
  weak_m, ceiling_m = metrics.summarize(weak_p, test_labels), metrics.summarize(ceiling_p,
                                                                               test_labels)
  students = {}
  for loss in student_dirs:
    p = test_p[loss]
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
      "weak_label_accuracy": metrics.accuracy(weak_labels["p_pos"][labelled],
                                              weak_labels["gt_label"][labelled]),
      "n": {**{split: int(len(arrays["label"])) for split, arrays in ctx.splits.items()},
            "test_scored": int(scored.sum()), "B_weak_labelled": int(labelled.sum())},
      "phases": ctx.phases, "wall_s": time.time() - start,
  }
  if jax.process_index() == 0:
    out = ctx.workdir / "results" / config_hash
    checkpoints.write_json(out / "config.json", cfg)
    checkpoints.write_json(out / "results.json", results)
    results["results_file"] = str(out / "results.json")
  return results
