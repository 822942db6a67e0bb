"""Raw rows of a text task's split from the hub (HF datasets), plain local files, or TFDS.

  task.source = "hub"   load_dataset(<hub id>) — or, with task.data_dir, a local folder in
                        the hub's own layout (e.g. a snapshot with data/train-*.parquet)
  task.source = "local" the task's plain files (TextTask.local) under task.data_dir
  task.source = "tfds"  tfds.data_source(<TFDS name>), files under task.data_dir if given

Every source returns a random-access sequence of dict rows.
"""

from __future__ import annotations

import csv
import pathlib
from typing import Mapping, Sequence

from w2s_jax.data.text_tasks import TextTask
from w2s_jax.errors import ConfigError, DataError

SOURCES = ("hub", "local", "tfds")
_BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".tsv": "csv",
             ".parquet": "parquet"}


class _Renamed(Sequence):
  """Rows with some fields renamed (and TFDS bytes decoded), read lazily."""

  def __init__(self, rows, rename: Mapping[str, str]):
    self._rows, self._rename = rows, dict(rename)

  def __len__(self):
    return len(self._rows)

  def __getitem__(self, i):
    row = self._rows[int(i)]
    return {self._rename.get(k, k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in dict(row).items()}


def load_rows(name: str, task: TextTask, split: str, task_cfg: Mapping):
  """The rows of `split` ("train" or "test"), or None where a local copy has no such file."""
  source, data_dir = task_cfg["source"], task_cfg.get("data_dir", "")
  if source == "hub":
    return _hub(name, task, split, data_dir)
  if source == "local":
    return _local(name, task, split, data_dir)
  if source == "tfds":
    return _tfds(name, task, split, data_dir)
  raise ConfigError(f"task.source={source!r} is unknown; choose from {', '.join(SOURCES)}")


def local_inputs(task: TextTask, task_cfg: Mapping) -> dict[str, pathlib.Path]:
  """{"train"/"test": the local file or folder that split is read from}: a local source's
  files, or the hub-layout folder given as task.data_dir (TFDS's prepared data and the hub's
  own datasets are versioned by their publishers)."""
  source, data_dir = task_cfg["source"], task_cfg.get("data_dir", "")
  if not data_dir:
    return {}
  folder = pathlib.Path(data_dir).expanduser()
  if source == "local":
    return {split: folder / file for split, file in task.local.items()
            if (folder / file).exists()}
  if source == "hub" and folder.is_dir():
    return {split: folder for split in ("train", "test")}
  return {}


def row_location(task: TextTask, split: str, task_cfg: Mapping, index: int | None) -> str:
  """Where row `index` of a split comes from, for error messages: a file and line, or a
  dataset and row; with index None, the file or dataset."""
  source, data_dir = task_cfg["source"], task_cfg.get("data_dir", "")
  if source == "local" and split in task.local:
    path = pathlib.Path(data_dir).expanduser() / task.local[split]
    if index is None:
      return str(path)
    return f"{path} line {index + (1 if path.suffix == '.jsonl' else 2)}"  # after a header
  where = (f"TFDS {task.tfds} {task.splits[split]}" if source == "tfds"
           else f"{data_dir or task.hub[0]} {task.splits[split]}")
  return where if index is None else f"{where} row {index}"


def _check_not_empty(name: str, path: pathlib.Path) -> None:
  """An empty or header-only file says so, instead of a parser's exception."""
  with open(path, encoding="utf-8", errors="replace") as f:
    lines = [line for _, line in zip(range(2), (l for l in f if l.strip()))]
  has_header = path.suffix in (".csv", ".tsv")
  if len(lines) <= int(has_header):
    raise DataError(f"task {name!r}: {path} has no rows" + (" (only a header)" if lines else
                                                           " (the file is empty)"))


def _datasets():
  import datasets
  datasets.disable_progress_bars()
  return datasets


def _hub(name, task, split, data_dir):
  path, *config = task.hub
  if not path and not data_dir:
    raise ConfigError(f"task {name!r} has no hub dataset; give its files with "
                      "task.source=local and task.data_dir")
  datasets = _datasets()
  if data_dir:
    path, config = str(pathlib.Path(data_dir).expanduser()), config
  try:
    return datasets.load_dataset(path, *config, split=task.splits[split])
  except Exception as e:  # offline, unknown id, unreadable files: datasets raises many types
    where = f"folder {path}" if data_dir else f"hub dataset {path}"
    raise DataError(f"task {name!r}: cannot load split {task.splits[split]!r} from {where} "
                    f"({type(e).__name__}: {str(e).splitlines()[0][:150]}); offline, use "
                    "task.source=local with task.data_dir, or a local hub-layout folder") from None


def _local(name, task, split, data_dir):
  if not task.local:
    raise ConfigError(f"task {name!r} has no plain-file layout; use task.source=hub with "
                      "task.data_dir=<a folder in the hub's layout>, or task.source=tfds")
  if not data_dir:
    raise ConfigError("task.source=local needs task.data_dir (the folder holding "
                      f"{', '.join(task.local.values())})")
  if split not in task.local:
    return None
  path = pathlib.Path(data_dir).expanduser() / task.local[split]
  if not path.exists():
    raise DataError(f"task {name!r}: {path} does not exist (task.data_dir={data_dir})")
  if path.suffix != ".parquet":
    _check_not_empty(name, path)
  datasets = _datasets()
  builder = _BUILDERS[path.suffix]
  # Plain TSV releases quote nothing: a quote character is just text. Every cell is read as
  # text, as written ("NA" or "null" is no missing value, "7" no number unless the task's
  # formatter reads a number from it); only an empty cell is missing.
  options = {"sep": "\t", "quoting": csv.QUOTE_NONE} if path.suffix == ".tsv" else {}
  try:
    if path.suffix in (".csv", ".tsv"):
      options.update(keep_default_na=False, na_values=[""],  # an empty cell: missing
                     features=_text_columns(path, options, datasets))
    rows = datasets.load_dataset(builder, data_files=str(path), split="train", **options)
  except Exception as e:  # pyarrow/pandas parse errors come in many types
    raise DataError(f"task {name!r}: cannot read {path} ({type(e).__name__})") from None
  return _Renamed(rows, task.local_rename) if task.local_rename else rows


def _text_columns(path: pathlib.Path, options: Mapping, datasets):
  """Features reading every column of a CSV/TSV file's header as text."""
  with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
    header = next(csv.reader(f, delimiter=options.get("sep", ","),
                             quoting=options.get("quoting", csv.QUOTE_MINIMAL)))
  return datasets.Features({column: datasets.Value("string") for column in header})


def _tfds(name, task, split, data_dir):
  if task.tfds is None:
    raise ConfigError(f"task {name!r} has no TFDS version; use task.source=hub or local")
  import tensorflow_datasets as tfds
  try:
    rows = tfds.data_source(task.tfds, split=task.splits[split], data_dir=data_dir or None,
                            download=False)
  except Exception as e:  # tfds raises its own types for missing data
    raise DataError(f"task {name!r}: TFDS {task.tfds} split {task.splits[split]!r} is not "
                    f"prepared ({type(e).__name__}); prepare it with tfds build, or set "
                    "task.data_dir") from None
  return _Renamed(rows, task.tfds_rename)
