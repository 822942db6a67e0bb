"""The probe phase: a probe fitted on a role's frozen activations of B with a supervisor's
labels relabels B and val with its predictions, or filters out (NaN) the points it disagrees
with most (probes.py has the probes)."""

from __future__ import annotations

import pathlib
from typing import Mapping

import numpy as np

from w2s_jax import metrics, probes
from w2s_jax.core import artefacts
from w2s_jax.phases import keys, store
from w2s_jax.phases.classifier import Supervisor
from w2s_jax.phases.context import Context
from w2s_jax.phases.features import probe_activations

LABELS_FILE = "labels.npz"
# The parameters each probe reads (besides probe, mode, role and layer).
PROBE_PARAMS = {"knn": ("k",), "logreg": ("l2",), "topo": ("k_cc", "k_zeta")}


def probe_key(cfg, params: Mapping, of: Supervisor) -> dict:
  used = {"probe", "mode", *PROBE_PARAMS[params["probe"]],
          *(["contamination"] if params["mode"] == "filter" else [])}
  return {"kind": "probe", **{k: v for k, v in params.items() if k in used}, "of": of.key,
          "activations": keys.activations_key(cfg, params["role"], params["layer"])}


def probe_phase(ctx: Context, name: str, of: Supervisor, params: Mapping) -> pathlib.Path:
  """params: probe, mode, role, layer, contamination, k, l2, k_cc, k_zeta."""
  def compute(out: pathlib.Path) -> dict:
    acts = probe_activations(ctx, params["role"], params["layer"])
    base = {split: of.labels(split) for split in acts}
    usable = {split: np.isfinite(base[split]) & np.isfinite(acts[split]).all(1)
              for split in acts}
    x_fit, y_fit = acts["B"][usable["B"]], base["B"][usable["B"]]
    predict = _predictor(params, x_fit, y_fit)
    labels, info = {}, {}
    for split in acts:
      rows, x, y = usable[split], acts[split][usable[split]], base[split][usable[split]]
      out_labels = np.full(len(rows), np.nan)
      predicted = predict(x)
      if params["mode"] == "relabel":
        out_labels[rows] = predicted
      else:
        keep = (probes.topo_filter(x, y, contamination=params["contamination"],
                                   k_cc=params["k_cc"], k_zeta=params["k_zeta"])
                if params["probe"] == "topo"
                else probes.disagreement_filter(predicted, y, params["contamination"]))
        out_labels[np.flatnonzero(rows)[keep]] = y[keep]
      labels[split] = out_labels
      truth = ctx.splits[split]["label"][rows]
      info[split] = {"probe_accuracy": metrics.accuracy(predicted, truth),
                     "probe_agreement_with_labels": metrics.agreement(predicted, y),
                     "kept": int(np.isfinite(out_labels).sum()), "of": int(len(rows))}
    artefacts.write_npz(out / LABELS_FILE, **labels)
    return info

  return store.cached(ctx, f"probe:{name}", "probe", probe_key(ctx.cfg, params, of), compute)


def probe_labels(phase_dir: pathlib.Path, split: str) -> np.ndarray:
  return artefacts.load_npz(phase_dir / LABELS_FILE)[split]


def _predictor(p: Mapping, x_fit, y_fit):
  if p["probe"] == "knn":
    return lambda x: probes.knn_predict(x_fit, y_fit, x, k=p["k"])
  if p["probe"] == "logreg":
    w, b = probes.logreg_fit(x_fit, y_fit, l2=p["l2"])
    return lambda x: probes.logreg_predict(w, b, x)
  return lambda x: probes.topo_label(x_fit, y_fit, x, k_cc=p["k_cc"], k_zeta=p["k_zeta"])
