"""Detection methods: each gives a score per test example, higher meaning "the outcome really
happened" (a real positive rather than tampering).

  dirty           the dirty model's conjunction head: trained on untrusted measurements, it
                  cannot tell a fooled sensor from a real reading (the baseline)
  ground_truth    a linear probe on the dirty model's activations trained on the ground truth
                  of untrusted all-positive examples: the ceiling (it uses labels that a real
                  deployment does not have)
  trusted_probe   a linear probe on the same activations trained on the trusted examples,
                  whose measurements are the truth: weak-to-strong generalisation from the
                  trusted set to the untrusted one
  evidence_probe  probing for evidence of tampering: a linear probe telling trusted examples
                  (no tampering) from untrusted ones whose measurements disagree (failed
                  tampering); the score is its probability of "trusted-like"
  exclusion       exclusion fine-tuning: the conjunction head of the model whose conjunction
                  never learnt from untrusted positives (measurements.py)

Probes are logistic regressions (probes.logreg_fit) on the pooled activations, cached as
phases keyed by the dirty model's phase and the probe's rows and labels.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from w2s_jax import phases, probes
from w2s_jax.core import artefacts
from w2s_jax.errors import DataError
from w2s_jax.experiments.mtd import measurements

SCORES_FILE = "scores.npz"


def _conjunction_head(variant: str):
  def score(ctx) -> np.ndarray:
    return measurements.outputs(measurements.measurement_phase(ctx, variant))["logits_test"][:, 0]
  return score


def _untrusted_positives(train):
  return ~train["trusted"] & train["measurements"].all(1), train["latent"]


def _trusted(train):
  return train["trusted"], train["measurements"].all(1)


def _trusted_or_inconsistent(train):
  measurements = train["measurements"]
  inconsistent = ~train["trusted"] & measurements.any(1) & ~measurements.all(1)
  return train["trusted"] | inconsistent, train["trusted"]


def _probe(name: str, rows_and_labels: Callable):
  """A logistic-regression probe on the dirty model's activations, trained on the rows and
  labels `rows_and_labels(train split)` gives."""
  def score(ctx) -> np.ndarray:
    dirty = measurements.measurement_phase(ctx, "dirty")
    l2 = ctx.cfg["mtd"]["probe_l2"]

    def compute(out):
      acts = measurements.outputs(dirty)
      rows, labels = rows_and_labels(ctx.splits["train"])
      labels = np.asarray(labels, np.float32)[rows]
      if len(labels) == 0 or labels.min() == labels.max():
        raise DataError(f"method {name}: its training rows have "
                        f"{'no examples' if len(labels) == 0 else 'one class'} "
                        f"({len(labels)} rows); raise task.n_docs or change task.train_mix")
      x_train, x_test = acts["activations_train"][rows], acts["activations_test"]
      mean, scale = x_train.mean(0), x_train.std(0) + 1e-6  # a fixed l2 means the same
      w, b = probes.logreg_fit((x_train - mean) / scale, labels, l2=l2)
      artefacts.write_npz(out / SCORES_FILE,
                            test=probes.logreg_predict(w, b, (x_test - mean) / scale))
      return {"n_train": int(len(labels)), "positive_share": float(labels.mean())}

    key = {"model": measurements.phase_key(ctx.cfg, "dirty"), "probe": name, "l2": l2}
    folder = phases.cached(ctx, f"mtd:{name}", "mtd-probe", key, compute)
    return artefacts.load_npz(folder / SCORES_FILE)["test"]
  return score


METHODS: dict[str, Callable] = {
    "dirty": _conjunction_head("dirty"),
    "ground_truth": _probe("ground_truth", _untrusted_positives),
    "trusted_probe": _probe("trusted_probe", _trusted),
    "evidence_probe": _probe("evidence_probe", _trusted_or_inconsistent),
    "exclusion": _conjunction_head("exclusion"),
}
