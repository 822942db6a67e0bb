"""PNG figures with matplotlib (Agg: no display needed): the W2S paper's accuracy against
ceiling accuracy, PGR per method, a run's training curves, and the real-vs-fake AUROC of
measurement-tampering detection methods."""

from __future__ import annotations

import json
import math
import pathlib
from typing import Sequence

from w2s_jax.core import artefacts


def _pyplot():
  """matplotlib's pyplot on the Agg backend (no display needed), imported when a figure is
  drawn: 0.65 s that a run without figures does not pay."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def _grid(n: int, width: float = 4.0, height: float = 3.2):
  cols = min(n, 4)
  rows = math.ceil(n / cols)
  fig, axes = _pyplot().subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
  for ax in axes.flat[n:]:
    ax.axis("off")
  return fig, list(axes.flat)


def _save(fig, path: pathlib.Path) -> pathlib.Path:
  fig.tight_layout()
  try:
    artefacts.write_atomically(
        path, lambda f: fig.savefig(f, format=pathlib.Path(path).suffix[1:], dpi=100))
  finally:
    _pyplot().close(fig)
  return path


def accuracy_vs_ceiling(rows: Sequence[dict], path: pathlib.Path, title: str):
  """Per method: student test accuracy against the strong ceiling's, one line per weak
  model through its strong students (the W2S paper's figure); the weak model's own accuracy
  dotted, y = x dashed."""
  methods = list(dict.fromkeys(r["method"] for r in rows))
  fig, axes = _grid(len(methods))
  weak_models = list(dict.fromkeys(r["weak"] for r in rows))
  colors = {w: _pyplot().cm.viridis(i / max(len(weak_models) - 1, 1))
            for i, w in enumerate(weak_models)}
  for ax, method in zip(axes, methods):
    for weak in weak_models:
      points = sorted((r["ceiling_accuracy"], r["student_accuracy"], r["student_accuracy_std"])
                      for r in rows if r["method"] == method and r["weak"] == weak)
      if not points:
        continue
      x, y, err = zip(*points)
      ax.errorbar(x, y, yerr=err, marker="o", color=colors[weak], label=f"weak {weak}")
      weak_acc = next(r["weak_accuracy"] for r in rows if r["weak"] == weak)
      ax.axhline(weak_acc, color=colors[weak], linestyle=":", linewidth=1)
    low = min(min(r["weak_accuracy"], r["student_accuracy"]) for r in rows) - 0.02
    high = max(r["ceiling_accuracy"] for r in rows) + 0.02
    ax.plot([low, high], [low, high], "k--", linewidth=0.8)
    ax.set(title=method, xlabel="strong ceiling accuracy", ylabel="student accuracy")
    ax.legend(fontsize=7)
  fig.suptitle(title)
  return _save(fig, path)


PGR_AXIS = (-1.5, 1.5)  # the PGR figure's y range when a value falls outside it


def pgr_per_method(rows: Sequence[dict], path: pathlib.Path, title: str):
  """Per (weak, strong) pair: mean PGR of each method with its 95% interval."""
  pairs = list(dict.fromkeys((r["weak"], r["strong"]) for r in rows))
  fig, axes = _grid(len(pairs), width=max(4.0, 0.45 * len(rows) / len(pairs) + 2))
  for ax, (weak, strong) in zip(axes, pairs):
    chosen = [r for r in rows if (r["weak"], r["strong"]) == (weak, strong)]
    means = [r["pgr_mean"] if r["pgr_mean"] is not None else math.nan for r in chosen]
    errors = [[m - r["pgr_ci95"][0] if r["pgr_ci95"] else 0 for m, r in zip(means, chosen)],
              [r["pgr_ci95"][1] - m if r["pgr_ci95"] else 0 for m, r in zip(means, chosen)]]
    ax.bar(range(len(chosen)), means, yerr=errors, capsize=3, color="tab:blue")
    # Seeds whose ceiling is not above the weak model have no PGR: say how many per bar.
    labels = [r["method"] + (f"\n({r['pgr_undefined']}/{len(r['seeds'])} undef)"
                             if r.get("pgr_undefined") else "") for r in chosen]
    ax.set_xticks(range(len(chosen)), labels, rotation=60, ha="right", fontsize=7)
    # A PGR over a near-zero gap can be huge; keep the axis readable and print such values.
    low, high = PGR_AXIS
    if any(not low <= m <= high for m in means if not math.isnan(m)):
      ax.set_ylim(low, high)
      for i, m in enumerate(means):
        if not math.isnan(m) and not low <= m <= high:
          ax.annotate(f"{m:.1f}", (i, min(max(m, low), high)), ha="center", fontsize=7,
                      va="bottom" if m < low else "top")
    ax.axhline(0, color="k", linewidth=0.8)
    ax.axhline(1, color="k", linestyle="--", linewidth=0.8)
    ax.set(title=f"{weak} -> {strong}", ylabel="PGR (mean, 95% CI)")
  fig.suptitle(title)
  return _save(fig, path)


def pgr_vs_diagnostics(points: Sequence[dict], path: pathlib.Path) -> pathlib.Path:
  """PGR of every (run, student) against its misfit on test and against the weak model's
  similarity (CAPA) to the ceiling, one colour per weak -> strong pair."""
  fig, axes = _grid(2, width=5.0, height=3.8)
  pairs = list(dict.fromkeys(p["pair"] for p in points))
  colors = {pair: _pyplot().cm.viridis(i / max(len(pairs) - 1, 1))
            for i, pair in enumerate(pairs)}
  for ax, key, label in ((axes[0], "misfit_test", "misfit to the supervisor on test"),
                         (axes[1], "capa", "CAPA of weak and ceiling on test")):
    for pair in pairs:
      chosen = [p for p in points if p["pair"] == pair and p[key] is not None]
      ax.scatter([p[key] for p in chosen], [p["pgr"] for p in chosen], s=14,
                 color=colors[pair], label=pair)
    low, high = PGR_AXIS
    if any(not low <= p["pgr"] <= high for p in points):
      ax.set_ylim(low, high)
    ax.axhline(0, color="k", linewidth=0.8)
    ax.set(xlabel=label, ylabel="PGR")
    ax.legend(fontsize=6)
  fig.suptitle("PGR against the diagnostics (one point per run and student)")
  return _save(fig, path)


def report_figures(rows: Sequence[dict], out: pathlib.Path) -> list[pathlib.Path]:
  """Both figures for each task and setting of the rows."""
  paths = []
  groups = dict.fromkeys((r["task"], r["differs"]) for r in rows)
  for i, (task, differs) in enumerate(groups):
    chosen = [r for r in rows if (r["task"], r["differs"]) == (task, differs)]
    suffix = f"{task}" + (f"_{i}" if len(groups) > 1 else "")
    title = task + (f" ({differs})" if differs else "")
    paths.append(accuracy_vs_ceiling(chosen, out / f"accuracy_vs_ceiling_{suffix}.png", title))
    paths.append(pgr_per_method(chosen, out / f"pgr_{suffix}.png", title))
  return paths


def training_curves(results: dict, path: pathlib.Path) -> pathlib.Path:
  """A run's training loss per phase (pretraining, weak, ceiling, each student) against the
  step, read from the phases' records; validation AUROC where it was measured."""
  phases = []
  for name, info in results["phases"].items():
    try:
      phases.append((name, json.loads((pathlib.Path(info["dir"]) / "phase.json").read_text())))
    except (OSError, ValueError):  # a phase without a readable record has no curve to draw
      continue
  phases = [(n, p) for n, p in phases if isinstance(p, dict) and p.get("history")]
  fig, axes = _grid(max(len(phases), 1), width=3.6, height=2.8)
  for ax, (name, phase) in zip(axes, phases):
    steps = [h["step"] for h in phase["history"]]
    ax.plot(steps, [h["loss"] for h in phase["history"]], label="train loss")
    if phase.get("validation"):
      twin = ax.twinx()
      twin.plot([v["step"] for v in phase["validation"]],
                [v["score"] for v in phase["validation"]], color="tab:orange", label="val AUROC")
      twin.set_ylabel("val AUROC", fontsize=7)
    ax.set(title=name, xlabel="step", ylabel="loss")
    ax.title.set_fontsize(8)
  fig.suptitle(f"{results['task']} seed {results['seed']} ({results['config_hash']})")
  return _save(fig, path)


def mtd_auroc(rows: Sequence[dict], path: pathlib.Path) -> pathlib.Path:
  """Real-vs-fake AUROC per detection method (mean, sample std bars, each seed a dot), one
  group of bars per strong model; chance (0.5) dashed."""
  methods = list(dict.fromkeys(r["method"] for r in rows))
  models = list(dict.fromkeys((r["strong"], r["setting"]) for r in rows))
  fig, ax = _pyplot().subplots(figsize=(min(12.0, 4.0 + 0.45 * len(methods) * len(models)), 3.6))
  width = 0.8 / len(models)
  for i, (strong, setting) in enumerate(models):
    mine = {r["method"]: r for r in rows if (r["strong"], r["setting"]) == (strong, setting)}
    xs = [m + (i - (len(models) - 1) / 2) * width for m in range(len(methods))]
    means = [mine[m]["auroc_mean"] if m in mine else math.nan for m in methods]
    stds = [mine[m]["auroc_std"] if m in mine else 0.0 for m in methods]
    ax.bar(xs, means, width, yerr=stds, label=f"{strong} ({setting[:6]})", alpha=0.8)
    for x, m in zip(xs, methods):
      if m in mine:
        ax.plot([x] * len(mine[m]["auroc_values"]), mine[m]["auroc_values"], "k.", ms=3)
  ax.axhline(0.5, color="grey", ls="--", lw=1)
  ax.set_xticks(range(len(methods)), methods, rotation=20)
  ax.set_ylabel("real-vs-fake AUROC")
  ax.set_ylim(0.0, 1.02)
  ax.legend(fontsize=7)
  return _save(fig, path)
