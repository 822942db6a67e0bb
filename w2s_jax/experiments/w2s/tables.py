"""A weak-to-strong run's tables: one run (plain text), the mean ± sample std over seeds
(markdown), and the report's rows over every run of a workdir (markdown, CSV, figures)."""

from __future__ import annotations

import csv
import pathlib
from typing import Sequence

import numpy as np

from w2s_jax import figures, metrics
from w2s_jax.core import hashing
from w2s_jax.experiments import base
from w2s_jax.experiments.tables import cell, flatten, mean_std_text, setting_of
from w2s_jax.experiments.w2s import config as w2s_config

FOOTNOTE = ("PGR = (student - weak) / (ceiling - weak) on test accuracy, with a paired bootstrap "
            "95% interval;\nundef when the ceiling is not significantly above the weak model.")


def _pgr_text(m: dict) -> str:
  if m["pgr"] is None:
    return "undef"
  low, high = m["pgr_ci95"]
  return f"{m['pgr']:.2f} [{low:.2f}, {high:.2f}]"


def run_table(result: dict) -> str:
  names = ["weak", "ceiling", *(f"student:{m}" for m in result["students"])]
  width = max(len(n) for n in names) + 2
  lines = [f"task {result['task']} | seed {result['seed']} | config {result['config_hash']} | "
           f"{result['wall_s']:.0f}s | n_test {result['n']['test']}",
           f"{'model':<{width}}{'test acc':>9}  {'95% CI':<16}{'AUROC':>6}{'agree/weak':>11}"
           f"{'gain':>8}  {'PGR [95% CI]'}"]
  for name in ("weak", "ceiling"):
    m = result[name]
    lines.append(f"{name:<{width}}{m['accuracy']:>9.3f}  [{m['accuracy_ci95'][0]:.3f}, "
                 f"{m['accuracy_ci95'][1]:.3f}] {m['auroc']:>6.3f}")
  for method, m in result["students"].items():
    lines.append(f"{'student:' + method:<{width}}{m['accuracy']:>9.3f}  "
                 f"[{m['accuracy_ci95'][0]:.3f}, {m['accuracy_ci95'][1]:.3f}] "
                 f"{m['auroc']:>6.3f}{m['agreement_with_weak']:>11.3f}"
                 f"{m['gain_over_weak']:>+8.3f}  {_pgr_text(m)}")
  lines.append(FOOTNOTE)
  if "diagnostics" in result:
    lines += diagnostics_lines(result, width)
  return "\n".join(lines)


def _number(value, spec=".3f") -> str:
  return "-" if value is None else format(value, spec)


def diagnostics_lines(result: dict, width: int) -> list[str]:
  """The run's diagnostics (experiments/w2s/diagnostics.py) under its table."""
  similarity, salience = (result["diagnostics"][k] for k in ("similarity", "salience"))
  lines = [f"diagnostics: weak vs ceiling on test: CAPA {_number(similarity['capa'])}, "
           f"error consistency {_number(similarity['error_consistency'])}"]
  if salience is not None and salience.get("why"):
    lines.append(f"salience: not measured ({salience['why']})")
  elif salience is not None:
    interval = (f" [{salience['accuracy_ci95'][0]:.3f}, {salience['accuracy_ci95'][1]:.3f}]"
                if salience["accuracy"] is not None else "")
    lines.append(f"salience: a logistic probe on the strong model's frozen features, "
                 f"{salience['n_train']} labels of B: test acc "
                 f"{_number(salience['accuracy'])}{interval}")
  lines.append(f"{'misfit':<{width}}{'on B':>9}{'on test':>9}{'Brier gain':>12}  bound held")
  for method, m in result["students"].items():
    d = m["diagnostics"]
    held = {True: "yes", False: "no", None: "-"}[d["misfit_bound_held"]]
    lines.append(f"{'student:' + method:<{width}}{_number(d['misfit_B'], '.4f'):>9}"
                 f"{_number(d['misfit_test'], '.4f'):>9}"
                 f"{_number(d['brier_gain_test'], '+.4f'):>12}  {held}")
  return lines


def seeds_table(results: Sequence[dict]) -> str:
  """Markdown: per model, test accuracy, gain over weak, PGR and student–weak agreement as
  mean ± sample std over the runs (seeds)."""
  seeds = ",".join(str(r["seed"]) for r in results)
  lines = [f"mean ± std (ddof=1) over seeds {seeds}; task {results[0]['task']}", "",
           "| model | supervisor | loss | test acc | gain over weak | PGR | agreement w/ weak |",
           "|---|---|---|---|---|---|---|"]
  for name in ("weak", "ceiling"):
    accuracy = mean_std_text([r[name]["accuracy"] for r in results])
    lines.append(f"| {name} | gt | xent | {accuracy} | | | |")
  for method in results[0]["students"]:
    runs = [r["students"][method] for r in results]
    lines.append(f"| student:{method} | {runs[0].get('supervisor', 'weak')} | "
                 f"{runs[0].get('loss', method)} | "
                 f"{mean_std_text([m['accuracy'] for m in runs])} | "
                 f"{mean_std_text([m['gain_over_weak'] for m in runs])} | "
                 f"{mean_std_text([m['pgr'] for m in runs])} | "
                 f"{mean_std_text([m['agreement_with_weak'] for m in runs])} |")
  return "\n".join(lines)


