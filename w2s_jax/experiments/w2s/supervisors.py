"""Supervisors: where a student's soft labels on B (and val) come from.

A student is `<loss>@<supervisor>` (student.losses); supervisors are named in the config,
`supervisors.<name> = dict(kind=..., ...)`, and "gt" (the ground truth) is built in.

  model     a role's model trained on another supervisor's labels: the weak model (role
            weak, of gt, split A), a student of a student (strong-to-strong; `iters` > 1
            chains several), an intermediate model (bootstrapping: role mid, of weak)
            fields: role, of, split, loss, iters, replica
  ensemble  the mean p(y=1) of its members, each trained with `replicas` seeds
            fields: members (comma-separated names), replicas
  raven     its members' labels weighted by weights learned with each student (RAVEN,
            train/learned_weights.py), uniform at the start
            fields: members, replicas, weight_lr, freeze_frac, easy_frac
  file      labels keyed by document id from a .csv/.jsonl file (data/label_files.py)
            fields: path
  probe     a probe on a role's frozen activations that relabels the labels of `of` or
            filters out the `contamination` fraction it disagrees with most (probes.py)
            fields: probe (knn|logreg|topo), mode (relabel|filter), of, role, layer,
            contamination, k, l2, k_cc, k_zeta

Each supervisor has a key (exactly what determines its labels, recursively), so every phase
trained on it is cached under its supervisor's key and a chain reuses each earlier link.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import pathlib
from typing import Any, Mapping

import numpy as np

from w2s_jax import data, phases, probes, train
from w2s_jax.core import parsing
from w2s_jax.data import label_files
from w2s_jax.errors import ConfigError

DEFAULTS = {
    "model": dict(role="strong", of="weak", split="B", loss="xent", iters=1, replica=0),
    "ensemble": dict(members="weak", replicas=1),
    # RAVEN's schedule (its ImageNet-C setting: weights frozen for the first half, disagreeing
    # examples left out for the first half); its weights' step, 1e-4 over 150 epochs, is scaled
    # up for students of tens to hundreds of steps (docs/methods.md)
    "raven": dict(members="weak", replicas=1, weight_lr=0.5, freeze_frac=0.5, easy_frac=0.5),
    "file": dict(path=""),
    "probe": dict(probe="knn", mode="relabel", of="weak", role="strong", layer=-1,
                  contamination=0.1, k=50, l2=1e-3, k_cc=50, k_zeta=50),
}
LABELLED_SPLITS = ("B", "val")


def spec(cfg: Mapping, name: str) -> dict:
  """The named supervisor's fields, defaults filled in; unknown names and fields are
  ConfigErrors."""
  if name == "gt":
    return {"kind": "gt"}
  defined = cfg.get("supervisors", {})
  if name not in defined:
    raise ConfigError(f"unknown supervisor {name!r}; define supervisors.{name} or choose "
                      f"from gt, {', '.join(defined)}")
  given = dict(defined[name])
  kind = given.pop("kind", None)
  if kind not in DEFAULTS:
    raise ConfigError(f"supervisors.{name}.kind={kind!r} is unknown; choose from "
                      f"{', '.join(DEFAULTS)}")
  unknown = sorted(set(given) - set(DEFAULTS[kind]))
  if unknown:
    raise ConfigError(f"supervisors.{name}: {unknown} are not {kind} fields; it takes "
                      f"{sorted(DEFAULTS[kind])}")
  return {"kind": kind, **DEFAULTS[kind], **given}


def references(s: Mapping) -> list[str]:
  """The supervisors a supervisor's labels are built from."""
  if s["kind"] in ("ensemble", "raven"):
    return parsing.names(s["members"])
  return [s["of"]] if s["kind"] in ("model", "probe") else []


def roles(cfg: Mapping, names) -> set[str]:
  """The roles (config sections) the named supervisors train or read, transitively."""
  found, todo, seen = set(), list(names), set()
  while todo:
    name = todo.pop()
    if name in seen:
      continue
    seen.add(name)
    s = spec(cfg, name)
    if "role" in s:
      found.add(s["role"])
    todo += references(s)
  return found


