"""A frozen backbone's pooled features of a split, computed once (a cached phase per split):
what the probes read, and what a linear probe trains its head on instead of running the
backbone at every step."""

from __future__ import annotations

import pathlib

import flax.traverse_util
import numpy as np
import optax

from w2s_jax import models, train
from w2s_jax.core import artefacts
from w2s_jax.phases import keys, store
from w2s_jax.phases.context import Context
from w2s_jax.phases.pretrain import backbone_params

FEATURES_FILE = "features.npz"
PROBED_SPLITS = ("B", "val")  # what the probes fit on and relabel


def features_phase(ctx: Context, role: str, split: str, layer: int = -1) -> pathlib.Path:
  """The role's frozen backbone's pooled hidden state after `layer` blocks (-1: all, then the
  final norm where the family has one) on every document of `split` (features.npz: features
  [n, d], NaN rows where max_ctx dropped the document; keep [n]; lengths [n], in tokens)."""
  cfg = ctx.cfg

  def compute(out: pathlib.Path):
    full_cfg = keys.model_config(cfg, role)
    model_cfg = full_cfg if layer < 0 else {**full_cfg, "n_layers": layer}
    model = models.build_pooled(model_cfg, pooling=cfg[role]["pooling"])
    tx = optax.identity()
    inputs, keep = ctx.encoded(role, split)
    sample = {k: v[:1] for k, v in inputs.items()}
    abstract, shardings = train.describe_state(model, tx, ctx.mesh, sample)
    backbone = _truncated_backbone(ctx, role, full_cfg, model_cfg, abstract, sample)
    params = train.init_state(model, tx, shardings, sample, cfg["seed"], backbone)["params"]
    predict = train.make_predictor(model, shardings["params"], ctx.mesh)
    features = np.full((len(keep), model.backbone.config.d_model), np.nan, np.float32)
    if keep.any():
      features[keep] = predict(params, {k: v[keep] for k, v in inputs.items()},
                               cfg["eval_batch_size"])
    artefacts.write_npz(out / FEATURES_FILE, features=features, keep=keep,
                        lengths=inputs["attention_mask"].sum(1))
    return {"layer": layer, "d_model": int(features.shape[1]), "kept": int(keep.sum()),
            "of": int(len(keep))}

  return store.cached(ctx, f"features:{role}:{split}", "features",
                      keys.features_key(cfg, role, layer, split), compute)


def frozen_features(ctx: Context, role: str, split: str, layer: int = -1):
  """(arrays {features, lengths}, keep mask) of a split, as Context.encoded gives tokens: the
  inputs of a FeatureHead. On an embedding task, the role's features are the task's."""
  if models.is_feature_head(ctx.cfg[role]["model"]):
    return ctx.encoded(role, split)
  saved = artefacts.load_npz(features_phase(ctx, role, split, layer) / FEATURES_FILE)
  return {"features": saved["features"], "lengths": saved["lengths"]}, saved["keep"]


def probe_activations(ctx: Context, role: str, layer: int) -> dict[str, np.ndarray]:
  """{split: features [n, d], NaN rows where dropped} on B and val (where the run has one)."""
  return {split: frozen_features(ctx, role, split, layer)[0]["features"]
          for split in PROBED_SPLITS if split in ctx.splits}


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
