"""The measurement predictor: the strong model with one sigmoid head for the conjunction of
the measurements ("all positive", head 0) and one per measurement (heads 1..n), fine-tuned
with the sharded train step, cached as a phase with its weights, its head logits and its
pooled activations (what the probes read) on train and test.

Its loss weights the conjunction by mtd.aggregate_weight and each measurement by the rest
(Redwood Research's 0.3 / 0.7). Variants:
  dirty      every training example, trusted or not: what training on untrusted
             measurements gives.
  exclusion  exclusion fine-tuning: from the dirty model, the same training except that the
             conjunction head never learns from untrusted examples whose measurements are
             all positive (where fake positives hide); it learns "positive" from trusted
             examples only, while the measurement heads still learn from everything.
"""

from __future__ import annotations

import pathlib

import jax.numpy as jnp
import numpy as np
import optax

from w2s_jax import checkpoints, models, phases, train
from w2s_jax.core import artefacts
from w2s_jax.models.classifier import Classifier

VARIANTS = ("dirty", "exclusion")
OUTPUTS_FILE = "outputs.npz"  # logits_<split> [n, 1 + n_measurements], activations_<split>
WEIGHTS_DIR = "weights"
SPLITS = ("train", "test")


def targets_and_weights(split, aggregate_weight: float, exclude_untrusted_positives: bool):
  """Per-example head targets and loss weights [n, 1 + n_measurements]."""
  measurements = np.asarray(split["measurements"], bool)
  all_positive = measurements.all(1)
  targets = np.concatenate([all_positive[:, None], measurements], 1).astype(np.float32)
  weights = np.full(targets.shape, 1.0 - aggregate_weight, np.float32)
  weights[:, 0] = aggregate_weight
  if exclude_untrusted_positives:
    weights[~np.asarray(split["trusted"], bool) & all_positive, 0] = 0.0
  return targets, weights


def heads_objective(model) -> train.Objective:
  """Weighted binary cross-entropy of every head, summed over heads, mean over the batch."""
  def objective(params, batch, step, loss_state):
    del step
    logits = model.apply({"params": params}, batch["input_ids"], batch["attention_mask"])
    per_head = optax.sigmoid_binary_cross_entropy(logits.astype(jnp.float32), batch["targets"])
    return (per_head * batch["weights"]).sum(-1).mean(), ({}, loss_state)
  return objective


def phase_key(cfg, variant: str) -> dict:
  key = {"data": phases.data_key(cfg), "role": phases.role_key(cfg, "strong"),
         "aggregate_weight": cfg["mtd"]["aggregate_weight"], "variant": variant}
  if variant == "exclusion":
    key["start"] = phase_key(cfg, "dirty")
  return key


def build_model(cfg) -> Classifier:
  n_measurements = cfg["task"]["n_sensors"]
  section = cfg["strong"]
  return Classifier(models.build_backbone(phases.model_config(cfg, "strong")),
                    num_classes=1 + n_measurements, pooling=section["pooling"],
                    head_init_std=section["head_init_std"])


def measurement_phase(ctx: phases.Context, variant: str) -> pathlib.Path:
  """The variant's fine-tuned measurement predictor (computed once, then reused)."""
  cfg = ctx.cfg
  name = f"mtd:{variant}"

  def compute(out: pathlib.Path):
    model = build_model(cfg)
    split = ctx.splits["train"]
    targets, weights = targets_and_weights(split, cfg["mtd"]["aggregate_weight"],
                                           variant == "exclusion")
    arrays = {"input_ids": split["input_ids"], "attention_mask": split["attention_mask"],
              "targets": targets, "weights": weights}
    trained = train.run_training(
        model, lambda total_steps: heads_objective(model), arrays,
        train.TrainSettings.parse(cfg["strong"]["train"], "strong.train"), ctx.mesh,
        seed=cfg["seed"], desc=name, remedy="lower strong.train.lr",
        initial_state=lambda abstract, shardings, sample, tx: _initial_state(
            ctx, variant, model, tx, abstract, shardings, sample),
        checkpoint_dir=out / phases.CHECKPOINTS_DIR, tracker=ctx.tracker(name, out),
        stop=ctx.stop)
    checkpoints.save_params(out / WEIGHTS_DIR, trained.state["params"])
    artefacts.write_npz(out / OUTPUTS_FILE, **_outputs(ctx, model, trained))
    return {**trained.log, "steps": trained.total_steps, "n_train": trained.n_train}

  return phases.cached(ctx, name, "mtd-model", phase_key(cfg, variant), compute)


def _initial_state(ctx, variant, model, tx, abstract, shardings, sample):
  """Dirty: the pretrained (or fresh) backbone and a new head. Exclusion: the dirty model,
  head included."""
  if variant == "dirty":
    model_cfg = phases.model_config(ctx.cfg, "strong")
    backbone = phases.backbone_params(ctx, "strong", model_cfg, abstract["params"]["backbone"])
    return train.init_state(model, tx, shardings, sample, ctx.cfg["seed"], backbone)
  dirty = checkpoints.restore_params(measurement_phase(ctx, "dirty") / WEIGHTS_DIR,
                                     abstract["params"])
  state = train.init_state(model, tx, shardings, sample, ctx.cfg["seed"], dirty["backbone"])
  state["params"]["head"] = dirty["head"]
  return state


def _outputs(ctx, model, trained: train.Trained) -> dict[str, np.ndarray]:
  """Head logits and pooled activations on every split."""
  pooled = models.build_pooled(phases.model_config(ctx.cfg, "strong"), pooling=model.pooling)
  params = trained.state["params"]
  predictors = {
      "logits": (trained.predict, params),
      "activations": (train.make_predictor(
          pooled, {"backbone": trained.param_shardings["backbone"]}, ctx.mesh),
          {"backbone": params["backbone"]})}
  out = {}
  for split in SPLITS:
    inputs = {k: ctx.splits[split][k] for k in ("input_ids", "attention_mask")}
    for what, (predict, predict_params) in predictors.items():
      out[f"{what}_{split}"] = predict(predict_params, inputs, ctx.cfg["eval_batch_size"])
  return out


def outputs(phase_dir: pathlib.Path) -> dict[str, np.ndarray]:
  return artefacts.load_npz(phase_dir / OUTPUTS_FILE)
