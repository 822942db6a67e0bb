"""User-facing errors: each carries a one-line message that says what to fix."""

import errno


class W2SError(Exception):
  """Base class; `python -m w2s_jax.main` prints these as one line and exits non-zero."""


class ConfigError(W2SError):
  """A config value is unknown or malformed."""


class DataError(W2SError):
  """A dataset is empty, one-class, or malformed."""


class TrainingError(W2SError):
  """Training diverged (non-finite loss) or cannot proceed."""


class CheckpointError(W2SError):
  """A cached artefact or checkpoint is missing or corrupt."""


class Interrupted(W2SError):
  """The run was stopped by a signal (SIGINT, SIGTERM); rerunning the command resumes it."""


class StorageError(W2SError):
  """A file under the workdir cannot be written: the disk is full, or permission is lacking."""


# What the file system says when a run cannot write (as opposed to a bug in the code).
STORAGE_ERRNOS = frozenset({"ENOSPC", "EDQUOT", "EFBIG", "EROFS", "EACCES", "EPERM"})


def is_storage_error(e: BaseException) -> bool:
  return isinstance(e, OSError) and errno.errorcode.get(e.errno or 0) in STORAGE_ERRNOS


def storage_error(e: OSError, where) -> StorageError:
  """The one line for an OSError met while writing under `where`."""
  path = e.filename or where
  return StorageError(f"cannot write {path}: {e.strerror or e}; free space (or give "
                      "--config.workdir on another disk) and rerun the same command: finished "
                      "phases are kept")
