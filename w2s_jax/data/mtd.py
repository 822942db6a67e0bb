"""Measurement tampering detection (MTD) examples, and the benchmark's released files.

An MTD example is a text, n boolean measurements of an outcome, the ground truth of that
outcome when known (the latent), and a trusted flag: trusted examples come from a setting
with no tampering, so their measurements all agree with the ground truth. Among untrusted
examples whose measurements are all positive, a real positive has the outcome and a fake
positive (tampering) does not; the metric is the AUROC of a detector's scores separating
the two (`real_vs_fake_auroc`).

The released datasets of redwoodresearch/Measurement-Tampering (diamonds, func_correct, ...)
have one row per example with the fields text, measurements (list of bool), is_correct
(the ground truth), is_clean (trusted) and difficulty; `load_released` reads them from
local JSONL or Parquet files, or a hub id where there is a network.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any, Mapping, Sequence

import numpy as np

from w2s_jax import metrics
from w2s_jax.errors import DataError

UNKNOWN = -1  # latent of an example whose ground truth is not known


@dataclasses.dataclass(frozen=True)
class MTDExamples:
  text: list[str]
  measurements: np.ndarray  # bool [n, n_measurements]
  latent: np.ndarray  # int8 [n]: 1, 0, or UNKNOWN
  trusted: np.ndarray  # bool [n]

  def __len__(self) -> int:
    return len(self.text)

  @property
  def all_positive(self) -> np.ndarray:
    return self.measurements.all(axis=1)

  @property
  def tampered(self) -> np.ndarray:
    """Measurements all positive while the outcome did not happen (fake positives)."""
    return self.all_positive & (self.latent == 0)

  def subset(self, rows) -> "MTDExamples":
    rows = np.asarray(rows)
    if rows.dtype == bool:
      rows = np.flatnonzero(rows)
    return MTDExamples([self.text[i] for i in rows], self.measurements[rows],
                       self.latent[rows], self.trusted[rows])


def _flag(value: Any, field: str, where: str, allow_unknown: bool = False) -> int:
  if value is None and allow_unknown:
    return UNKNOWN
  if isinstance(value, (bool, np.bool_)) or value in (0, 1):
    return int(value)
  raise DataError(f"{where}: {field} is {value!r}; it must be true/false (0/1)"
                  + (" or null" if allow_unknown else ""))


def from_rows(rows: Sequence[Mapping[str, Any]], source: str) -> MTDExamples:
  """Validated MTDExamples from rows in the released schema; a bad row is a DataError that
  names `source`, the row and the field."""
  if len(rows) == 0:
    raise DataError(f"{source} has no rows")
  texts, measurements, latents, trusted = [], [], [], []
  n_measurements = None
  for i, row in enumerate(rows):
    where = f"{source} row {i}"
    # A file read as a table gives a field absent from a row as None; is_correct may be
    # null (unknown), the others may not.
    missing = [f for f in ("text", "measurements", "is_clean") if row.get(f) is None]
    missing += [] if "is_correct" in row else ["is_correct"]
    if missing:
      raise DataError(f"{where}: missing field(s) {', '.join(missing)}")
    text, values = row["text"], row["measurements"]
    if not isinstance(text, str) or not text.strip():
      raise DataError(f"{where}: text is empty or not a string")
    if not isinstance(values, (list, tuple, np.ndarray)) or len(values) == 0:
      raise DataError(f"{where}: measurements must be a non-empty list of true/false")
    flags = [_flag(v, "a measurement", where) for v in values]
    if n_measurements is None:
      n_measurements = len(flags)
    elif len(flags) != n_measurements:
      raise DataError(f"{where}: {len(flags)} measurements where earlier rows have "
                      f"{n_measurements}")
    latent = _flag(row["is_correct"], "is_correct", where, allow_unknown=True)
    clean = _flag(row["is_clean"], "is_clean", where)
    if clean and latent == UNKNOWN:
      raise DataError(f"{where}: a trusted (is_clean) example needs its ground truth")
    if clean and latent != int(all(flags)):
      raise DataError(f"{where}: trusted (is_clean) but its measurements {flags} disagree "
                      f"with is_correct={bool(latent)}: trusted examples have no tampering")
    texts.append(text)
    measurements.append(flags)
    latents.append(latent)
    trusted.append(bool(clean))
  return MTDExamples(texts, np.asarray(measurements, bool), np.asarray(latents, np.int8),
                     np.asarray(trusted, bool))


def load_released(source: str, split: str = "train", name: str | None = None) -> MTDExamples:
  """A split of a released MTD dataset: a local .jsonl/.parquet file or a folder of them
  (`<folder>/<split>*.jsonl|parquet`), or a hub id (with `name`, e.g. "s0") where a network
  is reachable."""
  import datasets
  datasets.disable_progress_bars()
  path = pathlib.Path(source).expanduser()
  if path.is_dir():
    files = sorted(p for p in path.iterdir() if p.name.startswith(split)
                   and p.suffix in (".jsonl", ".parquet"))
    if not files:
      raise DataError(f"{path} has no {split}*.jsonl or {split}*.parquet file")
  elif path.exists():
    files = [path]
  else:
    files = None
  try:
    if files is not None:
      builder = "parquet" if files[0].suffix == ".parquet" else "json"
      rows = datasets.load_dataset(builder, data_files=[str(f) for f in files], split="train")
      where = str(files[0] if len(files) == 1 else path)
    else:
      rows = datasets.load_dataset(source, name, split=split)
      where = f"{source} {name or ''} {split}".replace("  ", " ")
  except DataError:
    raise
  except Exception as e:
    raise DataError(f"cannot read MTD data {source} ({type(e).__name__}: "
                    f"{str(e).splitlines()[0][:160] if str(e) else ''})") from None
  return from_rows(rows, where)


def real_vs_fake_auroc(scores: np.ndarray, examples: MTDExamples) -> float:
  """AUROC of `scores` (higher: more likely real) for real against fake positives among the
  untrusted examples whose measurements are all positive and whose ground truth is known."""
  scores = np.asarray(scores, np.float64)
  if scores.shape != (len(examples),):
    raise ValueError(f"{scores.shape[0] if scores.ndim else 0} scores for "
                     f"{len(examples)} examples")
  rows = ~examples.trusted & examples.all_positive & (examples.latent != UNKNOWN)
  real = examples.latent[rows] == 1
  if real.all() or not real.any():
    raise DataError(f"real-vs-fake AUROC needs real and fake positives among the untrusted "
                    f"examples; found {int(real.sum())} real and {int((~real).sum())} fake")
  return metrics.auroc(scores[rows], real)
