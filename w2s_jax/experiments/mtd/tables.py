"""A measurement-tampering run's tables: one run, the mean ± std over seeds, and the report's
rows (real-vs-fake AUROC per method) over every run of a workdir."""

from __future__ import annotations

import csv
import pathlib
from typing import Mapping, Sequence

from w2s_jax import figures, metrics
from w2s_jax.core import hashing
from w2s_jax.experiments import base
from w2s_jax.experiments.tables import cell, setting_of


def run_table(result: Mapping) -> str:
  n = result["n"]
  lines = [f"MTD seed {result['seed']} ({result['names']['strong']}): real-vs-fake AUROC on "
           f"{n['test_real_positive']} real and {n['test_fake_positive']} fake positives",
           f"{'method':<16} {'AUROC':>7}"]
  lines += [f"{name:<16} {m['real_vs_fake_auroc']:>7.3f}"
            for name, m in result["methods"].items()]
  for variant, fit in result["measurement_fit"].items():
    sensors = ", ".join(f"{a:.3f}" for a in fit["measurement_accuracy"])
    lines.append(f"{variant} model's test accuracy: all positive "
                 f"{fit['all_positive_accuracy']:.3f}; each measurement {sensors}")
  return "\n".join(lines)


def seeds_table(results: Sequence[Mapping]) -> str:
  lines = [f"over seeds {', '.join(str(r['seed']) for r in results)}: real-vs-fake AUROC "
           "mean ± std", f"{'method':<16} {'AUROC':>15}"]
  for name in results[0]["methods"]:
    values = [r["methods"][name]["real_vs_fake_auroc"] for r in results]
    mean, std, _ = metrics.mean_std(values)
    lines.append(f"{name:<16} {mean:>7.3f} ± {std:.3f}")
  return "\n".join(lines)


def summarize_mtd_runs(runs: Sequence[tuple[dict, dict]]) -> list[dict]:
  """One row per (setting, detection method) of measurement-tampering runs: real-vs-fake
  AUROC mean and sample std (ddof=1) over seeds."""
  settings: dict[str, list] = {}
  for config, results in runs:
    setting = {**setting_of(config), "mtd": {k: v for k, v in config.get("mtd", {}).items()
                                             if k != "methods"}}
    settings.setdefault(hashing.stable_hash(setting), []).append(results)
  rows = []
  for sid, group in settings.items():
    group = sorted(group, key=lambda r: r["seed"])
    for method in dict.fromkeys(m for r in group for m in r["methods"]):
      seeded = [r for r in group if method in r["methods"]]
      values = [r["methods"][method]["real_vs_fake_auroc"] for r in seeded]
      mean, std, _ = metrics.mean_std(values)
      rows.append({"setting": sid, "task": seeded[0]["task"],
                   "strong": seeded[0]["names"]["strong"], "method": method,
                   "seeds": [r["seed"] for r in seeded], "auroc_values": values,
                   "auroc_mean": mean, "auroc_std": std})
  return sorted(rows, key=lambda r: (r["task"], r["strong"], r["setting"]))


def mtd_markdown(rows: Sequence[dict]) -> str:
  lines = ["| task | strong | method | seeds | real-vs-fake AUROC |", "|---|---|---|---|---|"]
  lines += [f"| {r['task']} | {r['strong']} | {r['method']} | "
            f"{','.join(map(str, r['seeds']))} | {cell(r['auroc_mean'], r['auroc_std'])} |"
            for r in rows]
  return "\n".join(lines)


MTD_CSV_FIELDS = ("task", "strong", "method", "seeds", "auroc_mean", "auroc_std", "setting")


def report(runs: base.Runs, out: pathlib.Path) -> base.ReportSection | None:
  """report_mtd.csv, the AUROC figure and the markdown table (None without MTD runs)."""
  rows = summarize_mtd_runs(runs)
  if not rows:
    return None
  png = figures.mtd_auroc(rows, out / "mtd_auroc.png")
  with open(out / "report_mtd.csv", "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=MTD_CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for r in rows:
      writer.writerow({**r, "seeds": " ".join(map(str, r["seeds"]))})
  markdown = ["## Measurement tampering detection", "",
              "AUROC of real against fake positives among the untrusted test examples whose "
              "measurements are all positive; mean ± sample std over seeds.", "",
              mtd_markdown(rows), "", f"![{png.stem}]({png.name})"]
  return base.ReportSection("\n".join(markdown), rows, [out / "report_mtd.csv", png],
                            mtd_markdown(rows))
