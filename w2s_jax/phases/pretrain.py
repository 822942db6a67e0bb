"""Pretraining a backbone as a language model in the job (the strong model's latent knowledge
on the offline task), and where a role's starting backbone weights come from."""

from __future__ import annotations

import pathlib

from w2s_jax import checkpoints, data, models, train
from w2s_jax.phases import keys, store
from w2s_jax.phases.context import Context


def pretrain_phase(ctx: Context, role: str) -> pathlib.Path:
  cfg = ctx.cfg
  settings = train.TrainSettings.parse(cfg[role]["pretrain"], f"{role}.pretrain")
  name = "pretrain" if role == "strong" else f"pretrain:{role}"

  def compute(out: pathlib.Path):
    n_docs = settings.steps * settings.batch_size
    docs = data.pretraining_documents(cfg["task"], n_docs, settings.seed)
    model = models.build_language_model(keys.model_config(cfg, role))
    trained = train.run_training(
        model, lambda total_steps: train.language_model_objective(model), docs, settings, ctx.mesh,
        seed=settings.seed, desc=name, remedy="lower the pretrain section's lr",
        checkpoint_dir=out / store.CHECKPOINTS_DIR, tracker=ctx.tracker(name, out),
        stop=ctx.stop)
    checkpoints.save_params(out / "backbone", trained.state["params"]["backbone"])
    return {"history": trained.log["history"], "n_docs": n_docs}

  return store.cached(ctx, name, "pretrain", keys.pretrain_key(cfg, role), compute)


def backbone_params(ctx: Context, role: str, model_cfg, target):
  """The role's starting backbone weights placed like `target`: pretrained in this job,
  from a checkpoint, or None (a fresh initialisation)."""
  if keys.pretraining(ctx.cfg, role):
    return checkpoints.restore_params(pretrain_phase(ctx, role) / "backbone", target)
  return models.pretrained_backbone_params(model_cfg, target)
