"""Tables of results: one run (plain text), the mean ± sample std over seeds (markdown), and
a report over every run in a workdir (markdown, CSV, seeds.json, figures):

  python -m w2s_jax.report runs            # writes runs/report/
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import pathlib
import sys
from typing import Mapping, Sequence

import numpy as np

from w2s_jax import config as config_lib
from w2s_jax.errors import DataError, W2SError

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
  return "\n".join(lines)


def mean_std(values: Sequence[float | None]) -> tuple[float, float, int] | None:
  """(mean, sample std (ddof=1; 0 for one value), number undefined) of the defined values."""
  defined = [v for v in values if v is not None]
  if not defined:
    return None
  std = float(np.std(defined, ddof=1)) if len(defined) > 1 else 0.0
  return float(np.mean(defined)), std, len(values) - len(defined)


def _mean_std(values: Sequence[float | None]) -> str:
  summary = mean_std(values)
  if summary is None:
    return "undef"
  mean, std, undefined = summary
  return f"{mean:.3f} ± {std:.3f}" + (f" ({undefined} undef)" if undefined else "")


def seeds_table(results: Sequence[dict]) -> str:
  """Markdown: per model, test accuracy, gain over weak, PGR and student–weak agreement as
  mean ± sample std over the runs (seeds)."""
  seeds = ",".join(str(r["seed"]) for r in results)
  lines = [f"mean ± std (ddof=1) over seeds {seeds}; task {results[0]['task']}", "",
           "| model | supervisor | loss | test acc | gain over weak | PGR | agreement w/ weak |",
           "|---|---|---|---|---|---|---|"]
  for name in ("weak", "ceiling"):
    accuracy = _mean_std([r[name]["accuracy"] for r in results])
    lines.append(f"| {name} | gt | xent | {accuracy} | | | |")
  for method in results[0]["students"]:
    runs = [r["students"][method] for r in results]
    lines.append(f"| student:{method} | {runs[0].get('supervisor', 'weak')} | "
                 f"{runs[0].get('loss', method)} | {_mean_std([m['accuracy'] for m in runs])} | "
                 f"{_mean_std([m['gain_over_weak'] for m in runs])} | "
                 f"{_mean_std([m['pgr'] for m in runs])} | "
                 f"{_mean_std([m['agreement_with_weak'] for m in runs])} |")
  return "\n".join(lines)


# ---------------------------------------------------------------- a folder of runs

def load_runs(workdir) -> list[tuple[dict, dict]]:
  """(config, results) of every finished run under <workdir>/results/."""
  runs = []
  for path in config_lib.results_files(workdir):
    config = json.loads((path.parent / "config.json").read_text())
    runs.append((config, json.loads(path.read_text())))
  return runs


def setting_of(config: Mapping) -> dict:
  """What a run computed apart from its seed and the students it ran: runs of one setting
  differ only in seed."""
  skip = {*config_lib.NOT_IN_RESULTS_KEY, "seed", "student", "names"}
  return {k: v for k, v in config.items() if k not in skip}


def _flatten(node, prefix=""):
  if isinstance(node, Mapping):
    out = {}
    for key, value in node.items():
      out.update(_flatten(value, f"{prefix}{key}."))
    return out
  return {prefix[:-1]: node}


def _interval95(values: Sequence[float]) -> tuple[float, float] | None:
  """A t interval for the mean of several seeds' values (None for fewer than two)."""
  if len(values) < 2:
    return None
  import scipy.stats  # 0.7 s to import: only when a report is written
  half = scipy.stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(
      len(values))
  return float(np.mean(values) - half), float(np.mean(values) + half)


# Settings that the task, weak and strong columns already name.
SHOWN_BY_NAME = ("task.name", "weak.model.", "strong.model.", "weak.pretrain.",
                 "strong.pretrain.")


