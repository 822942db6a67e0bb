"""The classifier phase: a role's model fine-tuned on a supervisor's soft labels of a split
with a loss; its folder holds the logits on B, val and test (predictions.npz), which other
phases read as labels.

A "role" is a config section that describes a model and how it trains: `weak`, `strong`,
or any other section with the same fields (e.g. `mid`, an intermediate model for
bootstrapping)."""

from __future__ import annotations

import dataclasses
import functools
import logging
import pathlib
from typing import Any, Callable, Mapping, Protocol

import numpy as np

from w2s_jax import checkpoints, data, losses, metrics, models, train
from w2s_jax.core import artefacts
from w2s_jax.errors import ConfigError, DataError
from w2s_jax.phases import features, keys, store
from w2s_jax.phases.context import Context
from w2s_jax.phases.pretrain import backbone_params
from w2s_jax.train import learned_weights

log = logging.getLogger(__name__)

PREDICTIONS_FILE = "predictions.npz"


class Supervisor(Protocol):
  """Anything that gives p(y=1) on the documents of B (and val).

  A supervisor whose `weighting` is not None (a train.Weighting) is a set of members whose
  labels the student weights as it learns (train/learned_weights.py): its `member_labels(split)`
  are [n, members] p(y=1), and `labels` their uniform mean, the weights' starting point."""
  name: str
  key: Any  # exactly what determines the labels (part of the key of what trains on them)

  def labels(self, split: str) -> np.ndarray:
    """p(y=1) per document of the split; NaN where it gives no label."""


def softmax(logits: np.ndarray) -> np.ndarray:
  z = np.exp(logits - logits.max(-1, keepdims=True))
  return z / z.sum(-1, keepdims=True)


def predictions(phase_dir: pathlib.Path) -> dict[str, np.ndarray]:
  """p(y=1) per split from a trained model's phase folder (NaN where it could not read)."""
  return {split: softmax(logits)[:, 1]
          for split, logits in artefacts.load_npz(phase_dir / PREDICTIONS_FILE).items()}


@dataclasses.dataclass
class Classifier:
  """The role's classifier and the rows of a split it trains on: those with a label that
  max_ctx keeps, with soft labels [p(y=0), p(y=1)]. `inputs(split)` gives a split's model
  inputs and keep mask (tokens, or a frozen backbone's features for a FeatureHead)."""
  model: Any
  model_cfg: Mapping
  settings: train.TrainSettings
  trainable: Callable | None
  arrays: dict  # the model's input fields, and labels
  inputs: Callable[[str], tuple[dict, np.ndarray]]

  def train(self, ctx: Context, role: str, objective, **kwargs) -> train.Trained:
    backbone = None
    if not isinstance(self.model, models.FeatureHead):
      backbone = lambda target: backbone_params(ctx, role, self.model_cfg, target)  # noqa: E731
    return train.run_training(
        self.model, objective, self.arrays, self.settings, ctx.mesh, backbone=backbone,
        trainable=self.trainable, remedy=f"lower {role}.train.lr", stop=ctx.stop, **kwargs)

  def logits_on(self, ctx: Context, predict, params, split: str) -> np.ndarray:
    """Logits [n, 2] of every document of the split (NaN where dropped); [students, n, 2]
    for params stacked over students."""
    inputs, keep = self.inputs(split)
    kept = predict(params, {k: v[keep] for k, v in inputs.items()},
                   ctx.cfg["eval_batch_size"])
    out = np.full((*kept.shape[:-2], len(keep), 2), np.nan, np.float32)
    out[..., keep, :] = kept
    return out


def settings_of(ctx: Context, role: str) -> train.TrainSettings:
  return train.TrainSettings.parse(ctx.cfg[role]["train"], f"{role}.train")


def reads_frozen_features(cfg, role: str, replica: int = 0) -> bool:
  """Whether the role trains a head on its frozen backbone's cached features (no backbone
  forward per step): a linear probe without adapters, whose backbone is the same for every
  replica (a checkpoint or pretrained in the job), or replica 0 (whose seed initialises the
  features' backbone too)."""
  section = cfg[role]
  model_cfg = keys.model_config(cfg, role)
  if (not section["linear_probe"] or model_cfg.get("lora_rank", 0)
      or models.is_feature_head(model_cfg) or data.is_pairwise(cfg["task"])):
    return False  # (a pair's two candidates are scored by the full forward)
  given = ((models.is_checkpoint(model_cfg) and model_cfg.get("pretrained", True))
           or keys.pretraining(cfg, role) is not None)
  return given or replica == 0


