"""Self-supervised pretraining of a backbone as a language model (the strong model's latent
knowledge on the offline task)."""

from __future__ import annotations

import pathlib
from typing import Mapping

import numpy as np

from w2s_jax import checkpoints, models, sharding, train
from w2s_jax.data import batching


def pretrain_backbone(model_cfg: Mapping, pretrain_cfg: Mapping,
                      documents: Mapping[str, np.ndarray], mesh, checkpoint_dir: pathlib.Path,
                      rules=sharding.RULES, desc: str = "pretrain", tracker=None):
  """Trains a language model on `documents` for pretrain_cfg["steps"] steps, with mid-phase
  checkpoints in `checkpoint_dir` (resuming from the latest).

  Returns (backbone params on their shardings, loss history).
  """
  model = models.build_language_model(model_cfg)
  steps, batch_size = pretrain_cfg["steps"], pretrain_cfg["batch_size"]
  tx = train.make_optimizer(pretrain_cfg, steps)
  sample = {k: v[:batch_size] for k, v in documents.items()}
  abstract, shardings = train.describe_state(model, tx, mesh, sample, rules)
  ckpt = checkpoints.TrainCheckpoints.for_section(checkpoint_dir, abstract, pretrain_cfg)
  state = None
  if ckpt.latest_step() is None:
    state = train.init_state(model, tx, shardings, sample, pretrain_cfg["seed"])
  batch_sharding = sharding.batch_sharding(mesh, rules)
  step_fn = train.make_train_step(train.language_model_objective(model), tx, shardings,
                                  batch_sharding,
                                  accum_steps=pretrain_cfg.get("grad_accum_steps", 1))
  n_docs = len(documents["input_ids"])
  batches = batching.train_batches(documents, batch_size=batch_size,
                                   num_epochs=steps * batch_size / n_docs,
                                   seed=pretrain_cfg["seed"])
  state, fit_log = train.fit(state, step_fn, batches, steps, batch_sharding,
                             log_every=pretrain_cfg.get("log_every", 100), desc=desc,
                             checkpoints=ckpt,
                             max_loss_ratio=pretrain_cfg.get("max_loss_ratio", 0.0),
                             remedy="lower the pretrain section's lr", tracker=tracker)
  return state["params"]["backbone"], fit_log["history"]
