"""Tables of results: one run (plain text), and the mean ± sample std over seeds (markdown)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

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
