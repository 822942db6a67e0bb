"""The phase store: a phase is computed once into `<workdir>/phases/<kind>-<hash of key>/` and
reused by any later run whose config gives the same key.

A lock per folder lets one run compute it while others sharing the workdir wait, then reuse
it. The work happens in `.<folder>.partial`, which survives an interrupted run with its
mid-phase checkpoints (the next run resumes from them), and is renamed once complete: a
folder with its phase.json is always whole."""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import shutil
import time
from typing import Callable

import filelock
import jax
from jax.experimental import multihost_utils

from w2s_jax.core import artefacts, hashing
from w2s_jax.errors import CheckpointError, Interrupted, is_storage_error, storage_error
from w2s_jax.phases.context import Context

log = logging.getLogger(__name__)

# Part of every phase key: bump it when a change to the code makes old artefacts invalid
# (a new parameter layout, a changed file format), so stale caches are never reused.
CACHE_VERSION = 3

PHASE_FILE = "phase.json"
CHECKPOINTS_DIR = "checkpoints"  # mid-phase checkpoints, inside a phase's .partial folder


def cached(ctx: Context, name: str, kind: str, key,
           compute: Callable[[pathlib.Path], dict]) -> pathlib.Path:
  """Runs `compute(tmp_dir)` unless a finished folder for this key exists; returns the folder.
  `compute` returns what the phase's record (phase.json) holds beside its key and wall time.

  The same key under another display `name` (a student that is also the first link of a
  chain) is the same folder."""
  key = {"cache_version": CACHE_VERSION, **key}
  phase_dir = phase_folder(ctx, kind, key)
  if not _finished(phase_dir):
    with _phase_lock(phase_dir, name):
      if not _finished(phase_dir):  # nobody finished it while we waited
        return _compute_phase(ctx, name, key, phase_dir, compute)
  if name not in ctx.phases:
    log.info("%s: reusing %s", name, phase_dir)
    ctx.phases[name] = {"dir": str(phase_dir), "reused": True, "wall_s": 0.0}
  return phase_dir


def phase_folder(ctx: Context, kind: str, key) -> pathlib.Path:
  key = {"cache_version": CACHE_VERSION, **key}
  return ctx.workdir / "phases" / f"{kind}-{hashing.stable_hash(key)}"


def is_finished(ctx: Context, kind: str, key) -> bool:
  return _finished(phase_folder(ctx, kind, key))


def _finished(phase_dir: pathlib.Path) -> bool:
  """A folder is finished once its record is written; a record that no longer reads (an
  emptied or truncated phase.json) makes it unfinished, so it is computed again."""
  path = phase_dir / PHASE_FILE
  if not path.exists():
    return False
  try:
    artefacts.read_json(path)
  except CheckpointError:
    log.warning("%s is unreadable; computing the phase again", path)
    return False
  return True


@contextlib.contextmanager
def _phase_lock(phase_dir: pathlib.Path, name: str):
  """Process 0 holds an OS file lock (released by the OS if the process dies, so a killed
  run leaves no stale lock); the job's other processes wait for it at a barrier."""
  lock = None
  if jax.process_index() == 0:
    (phase_dir.parent / ".locks").mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(phase_dir.parent / ".locks" / f"{phase_dir.name}.lock")
    try:
      lock.acquire(timeout=0)
    except filelock.Timeout:
      log.info("%s: another run is computing %s; waiting for it", name, phase_dir)
      lock.acquire()
  multihost_utils.sync_global_devices(f"{phase_dir.name} locked")
  try:
    yield
  finally:
    if lock is not None:
      lock.release()


def _compute_phase(ctx, name, key, phase_dir, compute) -> pathlib.Path:
  tmp = phase_dir.with_name(f".{phase_dir.name}.partial")
  if jax.process_index() == 0:
    shutil.rmtree(phase_dir, ignore_errors=True)  # a folder whose phase.json never came
    tmp.mkdir(parents=True, exist_ok=True)
    for leftover in tmp.iterdir():  # keep an interrupted run's checkpoints, nothing else
      if leftover.name != CHECKPOINTS_DIR:
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
  multihost_utils.sync_global_devices(f"{name} start")
  start, nested_before = time.time(), ctx.phase_seconds
  try:
    info = compute(tmp)
  except Interrupted as e:  # from the training loop, which knows its step
    raise Interrupted(f"interrupted in phase {name} {e}; rerun the same command to "
                      "resume") from None
  except KeyboardInterrupt:
    raise Interrupted(f"interrupted in phase {name}; rerun the same command to "
                      "resume") from None
  except OSError as e:
    if not is_storage_error(e):
      raise
    _remove_partial_writes(tmp)
    raise storage_error(e, tmp) from None
  # A phase may compute the phases it reads (a chain's earlier links): count only its own.
  wall = time.time() - start - (ctx.phase_seconds - nested_before)
  ctx.phase_seconds += wall
  if jax.process_index() == 0:
    shutil.rmtree(tmp / CHECKPOINTS_DIR, ignore_errors=True)
    artefacts.write_json(tmp / PHASE_FILE, {"phase": name, "key": key, "wall_s": wall, **info})
    os.replace(tmp, phase_dir)
  multihost_utils.sync_global_devices(f"{name} done")
  log.info("%s: done in %.1fs -> %s", name, wall, phase_dir)
  ctx.phases[name] = {"dir": str(phase_dir), "reused": False, "wall_s": wall}
  return phase_dir


def _remove_partial_writes(tmp: pathlib.Path) -> None:
  """Orbax's temporary folders of a save cut short (a full disk): the phase's own
  checkpoints stay for the next run to resume from."""
  if jax.process_index() == 0:
    for leftover in tmp.rglob(f"*{ORBAX_TMP_MARK}*"):
      shutil.rmtree(leftover, ignore_errors=True)


ORBAX_TMP_MARK = ".orbax-checkpoint-tmp"


def record(phase_dir: pathlib.Path) -> dict:
  """A finished phase's record (phase.json)."""
  return artefacts.read_json(phase_dir / PHASE_FILE)
