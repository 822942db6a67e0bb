"""User-facing errors: each carries a one-line message that says what to fix."""


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
