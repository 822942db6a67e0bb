r"""Runs an experiment (weak-to-strong, or measurement tampering detection) from a config file.

  python -m w2s_jax.main --config=configs/default.py
  python -m w2s_jax.main --config=configs/default.py --config.student.losses=xent,logconf
  python -m w2s_jax.main --config=configs/default.py --seeds=0,1,2   # mean ± std over seeds
  python -m w2s_jax.main --config=configs/text.py:sst2 --config.task.data_dir=DATA
  python -m w2s_jax.main --config=configs/default.py --help          # every config key

A config file's docstring starts with the commands that run it; `path.py:arg` passes an
argument to its get_config. Any key can be overridden as --config.<key>=<value>. On a TPU pod
or a multi-node GPU cluster, run one process per host with --distributed (see launch/).
"""

from __future__ import annotations

import pathlib

from absl import flags

from w2s_jax import cli, experiments
from w2s_jax.core import compile_cache, paths
from w2s_jax.errors import ConfigError, W2SError

_SEEDS = flags.DEFINE_list("seeds", None, "Run these seeds (overrides config.seed) and print "
                           "the mean and spread over them.")


def main(argv, stop):
  del argv
  cfg = cli.setup()
  try:
    seeds = [int(s) for s in _SEEDS.value] if _SEEDS.value else [cfg["seed"]]
  except ValueError:
    raise ConfigError(f"--seeds={','.join(_SEEDS.value)} must be integers, e.g. --seeds=0,1,2"
                      ) from None
  experiment = experiments.of_config(cfg)
  compile_cache.use_workdir_cache(paths.workdir(cfg))
  runs = []
  for seed in seeds:
    try:
      result = experiment.run({**cfg, "seed": seed}, stop)
    except W2SError as e:
      if len(seeds) == 1:
        raise
      raise type(e)(f"seed {seed}: {e}") from None
    print(experiment.run_table(result))
    runs.append(result)
  if len(runs) > 1:
    print(experiment.seeds_table(runs))
  if "results_file" in runs[-1]:
    print(f"results: {', '.join(r['results_file'] for r in runs)}")
    figures = [pathlib.Path(r["results_file"]).parent / "curves.png" for r in runs]
    if all(f.exists() for f in figures):
      print(f"figures: {', '.join(map(str, figures))}")


def run():
  cli.run(main, __doc__, extra_flags=("seeds",))


if __name__ == "__main__":
  run()
