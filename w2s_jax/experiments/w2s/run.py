"""A weak-to-strong experiment: the weak model, the ceiling, and one student per method.

  weak:    the weak role trained on ground truth of A (supervisors.weak)
  ceiling: the strong role trained on ground truth (ceiling.split)
  student: the strong role trained on a supervisor's labels of B with a loss, one per item
           of student.losses ("<loss>" on the weak model, or "<loss>@<supervisor>")

Every model is a cached phase and every supervisor resolves to its labels (supervisors.py),
so students that share a supervisor share its phases. Results go to
`<workdir>/results/<config hash>/results.json`, beside the resolved config, once everything
is computed."""

from __future__ import annotations

import pathlib
import time
from typing import Any, Mapping

import numpy as np

from w2s_jax import data, figures, metrics, phases, train
from w2s_jax.core import paths
from w2s_jax.experiments import base
from w2s_jax.experiments.w2s import config, diagnostics, supervisors


def _supervisor_summary(supervisor, splits, test_labels, scored) -> dict:
  """How good a supervisor's labels of B are, and its own test accuracy where it has one."""
  p_b = supervisor.labels("B")
  labelled = np.isfinite(p_b)
  summary = {"labelled_B": int(labelled.sum()), "n_B": int(len(p_b)),
             "label_accuracy_B": _label_accuracy(p_b, splits["B"]["label"])}
  test_p = supervisor.test_p() if hasattr(supervisor, "test_p") else None
  if test_p is not None:
    summary["test"] = metrics.summarize(test_p[scored], test_labels)
  if hasattr(supervisor, "members"):  # an ensemble's members, beside any learned weights
    summary["members"] = {m.name: _member_summary(m, splits, test_labels, scored)
                          for m in supervisor.members}
  return summary


def _label_accuracy(p, labels) -> float | None:
  """Accuracy of the labels a supervisor gives (NaN: none), None where it gives none."""
  labelled = np.isfinite(p)
  return metrics.accuracy(p[labelled], labels[labelled]) if labelled.any() else None


def _member_summary(member, splits, test_labels, scored) -> dict:
  test_p = member.test_p() if hasattr(member, "test_p") else None
  return {"label_accuracy_B": _label_accuracy(member.labels("B"), splits["B"]["label"]),
          "test_accuracy": (metrics.accuracy(test_p[scored], test_labels)
                            if test_p is not None else None)}


def _student_diagnostics(supervisor, student_dir, p_test, scored, test_labels) -> dict:
  """Misfit against the student's own supervisor, on test where the supervisor predicts every
  scored document (a model or an ensemble of models)."""
  supervisor_test = supervisor.test_p() if hasattr(supervisor, "test_p") else None
  if supervisor_test is not None:
    supervisor_test = supervisor_test[scored]
    if not np.isfinite(supervisor_test).all():
      supervisor_test = None
  return diagnostics.student({"B": phases.predictions(student_dir)["B"], "test": p_test},
                             supervisor.labels("B"), supervisor_test, test_labels)


def _students(ctx, methods, resolved) -> dict[str, pathlib.Path]:
  """{method: phase folder} of every student; with student.vectorize, those sharing a
  supervisor train together (phases.student_phases)."""
  if not ctx.cfg["student"].get("vectorize", False):
    return {name: phases.model_phase(ctx, f"student:{name}", "strong", "B",
                                     resolved[supervisor], loss)
            for name, (loss, supervisor) in methods.items()}
  folders = {}
  for supervisor in dict.fromkeys(s for _, s in methods.values()):
    members = {name: loss for name, (loss, s) in methods.items() if s == supervisor}
    folders.update(phases.student_phases(ctx, "strong", "B", resolved[supervisor], members))
  return {name: folders[name] for name in methods}


