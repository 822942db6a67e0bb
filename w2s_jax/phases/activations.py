"""A frozen backbone's pooled activations on B and val, computed once: what the probes
read."""

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

ACTIVATIONS_FILE = "activations.npz"


def activations_phase(ctx: Context, role: str, layer: int) -> pathlib.Path:
  """The role's frozen backbone's pooled hidden state after `layer` blocks (-1: all, then the
  final norm where the family has one) on B and val (activations.npz; NaN rows where the
  document was dropped), computed once and cached."""
  cfg = ctx.cfg

  def compute(out: pathlib.Path):
    full_cfg = keys.model_config(cfg, role)
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
      predict = train.make_predictor(model, shardings["params"], ctx.mesh)
      acts = np.full((len(keep), model.backbone.config.d_model), np.nan, np.float32)
      acts[keep] = predict(params, {k: v[keep] for k, v in inputs.items()},
                           cfg["eval_batch_size"])
      arrays[split] = acts
    artefacts.write_npz(out / ACTIVATIONS_FILE, **arrays)
    return {"layer": layer, "d_model": int(next(iter(arrays.values())).shape[1])}

  return store.cached(ctx, f"activations:{role}", "activations",
                      keys.activations_key(cfg, role, layer), compute)


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
