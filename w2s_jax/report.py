"""A report over every finished run in a workdir: each kind of experiment's tables and
figures (through the registry), one report.md, and seeds.json with every row.

  python -m w2s_jax.report runs            # writes runs/report/
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

from w2s_jax import experiments
from w2s_jax.core import artefacts, paths
from w2s_jax.errors import DataError, W2SError


def run_table(results: dict) -> str:
  """One run's table, as the kind of experiment that wrote it prints it."""
  return experiments.of_results(results).run_table(results)


def seeds_table(runs: list[dict]) -> str:
  """The mean ± sample std over runs (seeds) of one setting."""
  return experiments.of_results(runs[0]).seeds_table(runs)


def load_runs(workdir, skipped: list | None = None) -> list[tuple[dict, dict]]:
  """(config, results) of every finished run under <workdir>/results/. A run whose files do
  not read as a run's (truncated, foreign, of an unknown kind) is left out, with a line
  saying why added to `skipped`."""
  runs = []
  for path in paths.results_files(workdir):
    try:
      config = artefacts.read_json(path.parent / paths.CONFIG_FILE)
      results = artefacts.read_json(path)
      missing = [k for k in experiments.of_results(results).result_keys if k not in results]
      if missing:
        raise W2SError(f"it lacks {missing}")
    except W2SError as e:
      if skipped is not None:
        skipped.append(f"skipping {path.parent}: {e}")
      continue
    runs.append((config, results))
  return runs


def write_report(workdir, out=None) -> dict:
  """report.md, seeds.json and each kind's files for every run under <workdir>/results;
  returns {"sections": {kind: ReportSection}, "files", "skipped": lines on the runs left
  out}."""
  skipped = []
  runs = load_runs(workdir, skipped)
  if not runs:
    raise DataError(f"no finished runs under {workdir}/results"
                    + (f" that read ({skipped[0]})" if skipped else "; run an experiment first"))
  out = pathlib.Path(out or pathlib.Path(workdir) / "report")
  out.mkdir(parents=True, exist_ok=True)
  by_kind = {name: [] for name in experiments.EXPERIMENTS}
  for config, results in runs:
    by_kind[experiments.of_results(results).name].append((config, results))
  sections = {}
  for name, kind_runs in by_kind.items():
    section = experiments.get(name).report(kind_runs, out)
    if section is not None:
      sections[name] = section
  md = [f"# Report: {len(runs)} runs under {workdir}", "",
        *("\n\n".join(s.markdown for s in sections.values()).splitlines())]
  (out / "report.md").write_text("\n".join(md) + "\n")
  rows = [row for s in sections.values() for row in s.rows]
  (out / "seeds.json").write_text(json.dumps(rows, indent=2))
  files = [out / "report.md", out / "seeds.json", *(f for s in sections.values() for f in s.files)]
  return {"sections": sections, "files": files, "skipped": skipped}


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
  for line in written["skipped"]:
    print(f"warning: {line}", file=sys.stderr)
  for section in written["sections"].values():
    if section.printed:
      print(section.printed)
  print("\n".join(f"wrote {path}" for path in written["files"]))
  return 0


if __name__ == "__main__":
  sys.exit(main())
