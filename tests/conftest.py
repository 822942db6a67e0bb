"""Test setup: 8 fake CPU devices (set before jax is imported) and shared fixtures."""

import atexit
import os
import pathlib
import shutil
import sys
import tempfile

from tests.helpers import xla_flags  # imports no jax, so the flags precede it

# 8 fake devices, and XLA's CPU optimisations off (tests/helpers.py says why).
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + xla_flags(8)).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One compilation cache for the session (and the CLI runs it starts): the many tiny runs
# compile the same programs. The process that made it (pytest's main process, which the
# workers inherit it from) removes it on exit: runs of the suite leave nothing in /tmp.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="w2s-jax-cache-")
  atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # configs/ is importable from a plain checkout too

import pytest  # noqa: E402


@pytest.fixture
def tiny_config(tmp_path):
  from configs import tiny
  cfg = tiny.get_config().to_dict()
  cfg["workdir"] = str(tmp_path / "runs")
  return cfg


# The longest modules first: pytest.ini's `--dist loadscope` hands whole modules to the two
# workers in collection order, and a long module handed out last keeps one worker busy
# after the other has finished.
LONGEST_FIRST = ("test_reliability.py", "test_train.py", "test_notebooks.py",
                 "test_multiprocess.py", "test_pipeline.py", "test_scan.py",
                 "test_supervision.py", "test_vault.py")


def pytest_collection_modifyitems(items):
  rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
  items.sort(key=lambda item: rank.get(item.path.name, len(LONGEST_FIRST)))  # stable
