"""External labels keyed by document id: human or other-model labels as a supervisor (the
sandwiching set-up).

  CSV, header id,label        1234,0.83
  JSONL                       {"id": 1234, "label": 0.83}

`label` is p(y=1) in [0, 1] (hard 0/1 labels are soft labels too). An id is the task's
document id (see w2s_jax.data: the source row of a text task, the generated index of a
synthetic one). A file must label every document of B and val, may label more of the
training pool, and never an id outside it. `write` makes such a file from any labels.
"""

from __future__ import annotations

import csv
import json
import math
import pathlib
from typing import Iterable

import numpy as np

from w2s_jax.errors import DataError

COLUMNS = ("id", "label")


def _rows(path: pathlib.Path) -> Iterable[tuple[int, dict]]:
  """(line number, row dict) of a CSV (with header) or JSONL file; a byte-order mark and
  spaces around the header's names are allowed, bytes that are not UTF-8 are an error."""
  try:
    yield from _parsed(path)
  except UnicodeDecodeError as e:
    raise DataError(f"labels file {path}: byte {e.object[e.start:e.start + 1]!r} is not "
                    "UTF-8; save the file as UTF-8") from None


def _parsed(path: pathlib.Path) -> Iterable[tuple[int, dict]]:
  if path.suffix == ".jsonl":
    with open(path, encoding="utf-8-sig") as f:
      for line_no, line in enumerate(f, start=1):
        if not line.strip():
          continue
        try:
          row = json.loads(line)
        except json.JSONDecodeError as e:
          raise DataError(f"labels file {path}, line {line_no}: not JSON ({e.msg})") from None
        if not isinstance(row, dict):
          raise DataError(f"labels file {path}, line {line_no}: expected an object "
                          '{"id": ..., "label": ...}')
        yield line_no, row
  elif path.suffix == ".csv":
    with open(path, encoding="utf-8-sig", newline="") as f:
      reader = csv.DictReader(f, skipinitialspace=True)
      if reader.fieldnames:
        reader.fieldnames = [name.strip() for name in reader.fieldnames]
      missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
      if missing:
        raise DataError(f"labels file {path}: the header lacks {missing}; it needs "
                        f"{','.join(COLUMNS)}")
      for row in reader:
        yield reader.line_num, row
  else:
    raise DataError(f"labels file {path}: unknown format {path.suffix!r}; use .csv or .jsonl")


def _number(value, path, line_no, column) -> float:
  try:
    if isinstance(value, bool):  # JSON true/false would read as 1/0
      raise TypeError
    number = float(value)
  except (TypeError, ValueError):
    raise DataError(f"labels file {path}, line {line_no}: {column} {value!r} is not a "
                    "number") from None
  return number


def read(path: str | pathlib.Path) -> dict[int, float]:
  """{document id: p(y=1)}; any malformed row is a DataError naming file, line and value."""
  path = pathlib.Path(path).expanduser()
  if not path.is_file():
    raise DataError(f"labels file {path} does not exist")
  table: dict[int, float] = {}
  first_line: dict[int, int] = {}
  for line_no, row in _rows(path):
    for column in COLUMNS:
      if row.get(column) in (None, ""):
        raise DataError(f"labels file {path}, line {line_no}: no {column}")
    raw_id = _number(row["id"], path, line_no, "id")
    if not raw_id.is_integer():
      raise DataError(f"labels file {path}, line {line_no}: id {row['id']!r} is not an "
                      "integer document id")
    doc_id = int(raw_id)
    label = _number(row["label"], path, line_no, "label")
    if not (math.isfinite(label) and 0.0 <= label <= 1.0):
      raise DataError(f"labels file {path}, line {line_no}: label {row['label']!r} is "
                      "outside [0, 1]")
    if doc_id in table:
      raise DataError(f"labels file {path}, line {line_no}: id {doc_id} is a duplicate "
                      f"(first on line {first_line[doc_id]})")
    table[doc_id], first_line[doc_id] = label, line_no
  if not table:
    raise DataError(f"labels file {path} has no rows")
  return table


def write(path: str | pathlib.Path, ids, p_pos) -> None:
  """A CSV labels file: one row per document, rows with NaN labels left out."""
  with open(path, "w", encoding="utf-8", newline="") as f:
    out = csv.writer(f)
    out.writerow(COLUMNS)
    out.writerows((int(i), repr(float(p))) for i, p in zip(ids, p_pos) if math.isfinite(p))


def check_ids(table: dict[int, float], pool_ids: np.ndarray, path) -> None:
  """Every id must be a document of the training pool (A, B or val)."""
  extra = sorted(set(table) - set(int(i) for i in pool_ids))
  if extra:
    raise DataError(f"labels file {path}: {len(extra)} id(s) are not documents of the "
                    f"training pool, e.g. {extra[:3]}; check the task and its n_docs/n_val")


def labels_for(table: dict[int, float], ids: np.ndarray, path, split: str) -> np.ndarray:
  """p(y=1) for each document id of a split; a DataError when any is missing."""
  missing = [int(i) for i in ids if int(i) not in table]
  if missing:
    raise DataError(f"labels file {path}: {len(missing)} document(s) of split {split} have "
                    f"no label, e.g. ids {missing[:3]}")
  return np.array([table[int(i)] for i in ids], np.float64)
