"""Content fingerprints of the local files a run reads (task data, checkpoint folders), so a
file edited in place gives its phases new keys.

A file's SHA-256 is kept in <workdir>/fingerprints.json under its path, size and
modification time: an untouched file is not read again, an edited one (new mtime or size) is
hashed anew. A file modified in the last seconds before it was hashed is not kept (an edit in
the same clock tick would leave size and mtime as they were), so it is hashed every time."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import time

from w2s_jax.core import artefacts

CACHE_FILE = "fingerprints.json"
SETTLED_S = 2.0  # a file untouched this long before hashing keeps its cached hash


class Fingerprints:
  def __init__(self, workdir: pathlib.Path):
    self._file = pathlib.Path(workdir) / CACHE_FILE
    try:
      self._known = json.loads(self._file.read_text())
    except (OSError, ValueError):
      self._known = {}
    self._changed = False

  def of(self, path: pathlib.Path) -> str:
    """The SHA-256 of a file's bytes, or of a folder's files (their relative paths and
    hashes, hidden names left out)."""
    path = pathlib.Path(path).expanduser().absolute()
    if path.is_file():
      return self._file_hash(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()
                       and not any(part.startswith(".") for part in p.relative_to(path).parts)):
      digest.update(f"{file.relative_to(path).as_posix()}\0{self._file_hash(file)}\n".encode())
    return digest.hexdigest()

  def _file_hash(self, path: pathlib.Path) -> str:
    stat = path.stat()
    seen = self._known.get(str(path))
    if seen and seen["size"] == stat.st_size and seen["mtime_ns"] == stat.st_mtime_ns:
      return seen["sha256"]
    digest = hashlib.sha256()
    with open(path, "rb") as f:
      for block in iter(lambda: f.read(1 << 20), b""):
        digest.update(block)
    if time.time_ns() - stat.st_mtime_ns > SETTLED_S * 1e9:
      self._known[str(path)] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                                "sha256": digest.hexdigest()}
      self._changed = True
    return digest.hexdigest()

  def save(self) -> None:
    """Keeps what was hashed for the next run (best effort: a workdir that cannot be written
    is reported by the run's own checks)."""
    if self._changed and os.access(self._file.parent, os.W_OK):
      artefacts.write_json(self._file, self._known)
