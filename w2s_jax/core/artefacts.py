"""Small files written atomically (a reader never sees half of one) and read back with a
one-line error naming what to delete."""

from __future__ import annotations

import json
import os
import pathlib
import tempfile

import jax
import numpy as np

from w2s_jax.errors import CheckpointError

# The process's umask, read once at import (os.umask can only be read by setting it): files
# written through a temporary file get the mode a plain open() would give them, not
# mkstemp's owner-only 0600, so results and task folders can be shared.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def write_json(path: pathlib.Path, obj) -> None:
  write_atomically(path, lambda f: f.write(json.dumps(obj, indent=2, sort_keys=True).encode()))


def write_npz(path: pathlib.Path, **arrays) -> None:
  write_atomically(path, lambda f: np.savez(f, **arrays))


def load_npz(path: pathlib.Path) -> dict[str, np.ndarray]:
  try:
    with np.load(path) as f:
      return dict(f)
  except Exception as e:
    raise CheckpointError(f"artefact {path} is unreadable ({type(e).__name__}); delete "
                          f"{path.parent} to recompute it") from None


def write_atomically(path: pathlib.Path, write) -> None:
  """`write(file)` into a file beside the target, renamed onto it once whole; a failed write
  (a full disk) leaves neither. In a multi-process job every process computes the
  same artefact and process 0 writes it."""
  if jax.process_index() != 0:
    return
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
  try:
    os.fchmod(fd, 0o666 & ~_UMASK)
    with os.fdopen(fd, "wb") as f:
      write(f)
    os.replace(tmp, path)
  except OSError as e:  # named by the file meant, not by the temporary one
    os.unlink(tmp)
    if e.filename is None:
      raise OSError(e.errno, e.strerror, str(path)) from None
    raise
  except BaseException:
    os.unlink(tmp)
    raise


def read_json(path: pathlib.Path) -> dict:
  """A JSON object written by write_json; CheckpointError when it is missing or not one."""
  try:
    obj = json.loads(pathlib.Path(path).read_text())
    if not isinstance(obj, dict):
      raise ValueError("not a JSON object")
    return obj
  except (OSError, ValueError) as e:
    raise CheckpointError(f"artefact {path} is unreadable ({type(e).__name__}); delete "
                          f"{pathlib.Path(path).parent} to recompute it") from None
