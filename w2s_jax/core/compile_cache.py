"""JAX's persistent compilation cache, pointed at a run's workdir by the entry points (the
command line and the Python API), once per run."""

from __future__ import annotations

import os
import pathlib
import warnings

import jax
from jax.experimental.compilation_cache import compilation_cache

ENV_DIR = "JAX_COMPILATION_CACHE_DIR"


def use_workdir_cache(workdir) -> None:
  """Keeps compiled XLA programs in <workdir>/jax_cache, unless the environment names a cache
  (JAX_COMPILATION_CACHE_DIR): every phase builds its own jitted step, so students, seeds
  and reruns of the same shapes would otherwise compile again (a tiny run: 38 s -> 10 s).
  A second run in the same process with another workdir gets its own cache: JAX opens the
  cache once, so it is reset when the folder changes.

  XLA's own caches stay off (unless JAX_PERSISTENT_CACHE_ENABLE_XLA_CACHES names some): JAX
  passes their folder, inside the cache's, to the compiler, which puts the path into every
  program's cache key, so a workdir moved, copied or mounted elsewhere found none of its
  programs."""
  # An entry that cannot be written (a full disk) costs one compilation next time, and the
  # run's own files report the disk: one warning per program would bury that line.
  warnings.filterwarnings("ignore", message="Error writing persistent compilation cache")
  if ENV_DIR not in os.environ:
    folder = str(pathlib.Path(workdir).absolute() / "jax_cache")
    if jax.config.jax_compilation_cache_dir != folder:
      compilation_cache.set_cache_dir(folder)
      compilation_cache.reset_cache()
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  if "JAX_PERSISTENT_CACHE_ENABLE_XLA_CACHES" not in os.environ:
    jax.config.update("jax_persistent_cache_enable_xla_caches", "none")
