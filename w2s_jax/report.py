"""Plain-text tables of results: one run, and the mean ± std over seeds."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def _fmt(x, spec=".3f") -> str:
  if x is None or (isinstance(x, float) and math.isnan(x)):
    return "undef"
  return format(x, spec)


def run_table(result: dict) -> str:
  rows = [("weak", result["weak"], None, None), ("ceiling", result["ceiling"], None, None)]
  rows += [(f"student:{loss}", m, m["agreement_with_weak"], m["pgr"])
           for loss, m in result["students"].items()]
  lines = [f"task {result['task']} | seed {result['seed']} | config {result['config_hash']} | "
           f"{result['wall_s']:.0f}s | n_test {result['n']['test']}",
           f"{'model':<22}{'test acc':>9}  {'95% CI':<15}{'AUROC':>7}{'agree w/ weak':>15}"
           f"{'PGR':>8}"]
  for name, m, agree, pgr in rows:
    low, high = m["accuracy_ci95"]
    lines.append(f"{name:<22}{m['accuracy']:>9.3f}  [{low:.3f}, {high:.3f}]{m['auroc']:>7.3f}"
                 f"{_fmt(agree) if agree is not None else '':>15}"
                 f"{_fmt(pgr, '.2f') if name.startswith('student') else '':>8}")
  lines.append("PGR = (student - weak) / (ceiling - weak) on test accuracy; undef when the "
               "ceiling does not beat the weak model.")
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
           f"{'model':<22}{'test acc':>22}{'PGR':>30}"]
  lines.append(f"{'weak':<22}{_mean_std([r['weak']['accuracy'] for r in results]):>22}")
  lines.append(f"{'ceiling':<22}{_mean_std([r['ceiling']['accuracy'] for r in results]):>22}")
  for loss in results[0]["students"]:
    accs = [r["students"][loss]["accuracy"] for r in results]
    pgrs = [r["students"][loss]["pgr"] for r in results]
    lines.append(f"{'student:' + loss:<22}{_mean_std(accs):>22}{_mean_std(pgrs):>30}")
  return "\n".join(lines)
