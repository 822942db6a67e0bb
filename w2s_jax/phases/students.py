"""Students trained together, as a cached phase of their own.

Students of one role, split, supervisor and seed that differ only in their loss train with
one compiled step (train.StudentGroup). The group is a phase (kind "students", keyed by its
members' keys) computed under its lock like any other, so two runs sharing a workdir train it
once; each member then gets its own classifier phase folder, filled from the group's, so a
later run that names one student alone reuses it."""

from __future__ import annotations

import concurrent.futures
import pathlib
from typing import Mapping

import numpy as np

from w2s_jax import losses, train
from w2s_jax.core import artefacts
from w2s_jax.phases import classifier, keys, store
from w2s_jax.phases.context import Context


def can_train_together(cfg, role: str, loss: str) -> bool:
  """Students train together when nothing differs between them but the loss: no loss state
  (buffer), no validation-based selection, no weights to save."""
  settings = train.TrainSettings.parse(cfg[role]["train"], f"{role}.train")
  _, hparams = losses.spec(loss, cfg.get("losses"))
  return not (hparams.get("buffer_size") or settings.eval_every or settings.save_weights)


def student_phases(ctx: Context, role: str, split: str, supervisor: classifier.Supervisor,
                   members: Mapping[str, str]) -> dict[str, pathlib.Path]:
  """{method: phase folder} of the students {method: loss} trained on `supervisor`'s labels
  of `split` (replica 0), each phase named "student:<method>": those not yet cached that can
  train together do, the rest alone."""
  member_keys = {name: keys.model_key(ctx.cfg, role, split, supervisor.key, loss, 0)
                 for name, loss in members.items()}
  # a learned weighting of its members is a state of each student's own: those train alone
  alone = getattr(supervisor, "weighting", None) is not None
  todo = [name for name, loss in members.items()
          if not alone and can_train_together(ctx.cfg, role, loss)
          and not store.is_finished(ctx, role, member_keys[name])]
  folders = {}
  for name, loss in members.items():
    if name in todo and len(todo) > 1:
      compute = _member_from_group(ctx, role, split, supervisor,
                                   {n: members[n] for n in todo}, member_keys, name)
      folders[name] = store.cached(ctx, f"student:{name}", role, member_keys[name], compute)
    else:
      folders[name] = classifier.model_phase(ctx, f"student:{name}", role, split, supervisor,
                                             loss)
  return folders


def _member_from_group(ctx, role, split, supervisor, group, member_keys, name):
  """The member's classifier phase, its logits and record taken from the group's phase."""
  def compute(out: pathlib.Path):
    group_dir = _group_phase(ctx, role, split, supervisor, group, member_keys)
    index = list(group).index(name)
    logits = artefacts.load_npz(group_dir / classifier.PREDICTIONS_FILE)
    artefacts.write_npz(out / classifier.PREDICTIONS_FILE,
                        **{s: logits[s][index] for s in ctx.eval_splits})
    return {**store.record(group_dir)["members"][name], "group": group_dir.name}
  return compute


def _group_phase(ctx: Context, role: str, split: str, supervisor: classifier.Supervisor,
                 group: Mapping[str, str], member_keys) -> pathlib.Path:
  """The group's folder: the logits of every member stacked ([students, n, 2] per split) and
  each member's record."""
  names = list(group)

  def compute(out: pathlib.Path):
    labels = supervisor.labels(split)
    settings = classifier.settings_of(ctx, role)
    classifier.check_labelled(", ".join(names), supervisor, labels, split, settings, role)
    c = classifier.classifier_for(ctx, role, split, labels, settings)
    bound = [losses.bind(group[n], ctx.cfg.get("losses"), c.arrays["labels"]) for n in names]
    chunk = train.students_in_parallel(ctx.cfg["student"].get("vectorize_chunk", 0),
                                       len(names))
    with concurrent.futures.ThreadPoolExecutor(len(names),
                                               thread_name_prefix="student") as pool:
      trained = c.train(ctx, role,
                        lambda total_steps: train.students_objective(c.model, bound,
                                                                     total_steps),
                        seed=keys.training_seed(ctx.cfg["seed"], 0),
                        desc=f"students {', '.join(names)}",
                        students=train.StudentGroup(len(names), chunk, pool))

      def logits_on(params, which):
        return c.logits_on(ctx, trained.predict, params, which)
      if chunk == 1:
        logits = {s: np.stack(train.each_student(lambda one, s=s: logits_on(one["params"], s),
                                                 trained.state, pool))
                  for s in ctx.eval_splits}
      else:
        logits = {s: logits_on(trained.state["params"], s) for s in ctx.eval_splits}
    artefacts.write_npz(out / classifier.PREDICTIONS_FILE, **logits)
    records = {}
    for i, (name, loss) in enumerate(zip(names, bound)):
      history = [{"step": h["step"], "loss": h["loss"][i], "grad_norm": h["grad_norm"][i]}
                 for h in trained.log["history"]]
      records[name] = {**trained.log, "history": history, "steps": trained.total_steps,
                       "n_train": trained.n_train, "loss_hparams": dict(loss.fn.keywords),
                       "trained_with": names}
    return {"members": records}

  return store.cached(ctx, f"students:{','.join(names)}", "students",
                      {"members": [member_keys[n] for n in names]}, compute)
