"""Embedding tasks: each example is a feature vector per model, computed elsewhere (OpenAI's
vision setting, where linear heads train on a weak and a strong model's embeddings of the
same images).

A task folder holds
  labels.csv      columns id,label,split: an integer id, label 0 or 1, split "train" or "test";
  <model>.npz     per model: "ids" [n] (integers) and "features" [n, d] (finite floats),
                  covering every id of labels.csv, in any order.
The weak and strong roles name their file (model.features = "<model>"); see
docs/embeddings.md for bringing CLIP or DINOv2 embeddings, and w2s_jax/embed.py for
writing a folder from two backbones and a text task.
"""

from __future__ import annotations

import csv
import functools
import pathlib
import zipfile
from typing import Mapping

import numpy as np

from w2s_jax.core import artefacts
from w2s_jax.errors import ConfigError, DataError

TASK = "embeddings"
LABELS_FILE = "labels.csv"
COLUMNS = ("id", "label", "split")
SPLITS = ("train", "test")


def folder_of(task_cfg: Mapping) -> pathlib.Path:
  data_dir = task_cfg.get("data_dir", "")
  if not data_dir:
    raise ConfigError("task.name='embeddings' reads a folder: set task.data_dir to one "
                      f"holding {LABELS_FILE} and a <model>.npz per model")
  folder = pathlib.Path(data_dir).expanduser()
  if not (folder / LABELS_FILE).is_file():
    raise DataError(f"embedding task: no {LABELS_FILE} in {folder}; write rows of "
                    f"{','.join(COLUMNS)} there (docs/embeddings.md)")
  return folder


def read_labels(folder: pathlib.Path) -> dict[str, np.ndarray]:
  """{"id", "label", "split"} of labels.csv, every row checked; parsed once per version of
  the file (a run reads it for its splits and for each model's lookup)."""
  path = folder / LABELS_FILE
  return _read_labels(path, _version(path))


def _version(path: pathlib.Path) -> tuple[int, int]:
  """What tells an edited file from the one read before: its mtime and size."""
  stat = path.stat()
  return stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=8)
def _read_labels(path: pathlib.Path, version) -> dict[str, np.ndarray]:
  del version
  try:
    with open(path, newline="", encoding="utf-8-sig") as f:
      ids, labels, splits = _parse_labels(path, csv.reader(f))
  except UnicodeDecodeError as e:
    raise DataError(f"{path} is not UTF-8 text (byte {e.start}); write it as a UTF-8 CSV "
                    f"with columns {','.join(COLUMNS)}") from None
  except csv.Error as e:
    raise DataError(f"{path} does not read as CSV ({e})") from None
  ids = np.asarray(ids, np.int64)
  unique, counts = np.unique(ids, return_counts=True)
  if (counts > 1).any():
    raise DataError(f"{path}: id {unique[counts > 1][0]} appears "
                    f"{counts[counts > 1][0]} times; ids must be unique")
  return {"id": ids, "label": np.asarray(labels, np.int64), "split": np.asarray(splits)}


def _parse_labels(path, reader):
  ids, labels, splits = [], [], []
  header = next(reader, None)
  if header is None or [h.strip() for h in header] != list(COLUMNS):
    raise DataError(f"{path}: the header must be {','.join(COLUMNS)}, not "
                    f"{','.join(header or ['(empty file)'])[:80]!r}")
  for line, row in enumerate(reader, start=2):
    if not row:
      continue
    if len(row) != len(COLUMNS):
      raise DataError(f"{path}:{line}: {len(row)} fields, expected {len(COLUMNS)} "
                      f"({','.join(COLUMNS)})")
    id_text, label_text, split = (cell.strip() for cell in row)
    try:
      ids.append(int(id_text))
    except ValueError:
      raise DataError(f"{path}:{line}: id {id_text[:40]!r} is not an integer") from None
    if not -2**63 <= ids[-1] < 2**63:
      raise DataError(f"{path}:{line}: id {id_text[:40]} does not fit in 64 bits")
    if label_text not in ("0", "1"):
      raise DataError(f"{path}:{line}: label {label_text[:40]!r} must be 0 or 1")
    if split not in SPLITS:
      raise DataError(f"{path}:{line}: split {split[:40]!r} must be one of "
                      f"{', '.join(SPLITS)}")
    labels.append(int(label_text))
    splits.append(split)
  return ids, labels, splits