def classifier_for(ctx: Context, role: str, split: str, p_pos: np.ndarray,
                   settings: train.TrainSettings, replica: int = 0,
                   per_document: Mapping[str, np.ndarray] | None = None) -> Classifier:
  """The role's classifier on the split's rows labelled p_pos; `per_document` arrays (one
  row per document of the split) join the batches' fields, cut to the same rows."""
  section = ctx.cfg[role]
  model_cfg = keys.model_config(ctx.cfg, role)
  trainable = None
  if models.is_feature_head(model_cfg):  # an embedding task: the role's own features
    model = models.build_feature_head(model_cfg, head_init_std=section["head_init_std"])
    inputs_of = functools.partial(ctx.encoded, role)
  elif reads_frozen_features(ctx.cfg, role, replica):
    model = models.FeatureHead(head_init_std=section["head_init_std"])
    inputs_of = functools.partial(features.frozen_features, ctx, role)
  else:
    model = models.build_classifier(model_cfg, pooling=section["pooling"],
                                    head_init_std=section["head_init_std"],
                                    pairwise=data.is_pairwise(ctx.cfg["task"]))
    inputs_of = functools.partial(ctx.encoded, role)
    if section["linear_probe"] or model_cfg.get("lora_rank", 0):
      trainable = functools.partial(models.is_trainable, linear_probe=section["linear_probe"],
                                    lora=bool(model_cfg.get("lora_rank", 0)))
  inputs, keep = inputs_of(split)
  use = keep & np.isfinite(p_pos)
  soft_labels = np.stack([1 - p_pos[use], p_pos[use]], -1).astype(np.float32)
  arrays = {**{k: v[use] for k, v in inputs.items()}, "labels": soft_labels,
            **{k: np.asarray(v)[use] for k, v in (per_document or {}).items()}}
  return Classifier(model, model_cfg, settings, trainable, arrays, inputs_of)


def check_labelled(name, supervisor, labels, split, settings: train.TrainSettings,
                   role) -> None:
  batch_size = settings.batch_size
  n_labelled = int(np.isfinite(labels).sum())
  if n_labelled < batch_size:
    raise DataError(f"{name}: supervisor {supervisor.name!r} labels {n_labelled} of the "
                    f"{len(labels)} documents of {split}, fewer than one batch of "
                    f"{batch_size}; lower {role}.train.batch_size or filter less")


def model_phase(ctx: Context, name: str, role: str, split: str, supervisor: Supervisor,
                loss: str = "xent", replica: int = 0) -> pathlib.Path:
  """The role's classifier fine-tuned on `supervisor`'s labels of `split` with `loss`."""
  def compute(out: pathlib.Path):
    labels = supervisor.labels(split)
    settings = settings_of(ctx, role)
    check_labelled(name, supervisor, labels, split, settings, role)  # before tokenising
    weighting = getattr(supervisor, "weighting", None)
    per_document = ({"member_p": supervisor.member_labels(split)} if weighting is not None
                    else None)
    c = classifier_for(ctx, role, split, labels, settings, replica, per_document)
    val_labels = supervisor.labels("val") if "val" in ctx.splits else None
    bound = losses.bind(loss, ctx.cfg.get("losses"), c.arrays["labels"])
    validate = None
    if c.settings.eval_every:
      validate = functools.partial(_validation_score, ctx, role, c, val_labels)
    if weighting is None:
      objective = functools.partial(train.classification_objective, c.model, bound)
      loss_state = train.initial_loss_state(bound)
    else:
      objective = functools.partial(train.learned_weights_objective, c.model, bound, weighting)
      loss_state = learned_weights.initial_loss_state(per_document["member_p"].shape[1], bound)
    trained = c.train(ctx, role, objective,
                      seed=keys.training_seed(ctx.cfg["seed"], replica), desc=name,
                      loss_state=loss_state, checkpoint_dir=out / store.CHECKPOINTS_DIR,
                      tracker=ctx.tracker(name, out), validate=validate)
    params = trained.state["params"]
    learned = {}
    if weighting is not None:
      learned = {"ensemble_weights": np.asarray(
          trained.state["loss_state"]["ensemble_weights"]).round(6).tolist()}
    if c.settings.save_weights:
      checkpoints.save_params(out / "weights", params)
    artefacts.write_npz(out / PREDICTIONS_FILE,
                        **{s: c.logits_on(ctx, trained.predict, params, s)
                           for s in ctx.eval_splits})
    return {**trained.log, "steps": trained.total_steps, "n_train": trained.n_train,
            "loss_hparams": dict(bound.fn.keywords), **learned}

  return store.cached(ctx, name, role,
                      keys.model_key(ctx.cfg, role, split, supervisor.key, loss, replica),
                      compute)


def _validation_score(ctx: Context, role: str, c: Classifier, val_p_pos, predict):
  """params -> AUROC on val against the supervisor's hard labels (EleutherAI's rule; the
  ceiling's supervisor is the ground truth).

  A supervisor whose hard labels on val are all one class (a weak model stuck on one side
  of 0.5) leaves AUROC undefined; the score is then the negative cross-entropy against its
  soft labels, so the student still keeps the params that agree with it best rather than
  failing after the supervisor's training is spent."""
  if val_p_pos is None:
    raise ConfigError(f"{role}.train.eval_every > 0 needs a validation split; set "
                      "task.n_val > 0")
  labelled = np.isfinite(val_p_pos)
  soft = val_p_pos[labelled]
  targets = soft > 0.5
  one_class = targets.all() or not targets.any()
  if one_class:
    log.warning("%s: the supervisor's validation labels are all one class; validation "
                "scores cross-entropy against its soft labels instead of AUROC", role)

  def score(params):
    p = softmax(c.logits_on(ctx, predict, params, "val"))[:, 1][labelled]
    readable = np.isfinite(p)
    if one_class:
      return -metrics.soft_cross_entropy(p[readable], soft[readable])
    return metrics.auroc(p[readable], targets[readable])
  return score
