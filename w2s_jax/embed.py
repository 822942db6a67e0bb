r"""Writes an embedding task's folder (data/embeddings.py) from the weak and strong models of
a text-task config: each model's pooled features of the documents, computed once (cached
phases of the workdir) and saved as <model>.npz beside labels.csv.

  python -m w2s_jax.embed --config=configs/real.py:sst2 --config.task.data_dir=DATA \
      --out=FOLDER
  python -m w2s_jax.main --config=configs/embeddings.py --config.task.data_dir=FOLDER

The training rows are the config's A, B and validation documents (task.n_docs and n_val of
its seed), the test rows its test split; a document that max_ctx drops for either model is
left out for both.
"""

from __future__ import annotations

import pathlib

import numpy as np
from absl import flags

from w2s_jax import cli, data, experiments, phases
from w2s_jax.core import compile_cache, paths
from w2s_jax.data import embeddings
from w2s_jax.errors import ConfigError
from w2s_jax.experiments import base

_OUT = flags.DEFINE_string("out", None, "The folder to write (labels.csv and a .npz per "
                           "model).")
ROLES = ("weak", "strong")


def write_embedding_task(cfg, out: pathlib.Path, roles=ROLES) -> dict[str, str]:
  """Writes the folder; returns {role: the name of its model's file}."""
  if not data.is_text(cfg["task"]) or data.is_pairwise(cfg["task"]):
    raise ConfigError(f"task.name={cfg['task']['name']!r}: embeddings are written from a "
                      "text task's documents (one text each), e.g. "
                      "--config=configs/real.py:sst2")
  experiments.of_config(cfg).validate(cfg)
  cfg = base.with_inputs(cfg)
  ctx = base.start(cfg, lambda: data.load_splits(cfg["task"], cfg["seed"]), roles, None)
  names = {role: base.model_name(cfg, role) for role in roles}
  if len(set(names.values())) < len(roles):
    raise ConfigError(f"the models {names} would write the same file; give them distinct "
                      "names with --config.names.<role>=...")
  labels, split_names, features = [], [], {names[r]: [] for r in roles}
  for split in (s for s in ("A", "B", "val", "test") if s in ctx.splits):
    per_role = {role: phases.frozen_features(ctx, role, split) for role in roles}
    kept = np.logical_and.reduce([keep for _, keep in per_role.values()])
    for role, (arrays, _) in per_role.items():
      features[names[role]].append(arrays["features"][kept])
    labels.append(ctx.splits[split]["label"][kept])
    split_names += [phases.keys.source_split(split)] * int(kept.sum())
  labels = np.concatenate(labels)
  embeddings.write_folder(out, np.arange(len(labels)), labels, np.asarray(split_names),
                          {name: np.concatenate(rows) for name, rows in features.items()})
  return names


def main(argv, stop):
  del argv, stop
  cfg = cli.setup()
  if not _OUT.value:
    raise ConfigError("--out=FOLDER is required: the embedding task's folder to write")
  compile_cache.use_workdir_cache(paths.workdir(cfg))
  out = pathlib.Path(_OUT.value)
  names = write_embedding_task(cfg, out)
  print(f"wrote {out}: {embeddings.LABELS_FILE}, "
        f"{', '.join(f'{n}.npz ({r})' for r, n in names.items())}")
  print(f"run: python -m w2s_jax.main --config=configs/embeddings.py:"
        f"{names['weak']},{names['strong']} --config.task.data_dir={out}")


def run():
  cli.run(main, __doc__, extra_flags=("out",))


if __name__ == "__main__":
  run()
