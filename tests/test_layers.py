"""The package's shape: imports point down the layers, no project import hides inside a
function, the linter passes, importing the package defines no flags, and each run keeps its
compiled programs in its own workdir."""

import ast
import json
import os
import pathlib
import subprocess
import sys

from tests import helpers

REPO = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = REPO / "w2s_jax"
BIN = pathlib.Path(sys.executable).parent


def run(*command, env=None, timeout=300):
  return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                        env=env)


def test_imports_point_down_the_layers():
  linted = run(str(BIN / "lint-imports"))
  assert linted.returncode == 0, linted.stdout[-3000:] + linted.stderr[-2000:]
  assert "0 broken" in linted.stdout


def test_ruff_check_passes():
  checked = run(sys.executable, "-m", "ruff", "check", ".")
  assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-2000:]


def imports_inside_functions(source: str) -> list[tuple[int, str]]:
  """(line, module) of every import of a project module (w2s_jax, configs) made inside a
  function body."""
  found = []

  def visit(node, in_function):
    for child in ast.iter_child_nodes(node):
      inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                 ast.Lambda))
      if in_function and isinstance(child, (ast.Import, ast.ImportFrom)):
        names = ([child.module or ""] if isinstance(child, ast.ImportFrom)
                 else [a.name for a in child.names])
        if (isinstance(child, ast.ImportFrom) and child.level) or any(
            n.split(".")[0] in ("w2s_jax", "configs") for n in names):
          found.append((child.lineno, names[0] or "."))
      visit(child, inside)
  visit(ast.parse(source), False)
  return found


def test_no_project_module_is_imported_inside_a_function():
  assert imports_inside_functions("def f():\n  from w2s_jax import phases\n") == [
      (2, "w2s_jax")]
  assert imports_inside_functions("def f():\n  import matplotlib\n") == []
  hidden = {str(path.relative_to(REPO)): lines for path in sorted(PACKAGE.rglob("*.py"))
            if (lines := imports_inside_functions(path.read_text()))}
  assert hidden == {}


TWO_RUNS = """
import sys
import absl.flags, w2s_jax
print("flags of w2s_jax:", [m for m in absl.flags.FLAGS.flags_by_module_dict() if "w2s_jax" in m])
for workdir in sys.argv[1:]:
  w2s_jax.run(w2s_jax.load_config("configs/mtd.py:tiny", {
      "workdir": workdir, "mtd.methods": "dirty", "strong.pretrain.enabled": False}))
"""


def test_a_notebook_defines_no_flags_and_caches_each_runs_programs_in_its_workdir(tmp_path):
  """`import w2s_jax` defines no absl flags; two runs in one process (as a notebook makes
  them) keep their compiled programs each under its own workdir."""
  env = {k: v for k, v in helpers.cli_env().items() if k != "JAX_COMPILATION_CACHE_DIR"}
  workdirs = [tmp_path / "first", tmp_path / "second"]
  ran = run(sys.executable, "-c", TWO_RUNS, *map(str, workdirs), env=env)
  assert ran.returncode == 0, ran.stderr[-3000:]
  assert "flags of w2s_jax: []" in ran.stdout, ran.stdout[-2000:]
  for workdir in workdirs:  # each run's training and prediction programs, in its own cache
    programs = {p.name.split("-")[0] for p in (workdir / "jax_cache").iterdir()}
    assert {"jit_train_step", "jit_predict_step"} <= programs, (workdir, programs)
  for workdir in workdirs:
    assert list(json.loads(next(workdir.glob("results/*/results.json")).read_text())
                ["phases"]) == ["mtd:dirty"]
  assert not os.path.exists(REPO / "jax_cache")
