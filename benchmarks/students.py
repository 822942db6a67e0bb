r"""Students per hour on the offline default: trained one after another, or together as one
program (student.vectorize), and how far their predictions differ.

  python benchmarks/students.py                      # 4 students, 2 alternating rounds
  python benchmarks/students.py --losses=xent,logconf,product,entropy,kl,window --rounds=1

A first run computes pretraining, the weak model and the ceiling (plus one extra student) in
a scratch workdir; each timed run starts from a copy of it, so only the students train. The
compilation cache is off, as a new student (another loss) would find nothing in it anyway.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import statistics
import tempfile
import time

os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", "")

import jax  # noqa: E402
import numpy as np  # noqa: E402

import w2s_jax  # noqa: E402

jax.config.update("jax_enable_compilation_cache", False)


def run_students(prepared: pathlib.Path, workdir: pathlib.Path, losses: str, vectorize: bool,
                 seed: int):
  shutil.copytree(prepared, workdir)
  cfg = w2s_jax.load_config("configs/default.py", {
      "workdir": str(workdir), "seed": seed, "student.losses": losses,
      "student.vectorize": vectorize})
  start = time.perf_counter()
  results = w2s_jax.run(cfg)
  seconds = time.perf_counter() - start
  predictions = {m: w2s_jax.predictions(results, f"student:{m}") for m in results["students"]}
  return seconds, predictions


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--losses", default="xent,logconf,product,entropy")
  parser.add_argument("--rounds", type=int, default=2)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  n = len(args.losses.split(","))
  scratch = pathlib.Path(tempfile.mkdtemp(prefix="w2s-students-"))
  prepared = scratch / "prepared"
  w2s_jax.run(w2s_jax.load_config("configs/default.py", {
      "workdir": str(prepared), "seed": args.seed, "student.losses": "adaptconf"}))
  times = {False: [], True: []}
  predictions = {}
  for r in range(args.rounds):
    for vectorize in (False, True):
      seconds, predictions[vectorize] = run_students(
          prepared, scratch / f"run{r}-{vectorize}", args.losses, vectorize, args.seed)
      times[vectorize].append(seconds)
  sequential, together = (statistics.median(times[v]) for v in (False, True))
  differences = {m: float(np.nanmax(np.abs(predictions[True][m] - predictions[False][m])))
                 for m in predictions[False]}
  difference = max(differences.values())
  print(f"{n} students of the offline default (seed {args.seed}), medians of {args.rounds} "
        "alternating rounds:")
  print(f"  one after another: {sequential:6.1f} s  ({3600 * n / sequential:6.0f} students/hour)")
  print(f"  vectorised:        {together:6.1f} s  ({3600 * n / together:6.0f} students/hour)")
  print(f"  speed-up {sequential / together:.2f}x; largest difference in a test prediction "
        f"p(y=1): {difference:.2e} (" + ", ".join(f"{m} {d:.1e}" for m, d in
                                             differences.items()) + ")")
  shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
  main()