# Settings that the task, weak and strong columns already name.
SHOWN_BY_NAME = ("task.name", "weak.model.", "strong.model.", "weak.pretrain.",
                 "strong.pretrain.")


def summarize_runs(runs: Sequence[tuple[dict, dict]]) -> list[dict]:
  """One row per (setting, student method): means and sample stds (ddof=1) over its seeds,
  median and mean PGR with a 95% interval (t over seeds; one seed: its bootstrap interval).
  A row's `setting` names what differs between the folder's settings."""
  settings: dict[str, list] = {}
  for config, results in runs:
    settings.setdefault(hashing.stable_hash(setting_of(config)), []).append(
        (config, results))
  flat = {sid: flatten(setting_of(group[0][0])) for sid, group in settings.items()}
  varying = sorted(k for k in set().union(*flat.values())
                   if len({repr(f.get(k)) for f in flat.values()}) > 1)
  rows = []
  for sid, group in settings.items():
    config = group[0][0]
    described = ", ".join(f"{k}={flat[sid].get(k)}" for k in varying
                          if not k.startswith(SHOWN_BY_NAME))
    methods = list(dict.fromkeys(m for c, _ in group for m in w2s_config.student_methods(c)))
    for method in methods:
      seeded = sorted(((r["seed"], r) for _, r in group if method in r["students"]),
                      key=lambda item: item[0])
      results = [r for _, r in seeded]
      students = [r["students"][method] for r in results]
      defined = [s for s in students if s["pgr"] is not None]
      pgrs = [s["pgr"] for s in defined]
      # One seed with a PGR (the others undefined): that seed's bootstrap interval.
      interval = (metrics.t_interval95(pgrs) if len(pgrs) > 1 else
                  tuple(defined[0]["pgr_ci95"]) if defined and defined[0]["pgr_ci95"]
                  else None)
      row = {"setting": sid, "differs": described, "task": config["task"]["name"],
             "weak": results[0]["names"]["weak"], "strong": results[0]["names"]["strong"],
             "method": method, "supervisor": students[0].get("supervisor", "weak"),
             "loss": students[0].get("loss", method), "seeds": [s for s, _ in seeded],
             "pgr_values": pgrs, "pgr_undefined": len(students) - len(pgrs),
             "pgr_median": float(np.median(pgrs)) if pgrs else None,
             "pgr_mean": float(np.mean(pgrs)) if pgrs else None,
             "pgr_ci95": list(interval) if interval else None,
             "results_files": [str(pathlib.Path(r.get("results_file", ""))) for r in results]}
      for name, values in (("weak_accuracy", [r["weak"]["accuracy"] for r in results]),
                           ("ceiling_accuracy", [r["ceiling"]["accuracy"] for r in results]),
                           ("student_accuracy", [s["accuracy"] for s in students]),
                           ("student_auroc", [s["auroc"] for s in students]),
                           ("agreement_with_weak", [s["agreement_with_weak"] for s in students])):
        mean, std, _ = metrics.mean_std(values)
        row[name], row[f"{name}_std"] = mean, std
      row.update(_diagnostics_summary(results, students))
      rows.append(row)
  return sorted(rows, key=lambda r: (r["task"], r["differs"], r["weak"], r["strong"]))


def _diagnostics_summary(results: Sequence[dict], students: Sequence[dict]) -> dict:
  """Means over seeds of a row's diagnostics (None where the runs predate them or lack
  one), and how many seeds the misfit bound held in."""
  def mean_of(values):
    summary = metrics.mean_std([v for v in values if v is not None] or [None])
    return summary[0] if summary else None
  run_diagnostics = [r.get("diagnostics") or {} for r in results]
  own = [s.get("diagnostics") or {} for s in students]
  held = [d.get("misfit_bound_held") for d in own if d.get("misfit_bound_held") is not None]
  return {
      "misfit_B": mean_of([d.get("misfit_B") for d in own]),
      "misfit_test": mean_of([d.get("misfit_test") for d in own]),
      "brier_gain_test": mean_of([d.get("brier_gain_test") for d in own]),
      "misfit_bound_held": f"{sum(held)}/{len(held)}" if held else None,
      "capa": mean_of([(d.get("similarity") or {}).get("capa") for d in run_diagnostics]),
      "error_consistency": mean_of([(d.get("similarity") or {}).get("error_consistency")
                                    for d in run_diagnostics]),
      "salience": mean_of([(d.get("salience") or {}).get("accuracy") for d in run_diagnostics]),
  }


def diagnostic_points(runs: base.Runs) -> list[dict]:
  """One point per (run, student) with a PGR and diagnostics: what the sweep figure plots."""
  points = []
  for _, results in runs:
    similarity = (results.get("diagnostics") or {}).get("similarity") or {}
    for method, student in results["students"].items():
      own = student.get("diagnostics") or {}
      if student["pgr"] is None or not own:
        continue
      points.append({"task": results["task"], "method": method, "pgr": student["pgr"],
                     "pair": f"{results['names']['weak']} -> {results['names']['strong']}",
                     "misfit_test": own.get("misfit_test"), "capa": similarity.get("capa"),
                     "error_consistency": similarity.get("error_consistency")})
  return points


