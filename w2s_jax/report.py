"""Plain-text tables of results: one run, and the mean ± std over seeds."""

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
  lines = [f"task {result['task']} | seed {result['seed']} | config {result['config_hash']} | "
           f"{result['wall_s']:.0f}s | n_test {result['n']['test']}",
           f"{'model':<18}{'test acc':>9}  {'95% CI':<16}{'AUROC':>6}{'agree/weak':>11}"
           f"{'gain':>8}  {'PGR [95% CI]'}"]
  for name in ("weak", "ceiling"):
    m = result[name]
    lines.append(f"{name:<18}{m['accuracy']:>9.3f}  [{m['accuracy_ci95'][0]:.3f}, "
                 f"{m['accuracy_ci95'][1]:.3f}] {m['auroc']:>6.3f}")
  for loss, m in result["students"].items():
    lines.append(f"{'student:' + loss:<18}{m['accuracy']:>9.3f}  [{m['accuracy_ci95'][0]:.3f}, "
                 f"{m['accuracy_ci95'][1]:.3f}] {m['auroc']:>6.3f}"
                 f"{m['agreement_with_weak']:>11.3f}{m['gain_over_weak']:>+8.3f}  {_pgr_text(m)}")
  lines.append(FOOTNOTE)
  return "\n".join(lines)


def _mean_std(values: Sequence[float | None]) -> str:
  defined = [v for v in values if v is not None]
  if not defined:
    return "undef"
  text = f"{np.mean(defined):.3f} ± {np.std(defined):.3f}"
  if len(defined) < len(values):
    text += f" ({len(values) - len(defined)} undef)"
  return text


def seeds_table(results: Sequence[dict]) -> str:
  seeds = ",".join(str(r["seed"]) for r in results)
  lines = [f"mean ± std over seeds {seeds}",
           f"{'model':<18}  {'test acc':<16}  {'gain over weak':<16}  PGR"]
  for name in ("weak", "ceiling"):
    lines.append(f"{name:<18}  {_mean_std([r[name]['accuracy'] for r in results]):<16}")
  for loss in results[0]["students"]:
    runs = [r["students"][loss] for r in results]
    lines.append(f"{'student:' + loss:<18}  {_mean_std([m['accuracy'] for m in runs]):<16}  "
                 f"{_mean_std([m['gain_over_weak'] for m in runs]):<16}  "
                 f"{_mean_std([m['pgr'] for m in runs])}")
  return "\n".join(lines)
