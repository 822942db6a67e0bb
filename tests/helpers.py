"""Running the command line from tests; initialising a model as the pipeline does."""

import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]


# XLA's CPU backend optimisations off: the suite's models are tiny, so compiling dominates,
# and unoptimised programs compile faster end to end; every comparison in the suite is between
# programs built the same way.
FAST_COMPILE_FLAGS = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


def xla_flags(devices: int = 1) -> str:
  fake = f"--xla_force_host_platform_device_count={devices} " if devices > 1 else ""
  return fake + FAST_COMPILE_FLAGS


def cli_env(devices: int = 1):
  """One CPU device, as a user's machine (the in-process tests fake eight)."""
  return {**os.environ, "XLA_FLAGS": xla_flags(devices), "JAX_PLATFORMS": "cpu"}


def cli_command(*args, config="configs/tiny.py"):
  return [sys.executable, "-m", "w2s_jax.main", f"--config={config}", *args]


def run_cli(*args, config="configs/tiny.py", timeout=180):
  return subprocess.run(cli_command(*args, config=config), cwd=REPO, env=cli_env(),
                        capture_output=True, text=True, timeout=timeout)


def one_line_error(proc) -> str:
  """The single stderr line of a run that stopped on a user error (exit status 2)."""
  assert proc.returncode == 2, proc.stderr[-3000:]
  lines = [line for line in proc.stderr.splitlines() if " w2s_jax." not in line]  # logs
  assert len(lines) == 1, proc.stderr[-3000:]
  return lines[0]


def init_params(module, ids, mask, seed=0):
  """The module's unboxed parameters, from one jitted initialiser compiled as train.init_state
  compiles it (op by op, each initialiser's random numbers would compile on their own)."""
  import flax.linen as nn
  import jax

  from w2s_jax import train
  init = jax.jit(module.init,
                 compiler_options=train.initialiser_compiler_options(jax.default_backend()))
  return nn.meta.unbox(init(jax.random.key(seed), ids, mask)["params"])
