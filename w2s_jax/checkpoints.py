"""Parameter checkpoints (orbax) and small atomic file writes for phase artefacts."""

from __future__ import annotations

import json
import os
import pathlib
import tempfile

import numpy as np
import orbax.checkpoint as ocp

from w2s_jax.errors import CheckpointError


def save_params(path: pathlib.Path, params) -> None:
  """Writes a parameter tree; orbax writes to a temporary folder and renames it when done."""
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(pathlib.Path(path).absolute(), params)
  checkpointer.wait_until_finished()
  checkpointer.close()


def restore_params(path: pathlib.Path, target):
  """Restores onto `target` (ShapeDtypeStructs with shardings): each tensor lands directly on
  its devices. A missing or unreadable checkpoint raises CheckpointError."""
  path = pathlib.Path(path).absolute()
  if not path.exists():
    raise CheckpointError(f"checkpoint {path} does not exist")
  checkpointer = ocp.StandardCheckpointer()
  try:
    return checkpointer.restore(path, target)
  except Exception as e:  # orbax raises many types; the user needs the path and the remedy
    reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
    raise CheckpointError(f"checkpoint {path} is unreadable ({reason}); delete its phase "
                          "folder to recompute it") from None
  finally:
    checkpointer.close()


def write_json(path: pathlib.Path, obj) -> None:
  _atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2, sort_keys=True).encode()))


def write_npz(path: pathlib.Path, **arrays) -> None:
  _atomic_write(path, lambda f: np.savez(f, **arrays))


def _atomic_write(path: pathlib.Path, write) -> None:
  """Writes beside the target and renames, so a reader never sees half a file."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
  try:
    with os.fdopen(fd, "wb") as f:
      write(f)
    os.replace(tmp, path)
  except BaseException:
    os.unlink(tmp)
    raise
