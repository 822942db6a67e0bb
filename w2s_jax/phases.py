"""Cached phases: pretraining a backbone, training a classifier on a supervisor's labels, and
a frozen backbone's activations.

A phase writes into `<workdir>/phases/<name>-<hash>/` and is reused by any later run whose
config gives the same hash: the hash covers exactly what determines the phase, including
the key of the supervisor whose labels it trains on, so a chain of phases (weak → student →
next student) reuses every earlier link. A phase folder appears only once complete.

A "role" is a config section that describes a model and how it trains: `weak`, `strong`,
or any other section with the same fields (e.g. `mid`, an intermediate model for
bootstrapping). Trained models predict on B, val and test; their predictions are what other
phases read as labels.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import pathlib
import shutil
import threading
import time
from typing import Any, Callable, Mapping, Protocol

import filelock
import flax.traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import multihost_utils

from w2s_jax import checkpoints, config as config_lib, data, losses, metrics, models, sharding
from w2s_jax import pretrain, tracking, train
from w2s_jax.data import batching, tokenize
from w2s_jax.errors import CheckpointError, ConfigError, DataError, Interrupted

log = logging.getLogger(__name__)

# Part of every phase key: bump it when a change to the code makes old artefacts invalid
# (a new parameter layout, a changed file format), so stale caches are never reused.
CACHE_VERSION = 3

PREDICTIONS_FILE = "predictions.npz"
ACTIVATIONS_FILE = "activations.npz"
PHASE_FILE = "phase.json"
CHECKPOINTS_DIR = "checkpoints"  # mid-phase checkpoints, inside a phase's .partial folder
# Train- and pretrain-section keys that change how a run reports, saves or guards, not what
# it computes.
NOT_IN_KEY = ("log_every", "checkpoint_every_steps", "checkpoint_every_minutes",
              "checkpoints_kept", "max_loss_ratio")


class Supervisor(Protocol):
  """Anything that gives p(y=1) on the documents of B (and val): see supervision.py."""
  name: str
  key: Any  # exactly what determines the labels (part of the key of what trains on them)

  def labels(self, split: str) -> np.ndarray:
    """p(y=1) per document of the split; NaN where it gives no label."""


@dataclasses.dataclass
class Context:
  cfg: Mapping[str, Any]
  workdir: pathlib.Path
  mesh: jax.sharding.Mesh
  splits: Mapping[str, Mapping[str, np.ndarray]]
  phases: dict = dataclasses.field(default_factory=dict)  # name -> {dir, reused, wall_s}
  _encoded: dict = dataclasses.field(default_factory=dict)
  # students evaluated side by side (train_together) ask for a split at the same time
  _encoding: threading.Lock = dataclasses.field(default_factory=threading.Lock)
  _phase_seconds: float = 0.0  # own wall time of the phases computed so far

  def encoded(self, role: str, split: str):
    """(arrays {input_ids, attention_mask}, keep mask) of a split for the role's model: text
    tokenised by that model's tokenizer; keep is False for documents the max_ctx policy
    drops."""
    with self._encoding:
      return self._encode(role, split)

  def _encode(self, role: str, split: str):
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

  @property
  def eval_splits(self) -> tuple[str, ...]:
    return tuple(s for s in ("B", "val", "test") if s in self.splits)


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
  return section


def model_key(cfg, role: str, split: str, labels_key, loss: str, replica: int) -> dict:
  return {"data": data_key(cfg), "role": role_key(cfg, role), "split": split,
          "labels": labels_key, "loss": losses.spec(loss, cfg.get("losses")),
          "replica": replica}


def activations_key(cfg, role: str, layer: int) -> dict:
  section = role_key(cfg, role)
  backbone = {k: section[k] for k in ("model", "pretrain", "pooling")}
  return {"data": data_key(cfg), "backbone": backbone, "layer": layer}


def training_seed(seed: int, replica: int) -> int:
  """Replica 0 trains with the experiment seed; others with seeds derived from it (the data
  split stays the experiment seed's)."""
  if replica == 0:
    return seed
  return int(np.random.SeedSequence([seed, replica]).generate_state(1)[0] % 2**31)


# ---------------------------------------------------------------- caching

def cached(ctx: Context, name: str, kind: str, key,
           compute: Callable[[pathlib.Path], dict]) -> pathlib.Path:
  """Runs `compute(tmp_dir)` unless a finished folder for this key exists; returns the folder.

  The folder is `<kind>-<hash of key>`: the same key under another display `name` (a
  student that is also the first link of a chain) is the same folder. A lock per folder lets
  one run compute it while others sharing the workdir wait, then reuse it. The work happens
  in `.<folder>.partial`, which survives an interrupted run with its mid-phase checkpoints
  (the next run resumes from them) and is renamed once complete.
  """
  key = {"cache_version": CACHE_VERSION, **key}
  phase_dir = phase_folder(ctx, kind, key)
  if not (phase_dir / PHASE_FILE).exists():
    with _phase_lock(phase_dir, name):
      if not (phase_dir / PHASE_FILE).exists():  # nobody finished it while we waited
        return _compute_phase(ctx, name, key, phase_dir, compute)
  if name not in ctx.phases:
    log.info("%s: reusing %s", name, phase_dir)
    ctx.phases[name] = {"dir": str(phase_dir), "reused": True, "wall_s": 0.0}
  return phase_dir


def phase_folder(ctx: Context, kind: str, key) -> pathlib.Path:
  key = {"cache_version": CACHE_VERSION, **key}
  return ctx.workdir / "phases" / f"{kind}-{config_lib.stable_hash(key)}"


def is_finished(ctx: Context, kind: str, key) -> bool:
  return (phase_folder(ctx, kind, key) / PHASE_FILE).exists()


@contextlib.contextmanager
def _phase_lock(phase_dir: pathlib.Path, name: str):
  """Process 0 holds an OS file lock (released by the OS if the process dies, so a killed
  run leaves no stale lock); the job's other processes wait for it at a barrier."""
  lock = None
  if jax.process_index() == 0:
    (phase_dir.parent / ".locks").mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(phase_dir.parent / ".locks" / f"{phase_dir.name}.lock")
    try:
      lock.acquire(timeout=0)
    except filelock.Timeout:
      log.info("%s: another run is computing %s; waiting for it", name, phase_dir)
      lock.acquire()
  multihost_utils.sync_global_devices(f"{phase_dir.name} locked")
  try:
    yield
  finally:
    if lock is not None:
      lock.release()


def _compute_phase(ctx, name, key, phase_dir, compute) -> pathlib.Path:
  tmp = phase_dir.with_name(f".{phase_dir.name}.partial")
  if jax.process_index() == 0:
    shutil.rmtree(phase_dir, ignore_errors=True)  # a folder whose phase.json never came
    tmp.mkdir(parents=True, exist_ok=True)
    for leftover in tmp.iterdir():  # keep an interrupted run's checkpoints, nothing else
      if leftover.name != CHECKPOINTS_DIR:
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
  multihost_utils.sync_global_devices(f"{name} start")
  start, nested_before = time.time(), ctx._phase_seconds
  try:
    info = compute(tmp)
  except Interrupted as e:  # from the training loop, which knows its step
    raise Interrupted(f"interrupted in phase {name} {e}; rerun the same command to "
                      "resume") from None
  except KeyboardInterrupt:
    raise Interrupted(f"interrupted in phase {name}; rerun the same command to "
                      "resume") from None
  # A phase may compute the phases it reads (a chain's earlier links): count only its own.
  wall = time.time() - start - (ctx._phase_seconds - nested_before)
  ctx._phase_seconds += wall
  if jax.process_index() == 0:
    shutil.rmtree(tmp / CHECKPOINTS_DIR, ignore_errors=True)
    checkpoints.write_json(tmp / PHASE_FILE, {"phase": name, "key": key, "wall_s": wall, **info})
    os.replace(tmp, phase_dir)
  multihost_utils.sync_global_devices(f"{name} done")
  log.info("%s: done in %.1fs -> %s", name, wall, phase_dir)
  ctx.phases[name] = {"dir": str(phase_dir), "reused": False, "wall_s": wall}
  return phase_dir


def tracker(ctx: Context, name: str, out: pathlib.Path, total_steps: int, schedule=None):
  """The training-curve tracker of the phase being computed in `out` (its .partial folder):
  TensorBoard events go to <workdir>/tensorboard/<phase folder>."""
  folder = out.name.removeprefix(".").removesuffix(".partial")
  return tracking.Tracker(name, total_steps, logdir=ctx.workdir / "tensorboard" / folder,
                          settings=ctx.cfg.get("logging"), learning_rate=schedule)


def load_npz(path: pathlib.Path) -> dict[str, np.ndarray]:
  try:
    with np.load(path) as f:
      return dict(f)
  except Exception as e:
    raise CheckpointError(f"artefact {path} is unreadable ({type(e).__name__}); delete "
                          f"{path.parent} to recompute it") from None


def softmax(logits: np.ndarray) -> np.ndarray:
  z = np.exp(logits - logits.max(-1, keepdims=True))
  return z / z.sum(-1, keepdims=True)


def predictions(phase_dir: pathlib.Path) -> dict[str, np.ndarray]:
  """p(y=1) per split from a trained model's phase folder (NaN where it could not read)."""
  return {split: softmax(logits)[:, 1]
          for split, logits in load_npz(phase_dir / PREDICTIONS_FILE).items()}


# ---------------------------------------------------------------- phases

def pretrain_phase(ctx: Context, role: str) -> pathlib.Path:
  cfg = ctx.cfg
  pretrain_cfg = cfg[role]["pretrain"]

  def compute(out: pathlib.Path):
    n_docs = pretrain_cfg["steps"] * pretrain_cfg["batch_size"]
    docs = data.pretraining_documents(cfg["task"], n_docs, pretrain_cfg["seed"])
    name = "pretrain" if role == "strong" else f"pretrain:{role}"
    schedule = train.learning_rate_schedule(pretrain_cfg, pretrain_cfg["steps"])
    params, history = pretrain.pretrain_backbone(
        model_config(cfg, role), pretrain_cfg, docs, ctx.mesh, out / CHECKPOINTS_DIR,
        desc=name, tracker=tracker(ctx, name, out, pretrain_cfg["steps"], schedule))
    checkpoints.save_params(out / "backbone", params)
    return {"history": history, "n_docs": n_docs}

  return cached(ctx, "pretrain" if role == "strong" else f"pretrain:{role}", "pretrain",
                pretrain_key(cfg, role), compute)


def backbone_params(ctx: Context, role: str, model_cfg, target):
  """The role's starting backbone weights placed like `target`: pretrained in this job,
  from a checkpoint, or None (a fresh initialisation)."""
  if pretraining(ctx.cfg, role):
    return checkpoints.restore_params(pretrain_phase(ctx, role) / "backbone", target)
  return models.pretrained_backbone_params(model_cfg, target)


def model_phase(ctx: Context, name: str, role: str, split: str, supervisor: Supervisor,
                loss: str = "xent", replica: int = 0, trained=None) -> pathlib.Path:
  """The role's classifier fine-tuned on `supervisor`'s labels of `split` with `loss`; its
  folder holds the logits on B, val and test (predictions.npz). `trained`: its (logits,
  record) when it was already trained together with other students."""
  def compute(out: pathlib.Path):
    if trained is not None:
      logits, info = trained
    else:
      labels = supervisor.labels(split)
      _check_labelled(name, supervisor, labels, split, ctx.cfg[role]["train"]["batch_size"],
                      role)
      val_labels = supervisor.labels("val") if "val" in ctx.splits else None
      logits, info = _train_classifier(ctx, name, role, split, labels, val_labels, loss,
                                       training_seed(ctx.cfg["seed"], replica), out)
    checkpoints.write_npz(out / PREDICTIONS_FILE, **logits)
    return info

  return cached(ctx, name, role,
                model_key(ctx.cfg, role, split, supervisor.key, loss, replica), compute)


def _check_labelled(name, supervisor, labels, split, batch_size, role) -> None:
  n_labelled = int(np.isfinite(labels).sum())
  if n_labelled < batch_size:
    raise DataError(f"{name}: supervisor {supervisor.name!r} labels {n_labelled} of the "
                    f"{len(labels)} documents of {split}, fewer than one batch of "
                    f"{batch_size}; lower {role}.train.batch_size or filter less")


@dataclasses.dataclass
class _Setup:
  """What training the role's classifier on a split's soft labels needs."""
  model: Any
  model_cfg: Mapping
  train_cfg: Mapping
  trainable: Any
  arrays: dict  # input_ids, attention_mask, labels of the rows that train
  total_steps: int
  tx: Any
  batch_sharding: Any

  @property
  def sample(self):
    return {k: v[: self.train_cfg["batch_size"]] for k, v in self.arrays.items()}

  def batches(self, seed: int):
    return batching.train_batches(self.arrays, batch_size=self.train_cfg["batch_size"],
                                  num_epochs=self.train_cfg["epochs"], seed=seed,
                                  bucket_window=self.train_cfg.get("bucket_window", 0))


def _setup(ctx: Context, role: str, split: str, p_pos: np.ndarray) -> _Setup:
  """Rows with NaN labels, or dropped by max_ctx, are left out."""
  section = ctx.cfg[role]
  train_cfg, model_cfg = section["train"], model_config(ctx.cfg, role)
  model = models.build_classifier(model_cfg, pooling=section["pooling"],
                                  head_init_std=section["head_init_std"])
  trainable = None
  if section["linear_probe"] or model_cfg.get("lora_rank", 0):
    trainable = functools.partial(models.is_trainable, linear_probe=section["linear_probe"],
                                  lora=bool(model_cfg.get("lora_rank", 0)))
  inputs, keep = ctx.encoded(role, split)
  use = keep & np.isfinite(p_pos)
  soft_labels = np.stack([1 - p_pos[use], p_pos[use]], -1).astype(np.float32)
  arrays = {**{k: v[use] for k, v in inputs.items()}, "labels": soft_labels}
  total_steps = batching.steps_per_run(int(use.sum()), train_cfg["batch_size"],
                                       train_cfg["epochs"])
  return _Setup(model, model_cfg, train_cfg, trainable, arrays, total_steps,
                train.make_optimizer(train_cfg, total_steps, trainable=trainable),
                sharding.batch_sharding(ctx.mesh))


def _eval_logits(ctx: Context, role: str, setup: _Setup, param_shardings,
                 students_chunk: int = 0):
  """params, split -> logits [n, 2] of every document of the split (NaN where dropped);
  [students, n, 2] for params stacked over students (students_chunk != 0)."""
  predict_step = train.make_predict_step(setup.model, param_shardings, setup.batch_sharding,
                                         students_chunk)

  def logits_on(params, split):
    inputs, keep = ctx.encoded(role, split)
    kept = train.predict(predict_step, params, {k: v[keep] for k, v in inputs.items()},
                         ctx.cfg["eval_batch_size"], setup.batch_sharding)
    out = np.full((*kept.shape[:-2], len(keep), 2), np.nan, np.float32)
    out[..., keep, :] = kept
    return out
  return logits_on


def _train_classifier(ctx: Context, name: str, role: str, split: str, p_pos: np.ndarray,
                      val_p_pos: np.ndarray | None, loss_name: str, seed: int,
                      out: pathlib.Path):
  """Fine-tunes the role's classifier on the soft labels p_pos of a split, checkpointing
  into `out`; returns logits per eval split and what to record."""
  s = _setup(ctx, role, split, p_pos)
  train_cfg = s.train_cfg
  loss = losses.bind(loss_name, ctx.cfg.get("losses"), s.arrays["labels"])
  loss_state = train.initial_loss_state(loss)
  abstract, shardings = train.describe_state(s.model, s.tx, ctx.mesh, s.sample,
                                             loss_state=loss_state)
  ckpt = checkpoints.TrainCheckpoints.for_section(out / CHECKPOINTS_DIR, abstract, train_cfg)
  state = None  # resumed from the latest checkpoint when there is one
  if ckpt.latest_step() is None:
    backbone = backbone_params(ctx, role, s.model_cfg, abstract["params"]["backbone"])
    state = train.init_state(s.model, s.tx, shardings, s.sample, seed, backbone, loss_state)
  step_fn = train.make_train_step(train.classification_objective(s.model, loss, s.total_steps),
                                  s.tx, shardings, s.batch_sharding, s.trainable,
                                  accum_steps=train_cfg.get("grad_accum_steps", 1))
  logits_on = _eval_logits(ctx, role, s, shardings["params"])
  validate = None
  if train_cfg.get("eval_every", 0):
    validate = _validation_score(ctx, role, val_p_pos, logits_on)
  state, fit_log = train.fit(
      state, step_fn, s.batches(seed), s.total_steps, s.batch_sharding,
      log_every=train_cfg.get("log_every", 25), desc=name, validate=validate,
      validate_every=train_cfg.get("eval_every", 0),
      select_best=train_cfg.get("select_best", False),
      patience=train_cfg.get("early_stop_patience", 0), checkpoints=ckpt,
      max_loss_ratio=train_cfg.get("max_loss_ratio", 0.0),
      remedy=f"lower {role}.train.lr",
      tracker=tracker(ctx, name, out, s.total_steps,
                      train.learning_rate_schedule(train_cfg, s.total_steps)))
  if train_cfg.get("save_weights", False):
    checkpoints.save_params(out / "weights", state["params"])
  logits = {split: logits_on(state["params"], split) for split in ctx.eval_splits}
  return logits, {**fit_log, "steps": s.total_steps, "n_train": len(s.arrays["labels"]),
                  "loss_hparams": dict(loss.fn.keywords)}


def can_train_together(cfg, role: str, loss: str) -> bool:
  """Students train together when nothing differs between them but the loss: no loss state
  (buffer), no validation-based selection, no weights to save."""
  train_cfg = cfg[role]["train"]
  _, hparams = losses.spec(loss, cfg.get("losses"))
  return not (hparams.get("buffer_size") or train_cfg.get("eval_every", 0)
              or train_cfg.get("save_weights", False))


def train_together(ctx: Context, names: list[str], role: str, split: str,
                   supervisor: Supervisor, loss_names: list[str], seed: int) -> dict:
  """Several students of one role, split, supervisor and seed, differing only in their loss,
  trained with one compiled step; {name: (logits, record)} as _train_classifier gives them.
  One at a time (train.students_in_parallel: on a CPU) the step is called on each student's
  own state, as training it alone would, the calls running side by side; more at a time,
  their states are stacked and vmapped.
  (No mid-phase checkpoints: a kill retrains the group.)"""
  labels = supervisor.labels(split)
  _check_labelled(", ".join(names), supervisor, labels, split,
                  ctx.cfg[role]["train"]["batch_size"], role)
  s = _setup(ctx, role, split, labels)
  bound = [losses.bind(n, ctx.cfg.get("losses"), s.arrays["labels"]) for n in loss_names]
  count = len(names)
  chunk = train.students_in_parallel(ctx.cfg["student"].get("vectorize_chunk", 0), count)
  loss_state = {"student": jnp.zeros((), jnp.int32)}
  abstract, shardings = train.describe_state(s.model, s.tx, ctx.mesh, s.sample,
                                             loss_state=loss_state)
  backbone = backbone_params(ctx, role, s.model_cfg, abstract["params"]["backbone"])
  single = train.init_state(s.model, s.tx, shardings, s.sample, seed, backbone, loss_state)
  accum_steps = s.train_cfg.get("grad_accum_steps", 1)
  objective = train.students_objective(s.model, bound, s.total_steps)
  # every student starts where a student trained alone would
  if chunk == 1:  # each its own buffers, as the step donates them
    state = tuple(
        {**(single if i == 0 else jax.tree.map(jnp.copy, single)),
         "loss_state": jax.device_put({"student": jnp.asarray(i, jnp.int32)},
                                      shardings["loss_state"])}
        for i in range(count))
    step_fn = train.make_students_step(objective, s.tx, shardings, s.batch_sharding,
                                       s.trainable, accum_steps=accum_steps)
  else:
    def stack(state):
      stacked = jax.tree.map(lambda x: jnp.stack([x] * count), state)
      return {**stacked, "loss_state": {"student": jnp.arange(count, dtype=jnp.int32)}}
    state = jax.jit(stack, out_shardings=train.stacked_shardings(shardings))(single)
    step_fn = train.make_vectorised_train_step(objective, s.tx, shardings, s.batch_sharding,
                                               s.trainable, accum_steps=accum_steps,
                                               chunk=chunk)
  state, fit_log = train.fit(
      state, step_fn, s.batches(seed), s.total_steps, s.batch_sharding,
      log_every=s.train_cfg.get("log_every", 25), desc=f"students {', '.join(names)}",
      max_loss_ratio=s.train_cfg.get("max_loss_ratio", 0.0), remedy=f"lower {role}.train.lr")
  if chunk == 1:
    logits_on = _eval_logits(ctx, role, s, shardings["params"])
    logits = {split_: np.stack(train.each_student(lambda one: logits_on(one["params"], split_),
                                                  state))
              for split_ in ctx.eval_splits}
  else:
    logits_on = _eval_logits(ctx, role, s, shardings["params"], chunk)
    logits = {split_: logits_on(state["params"], split_) for split_ in ctx.eval_splits}
  results = {}
  for i, (name, loss) in enumerate(zip(names, bound)):
    history = [{"step": h["step"], "loss": h["loss"][i], "grad_norm": h["grad_norm"][i]}
               for h in fit_log["history"]]
    results[name] = ({split_: logits[split_][i] for split_ in ctx.eval_splits},
                     {**fit_log, "history": history, "steps": s.total_steps,
                      "n_train": len(s.arrays["labels"]), "loss_hparams": dict(loss.fn.keywords),
                      "trained_with": names})
  return results


def _validation_score(ctx: Context, role: str, val_p_pos, logits_on):
  """params -> AUROC on val against the supervisor's hard labels (EleutherAI's rule; the
  ceiling's supervisor is the ground truth)."""
  if val_p_pos is None:
    raise ConfigError(f"{role}.train.eval_every > 0 needs a validation split; set "
                      "task.n_val > 0")
  labelled = np.isfinite(val_p_pos)
  targets = val_p_pos[labelled] > 0.5
  if targets.all() or not targets.any():
    raise ConfigError(f"{role}: the supervisor's validation labels are all one class, so "
                      "validation AUROC is undefined; set eval_every=0 or raise task.n_val")

  def score(params):
    p = softmax(logits_on(params, "val"))[:, 1][labelled]
    readable = np.isfinite(p)
    return metrics.auroc(p[readable], targets[readable])
  return score


def activations_phase(ctx: Context, role: str, layer: int) -> pathlib.Path:
  """The role's frozen backbone's pooled hidden state after `layer` blocks (-1: all, then the
  final norm where the family has one) on B and val (activations.npz; NaN rows where the
  document was dropped), computed once and cached."""
  cfg = ctx.cfg

  def compute(out: pathlib.Path):
    full_cfg = model_config(cfg, role)
    model_cfg = full_cfg if layer < 0 else {**full_cfg, "n_layers": layer}
    model = models.build_pooled(model_cfg, pooling=cfg[role]["pooling"])
    tx = optax.identity()
    arrays = {}
    for split in ("B", "val"):
      if split not in ctx.splits:
        continue
      inputs, keep = ctx.encoded(role, split)
      sample = {k: v[:1] for k, v in inputs.items()}
      abstract, shardings = train.describe_state(model, tx, ctx.mesh, sample)
      backbone = _truncated_backbone(ctx, role, full_cfg, model_cfg, abstract, sample)
      params = train.init_state(model, tx, shardings, sample, cfg["seed"],
                                backbone)["params"]
      batch_sharding = sharding.batch_sharding(ctx.mesh)
      step = train.make_predict_step(model, shardings["params"], batch_sharding)
      acts = np.full((len(keep), model.backbone.config.d_model), np.nan, np.float32)
      acts[keep] = train.predict(step, params, {k: v[keep] for k, v in inputs.items()},
                                 cfg["eval_batch_size"], batch_sharding)
      arrays[split] = acts
    checkpoints.write_npz(out / ACTIVATIONS_FILE, **arrays)
    return {"layer": layer, "d_model": int(next(iter(arrays.values())).shape[1])}

  return cached(ctx, f"activations:{role}", "activations", activations_key(cfg, role, layer),
                compute)


def _truncated_backbone(ctx, role, full_cfg, model_cfg, abstract, sample):
  """Backbone weights for a model cut to its first layers: a checkpoint reads only those;
  weights pretrained in the job are restored whole and the later layers dropped."""
  target = abstract["params"]["backbone"]
  if models.is_checkpoint(full_cfg) or full_cfg is model_cfg:
    return backbone_params(ctx, role, model_cfg, target)
  full = models.build_pooled(full_cfg, pooling=ctx.cfg[role]["pooling"])
  full_target = train.describe_state(full, optax.identity(), ctx.mesh, sample)[0]
  params = backbone_params(ctx, role, full_cfg, full_target["params"]["backbone"])
  if params is None:
    return None
  wanted = flax.traverse_util.flatten_dict(dict(target))
  kept = {path: value for path, value in flax.traverse_util.flatten_dict(dict(params)).items()
          if path in wanted}
  return flax.traverse_util.unflatten_dict(kept)