DIAGNOSTICS_COLUMNS = ("task", "setting", "weak", "strong", "method", "misfit on B",
                       "misfit on test", "Brier gain on test", "bound held",
                       "CAPA weak/ceiling", "error consistency", "salience")


def diagnostics_markdown(rows: Sequence[dict]) -> str:
  lines = ["| " + " | ".join(DIAGNOSTICS_COLUMNS) + " |",
           "|" + "---|" * len(DIAGNOSTICS_COLUMNS)]
  for r in rows:
    cells = [r["task"], r["differs"] or "-", r["weak"], r["strong"], r["method"],
             _number(r["misfit_B"], ".4f"), _number(r["misfit_test"], ".4f"),
             _number(r["brier_gain_test"], "+.4f"), r["misfit_bound_held"] or "-",
             _number(r["capa"]), _number(r["error_consistency"]), _number(r["salience"])]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


MARKDOWN_COLUMNS = ("task", "setting", "weak", "strong", "method", "seeds", "weak acc",
                    "ceiling acc", "student acc", "student AUROC", "PGR median",
                    "PGR mean [95% CI]", "agreement w/ weak")


def rows_markdown(rows: Sequence[dict]) -> str:
  lines = ["| " + " | ".join(MARKDOWN_COLUMNS) + " |", "|" + "---|" * len(MARKDOWN_COLUMNS)]
  for r in rows:
    ci = f" [{r['pgr_ci95'][0]:.2f}, {r['pgr_ci95'][1]:.2f}]" if r["pgr_ci95"] else ""
    undef = f" ({r['pgr_undefined']} undef)" if r["pgr_undefined"] else ""
    cells = [r["task"], r["differs"] or "-", r["weak"], r["strong"], r["method"],
             ",".join(map(str, r["seeds"])), cell(r["weak_accuracy"], r["weak_accuracy_std"]),
             cell(r["ceiling_accuracy"], r["ceiling_accuracy_std"]),
             cell(r["student_accuracy"], r["student_accuracy_std"]),
             cell(r["student_auroc"], r["student_auroc_std"]),
             cell(r["pgr_median"], digits=2), cell(r["pgr_mean"], digits=2) + ci + undef,
             cell(r["agreement_with_weak"], r["agreement_with_weak_std"])]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


CSV_FIELDS = ("task", "differs", "weak", "strong", "method", "supervisor", "loss", "seeds",
              "weak_accuracy", "weak_accuracy_std", "ceiling_accuracy", "ceiling_accuracy_std",
              "student_accuracy", "student_accuracy_std", "student_auroc", "student_auroc_std",
              "pgr_median", "pgr_mean", "pgr_ci95", "pgr_undefined", "agreement_with_weak",
              "agreement_with_weak_std", "misfit_B", "misfit_test", "brier_gain_test",
              "misfit_bound_held", "capa", "error_consistency", "salience", "setting")




def report(runs: base.Runs, out: pathlib.Path) -> base.ReportSection:
  """report.csv, the accuracy-vs-ceiling and PGR figures, and the markdown table."""
  rows = summarize_runs(runs)
  pngs = figures.report_figures(rows, out) if rows else []
  points = diagnostic_points(runs)
  if any(p["misfit_test"] is not None or p["capa"] is not None for p in points):
    pngs.append(figures.pgr_vs_diagnostics(points, out / "pgr_vs_diagnostics.png"))
  with open(out / "report.csv", "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for r in rows:
      writer.writerow({**r, "seeds": " ".join(map(str, r["seeds"])),
                       "pgr_ci95": " ".join(f"{v:.4f}" for v in r["pgr_ci95"] or [])})
  curves = [pathlib.Path(r["results_file"]).parent / "curves.png" for _, r in runs
            if "results_file" in r]
  markdown = [
      "Mean ± sample std (ddof=1) over seeds; PGR = (student - weak) / (ceiling - weak) on "
      "test accuracy, its 95% interval a t interval over seeds (one seed: the paired "
      "bootstrap interval over test examples); undef when the ceiling is not significantly "
      "above the weak model.", "", rows_markdown(rows) if rows else "(no weak-to-strong runs)",
      "", "## Diagnostics", "",
      "Means over seeds (experiments/w2s/diagnostics.py): each student's misfit to its "
      "supervisor, the squared-error gain over that supervisor on test and how many seeds "
      "the misfit bound held in; the weak model's similarity to the ceiling; salience.", "",
      diagnostics_markdown(rows) if rows else "",
      "", "## Figures", "", *(f"![{p.stem}]({p.name})" for p in pngs), "",
      "## Training curves per run", "", *(f"- {p}" for p in curves if p.exists())]
  return base.ReportSection("\n".join(markdown), rows, [out / "report.csv", *pngs],
                            rows_markdown(rows) if rows else "")