def validate(cfg: Mapping, names) -> None:
  """Checks the named supervisors and all they depend on, before any work: known kinds,
  fields and roles, no cycles, files that exist."""
  def visit(name, path):
    if name in path:
      raise ConfigError(f"supervisors form a cycle: {' -> '.join([*path, name])}")
    s = spec(cfg, name)
    kind = s["kind"]
    if "role" in s and not isinstance(cfg.get(s["role"]), Mapping):
      raise ConfigError(f"supervisors.{name}.role={s['role']!r} names no config section")
    if kind == "model":
      if s["split"] not in ("A", "B"):
        raise ConfigError(f"supervisors.{name}.split={s['split']!r}; choose A or B")
      if int(s["iters"]) < 1 or int(s["replica"]) < 0:
        raise ConfigError(f"supervisors.{name}: iters must be >= 1 and replica >= 0")
    elif kind in ("ensemble", "raven"):
      if not references(s) or int(s["replicas"]) < 1:
        raise ConfigError(f"supervisors.{name}: give members and replicas >= 1")
      if kind == "raven":
        _check_weighting(name, s)
    elif kind == "file" and not s["path"]:
      raise ConfigError(f"supervisors.{name}.path is empty; give a .csv or .jsonl file")
    elif kind == "probe":
      if data.is_pairwise(cfg["task"]):
        raise ConfigError(f"supervisors.{name}: probes read one text's activations per "
                          "document, and a pairwise task's documents are two candidates; "
                          "use another supervisor")
      if s["probe"] not in probes.PROBES or s["mode"] not in probes.MODES:
        raise ConfigError(f"supervisors.{name}: probe must be one of {probes.PROBES} and "
                          f"mode one of {probes.MODES}")
      if not 0.0 <= float(s["contamination"]) < 1.0:
        raise ConfigError(f"supervisors.{name}.contamination must be in [0, 1)")
    for ref in references(s):
      visit(ref, [*path, name])
  for name in names:
    visit(name, [])


def _check_weighting(name: str, s: Mapping) -> None:
  if len(references(s)) * int(s["replicas"]) < 2:
    raise ConfigError(f"supervisors.{name}: a learned weighting needs at least 2 members "
                      "(members times replicas)")
  if float(s["weight_lr"]) < 0:
    raise ConfigError(f"supervisors.{name}.weight_lr must be >= 0 (0: uniform weights)")
  for field in ("freeze_frac", "easy_frac"):
    if not 0.0 <= float(s[field]) <= 1.0:
      raise ConfigError(f"supervisors.{name}.{field}={s[field]} must be in [0, 1]")


# ---------------------------------------------------------------- kinds

@dataclasses.dataclass
class GroundTruth:
  ctx: phases.Context
  name: str = "gt"

  @property
  def key(self):
    return {"kind": "gt"}

  def labels(self, split: str) -> np.ndarray:
    return self.ctx.splits[split]["label"].astype(np.float64)


@dataclasses.dataclass
class TrainedModel:
  """A role's model trained on `of`'s labels of `split`: its predictions are the labels."""
  ctx: phases.Context
  name: str
  role: str
  split: str
  of: Any
  loss: str
  replica: int

  @functools.cached_property
  def key(self):
    return phases.model_key(self.ctx.cfg, self.role, self.split, self.of.key, self.loss,
                            self.replica)

  def phase_dir(self) -> pathlib.Path:
    return phases.model_phase(self.ctx, self.name, self.role, self.split, self.of, self.loss,
                              self.replica)

  def labels(self, split: str) -> np.ndarray:
    _labelled_split(self.name, split)
    return phases.predictions(self.phase_dir())[split]

  def test_p(self) -> np.ndarray:
    return phases.predictions(self.phase_dir())["test"]


@dataclasses.dataclass
class Ensemble:
  name: str
  members: list

  @property
  def key(self):
    return {"kind": "ensemble", "members": [m.key for m in self.members]}

  def labels(self, split: str) -> np.ndarray:
    return np.mean([m.labels(split) for m in self.members], axis=0)

  def test_p(self) -> np.ndarray | None:
    tests = [m.test_p() if hasattr(m, "test_p") else None for m in self.members]
    return None if any(t is None for t in tests) else np.mean(tests, axis=0)


