"""Diagnostics that explain or predict a run's weak-to-strong gain, from what its phases
already saved (no retraining):

  misfit      per student, how far it lands from its supervisor's labels on B and test,
              and whether Charikar, Pai & Kim's bound (student's squared error <= its
              supervisor's minus the misfit) held on test;
  similarity  of the weak model and the ceiling on test: CAPA (Goel et al. 2025) and error
              consistency; their finding is that the gain grows as similarity falls;
  salience    accuracy of a logistic probe on the strong model's frozen features, fitted to
              diagnostics.salience_examples ground-truth labels of B: how readily the task
              can be read out of what the strong model already computes.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from w2s_jax import data, metrics, phases, probes


def student(p_student: Mapping[str, np.ndarray], supervisor_b: np.ndarray,
            supervisor_test: np.ndarray | None, test_labels: np.ndarray) -> dict:
  """Misfit on B (where the supervisor labels and the student reads) and on test; on test,
  the squared-error gain over the supervisor that the bound predicts (the misfit) and the one
  measured. p_student["test"], supervisor_test and test_labels are the scored test rows."""
  on_b = np.isfinite(supervisor_b) & np.isfinite(p_student["B"])
  out = {"misfit_B": metrics.misfit(p_student["B"][on_b], supervisor_b[on_b])
         if on_b.any() else None,
         "misfit_test": None, "brier_gain_test": None, "misfit_bound_held": None}
  if supervisor_test is not None:
    out["misfit_test"] = metrics.misfit(p_student["test"], supervisor_test)
    out["brier_gain_test"] = (metrics.brier(supervisor_test, test_labels)
                              - metrics.brier(p_student["test"], test_labels))
    out["misfit_bound_held"] = bool(out["brier_gain_test"] >= out["misfit_test"])
  return out


def similarity(p_weak: np.ndarray, p_ceiling: np.ndarray, labels: np.ndarray) -> dict:
  return {"capa": metrics.capa(p_weak, p_ceiling, labels),
          "error_consistency": metrics.error_consistency(p_weak, p_ceiling, labels)}


def salience(ctx, n_examples: int) -> dict | None:
  """The probe's test accuracy (with its 95% interval) on the strong role's frozen features
  (of its checkpoint, or pretrained in the job), fitted to the first n_examples documents of
  B (already in random order) with their ground truth; None when n_examples is 0."""
  if not n_examples:
    return None
  if data.is_pairwise(ctx.cfg["task"]):
    return {"accuracy": None, "n_train": 0,
            "why": "a pairwise task's documents are two candidates, not one text to probe"}
  (train, keep_b), (test, keep_test) = (phases.frozen_features(ctx, "strong", split)
                                        for split in ("B", "test"))
  rows = np.flatnonzero(keep_b)[:n_examples]
  labels_b = ctx.splits["B"]["label"][rows]
  if len(np.unique(labels_b)) < 2:
    return {"accuracy": None, "n_train": int(len(rows)),
            "why": "the ground-truth examples are all one class"}
  w, b = probes.logreg_fit(train["features"][rows], labels_b.astype(np.float32))
  p = np.asarray(probes.logreg_predict(w, b, test["features"][keep_test]))
  summary = metrics.summarize(p, ctx.splits["test"]["label"][keep_test])
  return {"accuracy": summary["accuracy"], "accuracy_ci95": summary["accuracy_ci95"],
          "auroc": summary["auroc"], "n_train": int(len(rows)), "n_test": summary["n"]}
