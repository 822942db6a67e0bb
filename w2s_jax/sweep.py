r"""A grid of experiments from one config: tasks × model settings × seeds, each run with the
config's students or methods. The kind of experiment (its `experiment` key) says what the
model settings are: weak-to-strong pairs every weak size with every strong size no smaller
(as openai/weak-to-strong sweeps); measurement tampering detection takes each strong size.

  python -m w2s_jax.sweep --config=configs/sweep.py            # runs (or continues) the grid
  python -m w2s_jax.sweep --config=configs/sweep.py --dry_run  # what is done and what is left
  python -m w2s_jax.sweep --config=configs/mtd_sweep.py        # an MTD grid
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
import time
from typing import Mapping

from absl import flags

from w2s_jax import cli, experiments, report
from w2s_jax.core import compile_cache, parsing, paths
from w2s_jax.errors import ConfigError
from w2s_jax.experiments import base

_DRY_RUN = flags.DEFINE_bool("dry_run", False, "List the sweep's runs, done and left; run none.")

SWEEP_KEYS = ("sweep", "sizes", "tasks")


def plan(cfg: Mapping) -> list[dict]:
  """The run configs of a sweep config, in order: per task, per model setting, per seed."""
  variants = experiments.of_config(cfg).sweep_variants(cfg)
  tasks = parsing.names(cfg["sweep"]["tasks"])
  for task in tasks:
    if task not in cfg["tasks"]:
      raise ConfigError(f"sweep.tasks names {task!r}; the tasks are {', '.join(cfg['tasks'])}")
  try:
    seeds = [int(seed) for seed in parsing.names(cfg["sweep"]["seeds"])]
  except ValueError:
    raise ConfigError(f"sweep.seeds={cfg['sweep']['seeds']!r} must be integers, e.g. "
                      "0,1,2") from None
  base = {k: v for k, v in cfg.items() if k not in SWEEP_KEYS}
  runs = []
  for task in tasks:
    for names, sections in variants:
      for seed in seeds:
        run = copy.deepcopy(base)
        run.update(task=cfg["tasks"][task], seed=seed, names=dict(names),
                   **copy.deepcopy(sections))
        runs.append(run)
  return runs


def is_done(run: Mapping) -> bool:
  return (paths.results_folder(base.with_inputs(run)) / paths.RESULTS_FILE).exists()


def describe(run: Mapping) -> str:
  sizes = " ".join(f"{role}={size}" for role, size in run["names"].items())
  return f"{run['task']['name']} {sizes} seed={run['seed']}"


def run_sweep(cfg: Mapping, dry_run: bool = False, stop=None) -> list[dict]:
  """Runs every run of the sweep not yet done (all are validated first); returns the
  results of those it ran."""
  experiment = experiments.of_config(cfg)
  runs = plan(cfg)
  for run in runs:
    experiment.validate(run)
  done = [is_done(run) for run in runs]
  print(f"sweep: {len(runs)} runs, {sum(done)} done, {len(runs) - sum(done)} to run")
  if dry_run:
    for run, finished in zip(runs, done):
      print(f"  {'done' if finished else 'left'}  {describe(run)}")
    return []
  compile_cache.use_workdir_cache(paths.workdir(cfg))
  results = []
  for i, (run, finished) in enumerate(zip(runs, done), start=1):
    if finished:
      continue
    start = time.time()
    results.append(experiment.run(run, stop))
    print(f"[{i}/{len(runs)}] {describe(run)}: done in {time.time() - start:.0f}s", flush=True)
  written = report.write_report(cfg["workdir"])
  print(f"sweep: all {len(runs)} runs done; report: {written['files'][0]}")
  return results


def main(argv, stop):
  del argv
  run_sweep(cli.setup(), dry_run=_DRY_RUN.value, stop=stop)


if __name__ == "__main__":
  cli.run(main, __doc__, extra_flags=("dry_run",))