@dataclasses.dataclass
class LearnedEnsemble(Ensemble):
  """Members whose labels each student weights as it learns (train/learned_weights.py);
  `labels` are the uniform mean, where the weights start."""
  weighting: train.Weighting = None

  @property
  def key(self):
    return {**super().key, "kind": "raven", **dataclasses.asdict(self.weighting)}

  def member_labels(self, split: str) -> np.ndarray:
    """[n, members] p(y=1)."""
    return np.stack([m.labels(split) for m in self.members], axis=-1)


@dataclasses.dataclass
class LabelFile:
  ctx: phases.Context
  name: str
  path: pathlib.Path

  @functools.cached_property
  def key(self):
    _ = self._labels  # a malformed file stops the run here, before anything trains
    return {"kind": "file", "sha256": hashlib.sha256(self.path.read_bytes()).hexdigest()}

  @functools.cached_property
  def _labels(self) -> dict[str, np.ndarray]:
    table = label_files.read(self.path)
    splits = self.ctx.splits
    label_files.check_ids(table, np.concatenate([splits[s]["id"] for s in ("A", "B", "val")
                                                 if s in splits]), self.path)
    return {split: label_files.labels_for(table, splits[split]["id"], self.path, split)
            for split in LABELLED_SPLITS if split in splits}

  def labels(self, split: str) -> np.ndarray:
    _labelled_split(self.name, split)
    return self._labels[split]


@dataclasses.dataclass
class Probe:
  """A probe on a role's frozen activations relabelling or filtering `of`'s labels (the
  probe phase)."""
  ctx: phases.Context
  name: str
  of: Any
  params: dict  # probe, mode, role, layer, contamination, k, l2, k_cc, k_zeta

  @functools.cached_property
  def key(self):
    return phases.probe_key(self.ctx.cfg, self.params, self.of)

  def phase_dir(self) -> pathlib.Path:
    return phases.probe_phase(self.ctx, self.name, self.of, self.params)

  def labels(self, split: str) -> np.ndarray:
    _labelled_split(self.name, split)
    return phases.probe_labels(self.phase_dir(), split)


def _labelled_split(name: str, split: str) -> None:
  if split not in LABELLED_SPLITS:
    raise ConfigError(f"supervisor {name!r} labels splits {LABELLED_SPLITS}, not {split!r}; "
                      "train on B")


# ---------------------------------------------------------------- resolution

def resolve(ctx: phases.Context, name: str, replica: int = 0):
  """The named supervisor (nothing runs until its labels are asked for)."""
  s = spec(ctx.cfg, name)
  kind = s["kind"]
  if replica and kind != "model":
    raise ConfigError(f"supervisor {name!r} ({kind}) has no replicas; ensemble replicas "
                      "retrain model supervisors with other seeds")
  if kind == "gt":
    return GroundTruth(ctx)
  if kind == "model":
    supervisor = resolve(ctx, s["of"])
    iters = int(s["iters"])
    for generation in range(1, iters + 1):
      label = name if generation == iters else f"{name}.{generation}"
      label = label if not replica else f"{label}#{replica}"
      supervisor = TrainedModel(ctx, label, s["role"], s["split"], supervisor, s["loss"],
                                int(s["replica"]) + replica)
    return supervisor
  if kind in ("ensemble", "raven"):
    members = [resolve(ctx, member, r) for member in references(s)
               for r in range(int(s["replicas"]))]
    if kind == "ensemble":
      return Ensemble(name, members)
    return LearnedEnsemble(name, members, train.Weighting(
        float(s["weight_lr"]), float(s["freeze_frac"]), float(s["easy_frac"])))
  if kind == "file":
    return LabelFile(ctx, name, pathlib.Path(s["path"]).expanduser())
  params = {k: s[k] for k in DEFAULTS["probe"] if k != "of"}
  return Probe(ctx, name, resolve(ctx, s["of"]), params)
