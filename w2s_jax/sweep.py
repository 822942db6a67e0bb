r"""A grid of experiments from one config: tasks × weak sizes × strong sizes × seeds, every
pair with the weak model no larger than the strong one (as openai/weak-to-strong sweeps),
each run with the config's students.

  python -m w2s_jax.sweep --config=configs/sweep.py            # runs (or continues) the grid
  python -m w2s_jax.sweep --config=configs/sweep.py --dry_run  # what is done and what is left
  python -m w2s_jax.report runs/sweep                          # (also written at the end)

Phases are shared across runs (each weak model trained once per task and seed, each ceiling
once), so rerunning an interrupted sweep continues where it stopped. Config keys:
  sweep.sizes    capability order of the sizes, e.g. "small,medium,large"
  sweep.weak     sizes that supervise (default: all); sweep.strong: sizes that learn
  sweep.seeds    e.g. "0,1,2";  sweep.tasks: names of entries of `tasks` (task sections)
  sizes.<name>   a model section (model, train, pooling, ..., optionally pretrain)
"""

from __future__ import annotations

import copy
import logging
import sys
import time
from typing import Mapping

from absl import flags

from w2s_jax import config as config_lib, main as cli, pipeline, report
from w2s_jax.errors import ConfigError

log = logging.getLogger(__name__)

_DRY_RUN = flags.DEFINE_bool("dry_run", False, "List the sweep's runs, done and left; run none.")

SWEEP_KEYS = ("sweep", "sizes", "tasks")


def _names(text) -> list[str]:
  return [n.strip() for n in str(text).split(",") if n.strip()]


def plan(cfg: Mapping) -> list[dict]:
  """The run configs of a sweep config, in order."""
  sweep = cfg["sweep"]
  order = _names(sweep["sizes"])
  unknown = sorted(set(order) - set(cfg["sizes"]))
  if unknown or not order:
    raise ConfigError(f"sweep.sizes names {unknown or 'nothing'}; the sizes are "
                      f"{', '.join(cfg['sizes'])}")
  weak, strong = (_names(sweep[k]) or order for k in ("weak", "strong"))
  for size in weak + strong:
    if size not in order:
      raise ConfigError(f"size {size!r} is not in sweep.sizes ({', '.join(order)})")
  tasks = _names(sweep["tasks"])
  for task in tasks:
    if task not in cfg["tasks"]:
      raise ConfigError(f"sweep.tasks names {task!r}; the tasks are {', '.join(cfg['tasks'])}")
  base = {k: v for k, v in cfg.items() if k not in SWEEP_KEYS}
  runs = []
  for task in tasks:
    for w in weak:
      for s in strong:
        if order.index(w) > order.index(s):
          continue
        for seed in _names(sweep["seeds"]):
          run = copy.deepcopy(base)
          run.update(task=cfg["tasks"][task], seed=int(seed), names={"weak": w, "strong": s},
                     weak=copy.deepcopy(cfg["sizes"][w]),
                     strong=copy.deepcopy(cfg["sizes"][s]))
          runs.append(run)
  return runs


def is_done(run: Mapping) -> bool:
  return (config_lib.results_folder(run) / "results.json").exists()


def describe(run: Mapping) -> str:
  return (f"{run['task']['name']} weak={run['names']['weak']} strong={run['names']['strong']} "
          f"seed={run['seed']}")


def run_sweep(cfg: Mapping, dry_run: bool = False) -> list[dict]:
  """Runs every run of the sweep not yet done (all are validated first); returns the
  results of those it ran."""
  runs = plan(cfg)
  for run in runs:
    config_lib.validate(run)
  done = [is_done(run) for run in runs]
  print(f"sweep: {len(runs)} runs, {sum(done)} done, {len(runs) - sum(done)} to run")
  if dry_run:
    for run, finished in zip(runs, done):
      print(f"  {'done' if finished else 'left'}  {describe(run)}")
    return []
  results = []
  for i, (run, finished) in enumerate(zip(runs, done), start=1):
    if finished:
      continue
    start = time.time()
    results.append(pipeline.run(run))
    print(f"[{i}/{len(runs)}] {describe(run)}: done in {time.time() - start:.0f}s", flush=True)
  written = report.write_report(cfg["workdir"])
  print(f"sweep: all {len(runs)} runs done; report: {written['files'][0]}")
  return results


def main(argv):
  del argv
  run_sweep(cli.setup(), dry_run=_DRY_RUN.value)


if __name__ == "__main__":
  cli.run(main, doc=__doc__)
