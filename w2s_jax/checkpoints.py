"""Checkpoints (orbax): parameter trees and mid-phase training state."""

from __future__ import annotations

import logging
import os
import pathlib
import re
import time
from typing import Any

import orbax.checkpoint as ocp

from w2s_jax.errors import CheckpointError

log = logging.getLogger(__name__)


def save_params(path: pathlib.Path, params) -> None:
  """Writes a parameter tree; orbax writes to a temporary folder and renames it when done."""
  path = pathlib.Path(path).absolute()
  checkpointer = ocp.StandardCheckpointer()
  try:
    checkpointer.save(path, params)
    checkpointer.wait_until_finished()
  except Exception as e:
    raise _as_os_error(e, path) from None
  finally:
    checkpointer.close()  # orbax's threads, stopped before the error travels on


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
    raise CheckpointError(f"checkpoint {path} is unreadable ({_reason(e)}); delete its phase "
                          "folder to recompute it") from None
  finally:
    checkpointer.close()


def _as_os_error(error: Exception, path: pathlib.Path) -> Exception:
  """Tensorstore reports a full disk as a ValueError that carries the OS error code: made an
  OSError again, so callers treat it as any other failed write."""
  if isinstance(error, OSError):
    return error
  code = re.search(r"os_error_code='(\d+)'", str(error))
  if code:
    number = int(code.group(1))
    return OSError(number, os.strerror(number), str(path))
  return error


def _reason(error: Exception) -> str:
  text = str(error).strip()
  return text.splitlines()[0][:200] if text else type(error).__name__


class TrainCheckpoints:
  """Mid-phase checkpoints of one training loop in `directory`: the train state, the data
  iterator's position and the loop's own record (history, validation, best params), saved
  every `every_steps` steps and/or `every_minutes` minutes (0: never by that rule) and on
  request; the last `keep` are kept. Arrays are written asynchronously: `save` returns once
  they are copied off the devices, so the next (donating) step may run.
  """

  def __init__(self, directory: pathlib.Path, abstract_state, *, every_steps: int = 0,
               every_minutes: float = 0.0, keep: int = 2):
    self.directory = pathlib.Path(directory).absolute()
    self.abstract_state = abstract_state
    self.every_steps, self.every_seconds = int(every_steps), 60.0 * float(every_minutes)
    self._last_save = time.monotonic()
    self._closed = False
    self.manager = ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=max(int(keep), 1)))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def due(self, step: int) -> bool:
    return bool((self.every_steps and step % self.every_steps == 0) or
                (self.every_seconds and time.monotonic() - self._last_save >= self.every_seconds))

  def save(self, step: int, state, iterator, record: dict, best_params=None) -> None:
    items = {"state": ocp.args.StandardSave(state),
             "data": ocp.args.JsonSave(iterator.get_state()),  # captured now, not later
             "record": ocp.args.JsonSave({**record, "has_best": best_params is not None})}
    if best_params is not None:
      items["best"] = ocp.args.StandardSave(best_params)
    try:
      self.manager.save(step, args=ocp.args.Composite(**items), force=True)
    except Exception as e:  # also the previous save's error, met here
      raise _as_os_error(e, self.directory) from None
    self._last_save = time.monotonic()

  def restore(self, iterator) -> tuple[Any, dict, Any]:
    """(state, loop record, best params or None) of the latest readable checkpoint; the
    iterator is moved to where that step left it. A newer checkpoint that does not read (a
    kill while it was written) is deleted with a warning, and the one before it is used."""
    steps = sorted(self.manager.all_steps(), reverse=True)
    for i, step in enumerate(steps):
      try:
        return self._restore(step, iterator)
      except CheckpointError as e:
        if i + 1 == len(steps):
          raise
        log.warning("%s; resuming from step %d instead", str(e).split(";")[0], steps[i + 1])
        self.manager.delete(step)
    raise CheckpointError(f"no checkpoint in {self.directory}")

  def _restore(self, step: int, iterator):
    path = self.directory / str(step)
    try:
      record = self.manager.restore(step, args=ocp.args.Composite(
          record=ocp.args.JsonRestore()))["record"]
      items = {"state": ocp.args.StandardRestore(self.abstract_state),
               "data": ocp.args.JsonRestore()}
      if record["has_best"]:
        items["best"] = ocp.args.StandardRestore(self.abstract_state["params"])
      restored = self.manager.restore(step, args=ocp.args.Composite(**items))
    except Exception as e:  # orbax raises many types; the user needs the path and the remedy
      raise CheckpointError(f"checkpoint {path} is unreadable ({_reason(e)}); delete it to "
                            "resume from an earlier one or from the start") from None
    iterator.set_state(restored["data"])
    return restored["state"], record, restored.get("best") if record["has_best"] else None

  def close(self) -> None:
    """Waits for pending writes and stops orbax's threads (idempotent): a process that exits
    with them running prints their errors."""
    if not self._closed:
      self._closed = True
      try:
        self.manager.wait_until_finished()
      except Exception as e:
        raise _as_os_error(e, self.directory) from None
      finally:
        self.manager.close()