def summarize_runs(runs: Sequence[tuple[dict, dict]]) -> list[dict]:
  """One row per (setting, student method): means and sample stds (ddof=1) over its seeds,
  median and mean PGR with a 95% interval (t over seeds; one seed: its bootstrap interval).
  A row's `setting` names what differs between the folder's settings."""
  settings: dict[str, list] = {}
  for config, results in runs:
    settings.setdefault(config_lib.stable_hash(setting_of(config)), []).append(
        (config, results))
  flat = {sid: _flatten(setting_of(group[0][0])) for sid, group in settings.items()}
  varying = sorted(k for k in set().union(*flat.values())
                   if len({repr(f.get(k)) for f in flat.values()}) > 1)
  rows = []
  for sid, group in settings.items():
    config = group[0][0]
    described = ", ".join(f"{k}={flat[sid].get(k)}" for k in varying
                          if not k.startswith(SHOWN_BY_NAME))
    methods = list(dict.fromkeys(m for c, _ in group for m in config_lib.student_methods(c)))
    for method in methods:
      seeded = sorted(((r["seed"], r) for _, r in group if method in r["students"]),
                      key=lambda item: item[0])
      results = [r for _, r in seeded]
      students = [r["students"][method] for r in results]
      defined = [s for s in students if s["pgr"] is not None]
      pgrs = [s["pgr"] for s in defined]
      # One seed with a PGR (the others undefined): that seed's bootstrap interval.
      interval = (_interval95(pgrs) if len(pgrs) > 1 else
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
        mean, std, _ = mean_std(values)
        row[name], row[f"{name}_std"] = mean, std
      rows.append(row)
  return sorted(rows, key=lambda r: (r["task"], r["differs"], r["weak"], r["strong"]))


def is_mtd(results: Mapping) -> bool:
  return results.get("experiment") == "mtd"


def summarize_mtd_runs(runs: Sequence[tuple[dict, dict]]) -> list[dict]:
  """One row per (setting, detection method) of measurement-tampering runs: real-vs-fake
  AUROC mean and sample std (ddof=1) over seeds."""
  settings: dict[str, list] = {}
  for config, results in runs:
    setting = {**setting_of(config), "mtd": {k: v for k, v in config.get("mtd", {}).items()
                                             if k != "methods"}}
    settings.setdefault(config_lib.stable_hash(setting), []).append(results)
  rows = []
  for sid, group in settings.items():
    group = sorted(group, key=lambda r: r["seed"])
    for method in dict.fromkeys(m for r in group for m in r["methods"]):
      seeded = [r for r in group if method in r["methods"]]
      values = [r["methods"][method]["real_vs_fake_auroc"] for r in seeded]
      mean, std, _ = mean_std(values)
      rows.append({"setting": sid, "task": seeded[0]["task"],
                   "strong": seeded[0]["names"]["strong"], "method": method,
                   "seeds": [r["seed"] for r in seeded], "auroc_values": values,
                   "auroc_mean": mean, "auroc_std": std})
  return sorted(rows, key=lambda r: (r["task"], r["strong"], r["setting"]))


def mtd_markdown(rows: Sequence[dict]) -> str:
  lines = ["| task | strong | method | seeds | real-vs-fake AUROC |", "|---|---|---|---|---|"]
  lines += [f"| {r['task']} | {r['strong']} | {r['method']} | "
            f"{','.join(map(str, r['seeds']))} | {_cell(r['auroc_mean'], r['auroc_std'])} |"
            for r in rows]
  return "\n".join(lines)


def _cell(mean, std=None, digits=3) -> str:
  if mean is None:
    return "undef"
  return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")


MARKDOWN_COLUMNS = ("task", "setting", "weak", "strong", "method", "seeds", "weak acc",
                    "ceiling acc", "student acc", "student AUROC", "PGR median",
                    "PGR mean [95% CI]", "agreement w/ weak")


def rows_markdown(rows: Sequence[dict]) -> str:
  lines = ["| " + " | ".join(MARKDOWN_COLUMNS) + " |", "|" + "---|" * len(MARKDOWN_COLUMNS)]
  for r in rows:
    ci = f" [{r['pgr_ci95'][0]:.2f}, {r['pgr_ci95'][1]:.2f}]" if r["pgr_ci95"] else ""
    undef = f" ({r['pgr_undefined']} undef)" if r["pgr_undefined"] else ""
    cells = [r["task"], r["differs"] or "-", r["weak"], r["strong"], r["method"],
             ",".join(map(str, r["seeds"])), _cell(r["weak_accuracy"], r["weak_accuracy_std"]),
             _cell(r["ceiling_accuracy"], r["ceiling_accuracy_std"]),
             _cell(r["student_accuracy"], r["student_accuracy_std"]),
             _cell(r["student_auroc"], r["student_auroc_std"]),
             _cell(r["pgr_median"], digits=2), _cell(r["pgr_mean"], digits=2) + ci + undef,
             _cell(r["agreement_with_weak"], r["agreement_with_weak_std"])]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


CSV_FIELDS = ("task", "differs", "weak", "strong", "method", "supervisor", "loss", "seeds",
              "weak_accuracy", "weak_accuracy_std", "ceiling_accuracy", "ceiling_accuracy_std",
              "student_accuracy", "student_accuracy_std", "student_auroc", "student_auroc_std",
              "pgr_median", "pgr_mean", "pgr_ci95", "pgr_undefined", "agreement_with_weak",
              "agreement_with_weak_std", "setting")


def write_report(workdir, out=None) -> dict:
  """report.md, report.csv, seeds.json (the rows, sample stds) and PNG figures for every run
  under <workdir>/results; returns {"rows", "files"}."""
  from w2s_jax import figures  # matplotlib only when figures are drawn
  runs = load_runs(workdir)
  if not runs:
    raise DataError(f"no finished runs under {workdir}/results; run an experiment first")
  out = pathlib.Path(out or pathlib.Path(workdir) / "report")
  out.mkdir(parents=True, exist_ok=True)
  mtd_runs = [run for run in runs if is_mtd(run[1])]
  runs = [run for run in runs if not is_mtd(run[1])]
  rows = summarize_runs(runs)
  mtd_rows = summarize_mtd_runs(mtd_runs)
  pngs = figures.report_figures(rows, out) if rows else []
  if mtd_rows:
    pngs.append(figures.mtd_auroc(mtd_rows, out / "mtd_auroc.png"))
  curves = [pathlib.Path(r["results_file"]).parent / "curves.png" for _, r in runs
            if "results_file" in r]
  md = [f"# Report: {len(runs)} runs under {workdir}", "",
        "Mean ± sample std (ddof=1) over seeds; PGR = (student - weak) / (ceiling - weak) on "
        "test accuracy, its 95% interval a t interval over seeds (one seed: the paired "
        "bootstrap interval over test examples); undef when the ceiling is not significantly "
        "above the weak model.", "", rows_markdown(rows) if rows else "(no weak-to-strong runs)",
        *(["", "## Measurement tampering detection", "",
           "AUROC of real against fake positives among the untrusted test examples whose "
           "measurements are all positive; mean ± sample std over seeds.", "",
           mtd_markdown(mtd_rows)] if mtd_rows else []), "", "## Figures", "",
        *(f"![{p.stem}]({p.name})" for p in pngs), "", "## Training curves per run", "",
        *(f"- {p}" for p in curves if p.exists())]
  (out / "report.md").write_text("\n".join(md) + "\n")
  with open(out / "report.csv", "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for r in rows:
      writer.writerow({**r, "seeds": " ".join(map(str, r["seeds"])),
                       "pgr_ci95": " ".join(f"{v:.4f}" for v in r["pgr_ci95"] or [])})
  files = [out / "report.md", out / "report.csv", out / "seeds.json"]
  (out / "seeds.json").write_text(json.dumps(rows + mtd_rows, indent=2))
  if mtd_rows:
    with open(out / "report_mtd.csv", "w", newline="") as f:
      writer = csv.DictWriter(f, fieldnames=MTD_CSV_FIELDS, extrasaction="ignore")
      writer.writeheader()
      for r in mtd_rows:
        writer.writerow({**r, "seeds": " ".join(map(str, r["seeds"]))})
    files.append(out / "report_mtd.csv")
  return {"rows": rows, "mtd_rows": mtd_rows, "files": [*files, *pngs]}


MTD_CSV_FIELDS = ("task", "strong", "method", "seeds", "auroc_mean", "auroc_std", "setting")


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m w2s_jax.report",
      description="Tables and figures over every finished run in a workdir.")
  parser.add_argument("workdir", nargs="?", default="runs")
  parser.add_argument("--out", default=None, help="default: <workdir>/report")
  args = parser.parse_args(argv)
  try:
    written = write_report(args.workdir, args.out)
  except W2SError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  if written["rows"]:
    print(rows_markdown(written["rows"]))
  if written["mtd_rows"]:
    print(mtd_markdown(written["mtd_rows"]))
  print("\n".join(f"wrote {path}" for path in written["files"]))
  return 0


if __name__ == "__main__":
  sys.exit(main())