def run(cfg: Mapping[str, Any], stop: train.StopRequest | None = None) -> dict:
  """Runs (or reuses) every phase for a resolved config dict; writes and returns results."""
  config.validate(cfg)
  base.check_checkpoints_at_hand(cfg, config.roles(cfg))
  start = time.time()
  cfg = base.with_inputs(cfg)
  ctx = base.start(cfg, lambda: data.load_splits(cfg["task"], cfg["seed"]),
                   config.roles(cfg), stop)
  methods = config.student_methods(cfg)
  resolved = {name: supervisors.resolve(ctx, name)
              for name in dict.fromkeys(["weak", *(s for _, s in methods.values())])}
  for supervisor in resolved.values():
    _ = supervisor.key  # files are hashed (and must exist) before anything trains

  for role in config.roles(cfg):
    if phases.pretraining(cfg, role):
      phases.pretrain_phase(ctx, role)
  weak_dir = resolved["weak"].phase_dir()
  ceiling_dir = phases.model_phase(ctx, "ceiling", "strong", cfg["ceiling"]["split"],
                                   supervisors.resolve(ctx, "gt"))
  student_dirs = _students(ctx, methods, resolved)

  # Score every model on the same documents: those none of them had to drop.
  test_p = {name: phases.predictions(d)["test"]
            for name, d in [("weak", weak_dir), ("ceiling", ceiling_dir),
                            *student_dirs.items()]}
  scored = np.all([np.isfinite(p) for p in test_p.values()], axis=0)
  test_p = {name: p[scored] for name, p in test_p.items()}
  test_labels = ctx.splits["test"]["label"][scored]
  weak_p, ceiling_p = test_p["weak"], test_p["ceiling"]
  weak_m = metrics.summarize(weak_p, test_labels)
  ceiling_m = metrics.summarize(ceiling_p, test_labels)
  supervisor_info = {name: {"kind": supervisors.spec(cfg, name)["kind"],
                            **_supervisor_summary(s, ctx.splits, test_labels, scored)}
                     for name, s in resolved.items()}
  students = {}
  for name, (loss, supervisor) in methods.items():
    p = test_p[name]
    m = {"loss": loss, "supervisor": supervisor, **metrics.summarize(p, test_labels)}
    m["agreement_with_weak"] = metrics.agreement(p, weak_p)
    m.update(metrics.pgr_report(p, weak_p, ceiling_p, test_labels, seed=cfg["seed"]))
    m["pgr_auroc"] = (metrics.pgr(m["auroc"], weak_m["auroc"], ceiling_m["auroc"])
                      if m["pgr"] is not None else None)
    learned = phases.record(student_dirs[name]).get("ensemble_weights")
    if learned is not None:
      m["ensemble_weights"] = dict(zip((member.name for member in resolved[supervisor].members),
                                       learned))
    m["diagnostics"] = _student_diagnostics(resolved[supervisor], student_dirs[name], p,
                                            scored, test_labels)
    students[name] = m

  results = base.write_results(cfg, {
      "experiment": "w2s", "config_hash": paths.results_hash(cfg), "seed": cfg["seed"],
      "task": cfg["task"]["name"],
      "names": {role: base.model_name(cfg, role) for role in ("weak", "strong")},
      "weak": weak_m, "ceiling": ceiling_m, "students": students,
      "supervisors": supervisor_info,
      "diagnostics": {"similarity": diagnostics.similarity(weak_p, ceiling_p, test_labels),
                      "salience": diagnostics.salience(
                          ctx, cfg.get("diagnostics", {}).get("salience_examples", 0))},
      "weak_label_accuracy": supervisor_info["weak"]["label_accuracy_B"],
      "n": {**{split: int(len(arrays["label"])) for split, arrays in ctx.splits.items()},
            "test_scored": int(scored.sum()),
            "B_weak_labelled": supervisor_info["weak"]["labelled_B"]},
      "phases": ctx.phases, "wall_s": time.time() - start,
  })
  if "results_file" in results:
    figures.training_curves(results, pathlib.Path(results["results_file"]).parent / "curves.png")
  return results
