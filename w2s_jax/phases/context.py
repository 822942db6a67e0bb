"""What every phase of one run reads: the config, the workdir, the mesh, the task's splits
(tokenised once per model), the stop request, and the record of the phases so far."""

from __future__ import annotations

import dataclasses
import pathlib
import threading
from typing import Any, Mapping

import jax
import numpy as np

from w2s_jax import data, models, tracking
from w2s_jax.data import embeddings, tokenize
from w2s_jax.phases import keys
from w2s_jax.train import StopRequest


@dataclasses.dataclass
class Context:
  cfg: Mapping[str, Any]
  workdir: pathlib.Path
  mesh: jax.sharding.Mesh
  splits: Mapping[str, Mapping[str, np.ndarray]]
  stop: StopRequest = dataclasses.field(default_factory=StopRequest)
  phases: dict = dataclasses.field(default_factory=dict)  # name -> {dir, reused, wall_s}
  _encoded: dict = dataclasses.field(default_factory=dict)
  # students evaluated side by side ask for a split at the same time
  _encoding: threading.Lock = dataclasses.field(default_factory=threading.Lock)
  phase_seconds: float = 0.0  # own wall time of the phases computed so far

  def encoded(self, role: str, split: str):
    """(arrays, keep mask) of a split for the role's model: {input_ids, attention_mask}
    (text tokenised by that model's tokenizer; keep is False for documents the max_ctx
    policy drops), or {features} of the model's file on an embedding task."""
    with self._encoding:
      if (role, split) not in self._encoded:
        self._encoded[role, split] = self._encode(role, split)
      return self._encoded[role, split]

  def _encode(self, role: str, split: str):
    records = self.splits[split]
    if data.is_embeddings(self.cfg["task"]):
      model = self.cfg[role]["model"]["features"]
      features = embeddings.features_of(self.cfg["task"], model, records["id"])
      return {"features": features}, np.ones(len(features), bool)
    if "text" not in records:
      arrays = {k: records[k] for k in ("input_ids", "attention_mask")}
      return arrays, np.ones(len(records["label"]), bool)
    task = self.cfg["task"]
    backbone = models.build_backbone(keys.model_config(self.cfg, role))
    max_ctx = min(task["max_ctx"], models.max_positions(backbone))
    encode = tokenize.encode_pairs if data.is_pairwise(task) else tokenize.encode
    return encode(records["text"], models.tokenizer_for(self.cfg[role]["model"]), max_ctx,
                  task["long_docs"])

  @property
  def eval_splits(self) -> tuple[str, ...]:
    return tuple(s for s in ("B", "val", "test") if s in self.splits)

  def tracker(self, name: str, out: pathlib.Path):
    """(total_steps, schedule) -> the training-curve tracker of the phase being computed in
    `out` (its .partial folder): TensorBoard events go to <workdir>/tensorboard/<folder>."""
    folder = out.name.removeprefix(".").removesuffix(".partial")

    def make(total_steps: int, schedule):
      return tracking.Tracker(name, total_steps, logdir=self.workdir / "tensorboard" / folder,
                              settings=self.cfg.get("logging"), learning_rate=schedule)
    return make
