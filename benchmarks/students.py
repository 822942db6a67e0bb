r"""Students per hour on the offline default: trained one after another, or together as one
program (student.vectorize), and how far their predictions differ.

  python benchmarks/students.py                      # 4 students, 2 alternating rounds
  python benchmarks/students.py --losses=xent,logconf,product,entropy,kl,window --rounds=1
  python benchmarks/students.py --cold-compiles      # without the compilation cache

A first run computes pretraining, the weak model and the ceiling (plus one extra student) in
a scratch workdir. Each timed run starts from a copy of it, in a process of its own, so only
the students train and every run finds the same compilation cache: the one the workdir's
earlier phases left (the ceiling's evaluation program, and its training program, which the
xent student shares), as a user adding students to a finished run has. --cold-compiles
turns the cache off, so each run compiles everything.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

CONFIG = "configs/default.py"


def overrides(workdir, losses: str, vectorize: bool, seed: int) -> dict:
  return {"workdir": str(workdir), "seed": seed, "student.losses": losses,
          "student.vectorize": vectorize}


def time_students(workdir: str, losses: str, vectorize: bool, seed: int) -> None:
  """In the child process: trains the students and prints {seconds, phases} as JSON."""
  import w2s_jax
  cfg = w2s_jax.load_config(CONFIG, overrides(workdir, losses, vectorize, seed))
  start = time.perf_counter()
  results = w2s_jax.run(cfg)
  seconds = time.perf_counter() - start
  print(json.dumps({"seconds": seconds, "students": list(results["students"]),
                    "phases": results["phases"]}))


def run_students(prepared: pathlib.Path, workdir: pathlib.Path, losses: str, vectorize: bool,
                 seed: int, cold: bool):
  import w2s_jax
  shutil.copytree(prepared, workdir)
  env = dict(os.environ, **({"JAX_COMPILATION_CACHE_DIR": "", "JAX_ENABLE_COMPILATION_CACHE":
                             "false"} if cold else {}))
  child = subprocess.run(
      [sys.executable, __file__, "--time-students", str(workdir), "--losses", losses,
       "--seed", str(seed)] + (["--vectorize"] if vectorize else []),
      env=env, check=True, stdout=subprocess.PIPE, text=True)
  out = json.loads(child.stdout.strip().splitlines()[-1])
  predictions = {m: w2s_jax.predictions(out, f"student:{m}") for m in out["students"]}
  return out["seconds"], predictions


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--losses", default="xent,logconf,product,entropy")
  parser.add_argument("--rounds", type=int, default=2)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--cold-compiles", action="store_true",
                      help="no compilation cache: every run compiles all its programs")
  parser.add_argument("--time-students", metavar="WORKDIR", help=argparse.SUPPRESS)
  parser.add_argument("--vectorize", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.time_students:
    return time_students(args.time_students, args.losses, args.vectorize, args.seed)
  if args.cold_compiles:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = ""
    os.environ["JAX_ENABLE_COMPILATION_CACHE"] = "false"
  import w2s_jax
  n = len(args.losses.split(","))
  scratch = pathlib.Path(tempfile.mkdtemp(prefix="w2s-students-"))
  prepared = scratch / "prepared"
  w2s_jax.run(w2s_jax.load_config(CONFIG, overrides(prepared, "adaptconf", False, args.seed)))
  times = {False: [], True: []}
  predictions = {}
  for r in range(args.rounds):
    for vectorize in (False, True):
      seconds, predictions[vectorize] = run_students(
          prepared, scratch / f"run{r}-{vectorize}", args.losses, vectorize, args.seed,
          args.cold_compiles)
      times[vectorize].append(seconds)
  sequential, together = (statistics.median(times[v]) for v in (False, True))
  differences = {m: float(np.nanmax(np.abs(predictions[True][m] - predictions[False][m])))
                 for m in predictions[False]}
  difference = max(differences.values())
  cache = "no compilation cache" if args.cold_compiles else "the workdir's compilation cache"
  print(f"{n} students of the offline default (seed {args.seed}, {cache}), medians of "
        f"{args.rounds} alternating rounds:")
  print(f"  one after another: {sequential:6.1f} s  ({3600 * n / sequential:6.0f} students/hour)")
  print(f"  together:          {together:6.1f} s  ({3600 * n / together:6.0f} students/hour)")
  print(f"  speed-up {sequential / together:.2f}x; largest difference in a test prediction "
        f"p(y=1): {difference:.2e} (" + ", ".join(f"{m} {d:.1e}" for m, d in
                                             differences.items()) + ")")
  shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
  main()