def _pick(rows: np.ndarray, labels: np.ndarray, cap: int, balance: bool) -> np.ndarray:
  """The first `cap` of `rows` (already in a random order); with `balance`, half of each
  label where both have enough."""
  if not balance:
    return rows[:cap]
  per_label = [rows[labels[rows] == y][: cap // 2 + (cap % 2 if y == 1 else 0)] for y in (0, 1)]
  chosen = np.concatenate(per_label)
  return rows[np.isin(rows, chosen)]  # keep the random order


def load_splits(task_cfg: Mapping, seed: int):
  """(train pool, val or None, test) as {"id", "label"}: test drawn with task.test_seed
  (the same for every seed), the training documents and validation with the seed."""
  table = read_labels(folder_of(task_cfg))
  balance = task_cfg.get("balance", True)
  by_split = {s: np.flatnonzero(table["split"] == s) for s in SPLITS}
  test_rows = np.random.default_rng(task_cfg.get("test_seed", 0)).permutation(by_split["test"])
  train_rows = np.random.default_rng(seed).permutation(by_split["train"])
  test = _pick(test_rows, table["label"], task_cfg["n_test"], balance)
  train = _pick(train_rows, table["label"], task_cfg["n_docs"], balance)
  val = None
  if task_cfg.get("n_val", 0):
    rest = train_rows[~np.isin(train_rows, train)]
    val = _pick(rest, table["label"], task_cfg["n_val"], balance)

  def records(rows):
    return {"id": table["id"][rows], "label": table["label"][rows]}
  return records(train), (records(val) if val is not None else None), records(test)


def model_files(folder: pathlib.Path) -> list[str]:
  return sorted(p.stem for p in folder.glob("*.npz"))


@functools.lru_cache(maxsize=8)
def _read_model(path: pathlib.Path, version):
  """(ids, features) of a model's file, checked; cached per file version (_version)."""
  del version
  try:
    saved = np.load(path, allow_pickle=False)
    if not isinstance(saved, np.lib.npyio.NpzFile):
      raise ValueError("it holds one array, not named arrays")
    with saved:
      missing = [k for k in ("ids", "features") if k not in saved.files]
      if missing:
        raise DataError(f"{path}: lacks {missing}; it needs 'ids' [n] and 'features' [n, d] "
                        f"(it has {saved.files})")
      ids, features = saved["ids"], saved["features"]
  except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
    reason = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
    raise DataError(f"{path} does not read as an .npz file ({reason}); write it with "
                    "numpy.savez(path, ids=..., features=...)") from None
  if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
    raise DataError(f"{path}: 'ids' must be a 1-D integer array, not {ids.dtype} of shape "
                    f"{ids.shape}")
  if features.ndim != 2 or not np.issubdtype(features.dtype, np.floating):
    raise DataError(f"{path}: 'features' must be a 2-D float array [n, d], not "
                    f"{features.dtype} of shape {features.shape}")
  if len(features) != len(ids):
    raise DataError(f"{path}: {len(ids)} ids but {len(features)} rows of features; "
                    "they must match")
  bad = ~np.isfinite(features).all(1)
  if bad.any():
    raise DataError(f"{path}: {int(bad.sum())} rows of features are not finite (NaN or "
                    f"inf), the first with id {ids[bad][0]}")
  unique, counts = np.unique(ids, return_counts=True)
  if (counts > 1).any():
    raise DataError(f"{path}: id {unique[counts > 1][0]} appears {counts[counts > 1][0]} "
                    "times; ids must be unique")
  return ids.astype(np.int64), features.astype(np.float32)


def features_of(task_cfg: Mapping, model: str, ids: np.ndarray) -> np.ndarray:
  """The model's features [len(ids), d] for these ids, in their order."""
  folder = folder_of(task_cfg)
  path = folder / f"{model}.npz"
  if not path.is_file():
    raise DataError(f"embedding task: no {path.name} in {folder} for model.features="
                    f"{model!r}; the folder has {', '.join(model_files(folder)) or 'no .npz'}")
  file_ids, features = _read_model(path, _version(path))
  order = np.argsort(file_ids)

  def rows_of(wanted):
    position = np.minimum(np.searchsorted(file_ids, wanted, sorter=order), len(file_ids) - 1)
    found = (file_ids[order[position]] == wanted if len(file_ids)
             else np.zeros(len(wanted), bool))
    return order[position], found
  # every id of labels.csv, not only this split's: a file that misses some is caught at once
  every_id = read_labels(folder)["id"]
  _, found = rows_of(every_id)
  if not found.all():
    missing = every_id[~found]
    raise DataError(f"{path}: {len(missing)} ids of {LABELS_FILE} have no features, the "
                    f"first {missing[0]}; every id of {LABELS_FILE} needs a row")
  rows, found = rows_of(np.asarray(ids, np.int64))
  if not found.all():
    raise DataError(f"{path}: id {np.asarray(ids)[~found][0]} has no features")
  return features[rows]


def write_folder(folder: pathlib.Path, ids: np.ndarray, labels: np.ndarray,
                 splits: np.ndarray, features: Mapping[str, np.ndarray]) -> None:
  """labels.csv and a <model>.npz per entry of `features` (rows in the order of `ids`)."""
  folder.mkdir(parents=True, exist_ok=True)
  lines = [",".join(COLUMNS)] + [f"{i},{y},{s}" for i, y, s in zip(ids, labels, splits)]
  text = ("\n".join(lines) + "\n").encode()
  artefacts.write_atomically(folder / LABELS_FILE, lambda f: f.write(text))
  for model, rows in features.items():
    artefacts.write_npz(folder / f"{model}.npz", ids=np.asarray(ids, np.int64),
                        features=np.asarray(rows, np.float32))
