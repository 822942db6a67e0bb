"""The pipeline as a multi-process JAX job (2 processes x 4 fake CPU devices, as 2 hosts of a
pod would run it) against 1 process x 8 devices; a dead process ends its peer."""

import json
import pathlib
import socket
import subprocess
import time

import numpy as np
import pytest

from tests import helpers

# Small enough for CI: no pretraining, one student; the phases' machinery is all there.
ARGS = ("--config.strong.pretrain.enabled=False", "--config.student.losses=xent",
        "--config.strong.train.checkpoint_every_steps=2")  # orbax saves from both processes


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def start(workdir, devices: int, process: int | None = None, port: int = 0, *extra):
  env = helpers.cli_env(devices)
  distributed = ([] if process is None else
                 ["--distributed", f"--coordinator=localhost:{port},2,{process}"])
  command = helpers.cli_command(*distributed, f"--config.workdir={workdir}", *ARGS, *extra)
  return subprocess.Popen(command, cwd=helpers.REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def finish(proc, timeout=240):
  try:
    out, err = proc.communicate(timeout=timeout)
  except subprocess.TimeoutExpired:
    proc.kill()
    out, err = proc.communicate()
    pytest.fail(f"no exit within {timeout}s:\n{err[-3000:]}")
  return proc.returncode, out, err


def phase_predictions(workdir: pathlib.Path) -> dict:
  results = json.loads(next((workdir / "results").glob("*/results.json")).read_text())
  return {name: dict(np.load(pathlib.Path(p["dir"]) / "predictions.npz"))
          for name, p in results["phases"].items()}, results


def test_two_processes_give_the_results_of_one(tmp_path):
  start_time = time.time()
  port = free_port()
  pair = [start(tmp_path / "two", 4, i, port) for i in (0, 1)]
  single = start(tmp_path / "one", 8)
  outcomes = [finish(p) for p in (*pair, single)]
  for code, _, err in outcomes:
    assert code == 0, err[-3000:]
  seconds = time.time() - start_time
  # Process 0 reports and writes; process 1 computes the same and writes nothing.
  assert "results: " in outcomes[0][1] and "results: " not in outcomes[1][1]
  two, two_results = phase_predictions(tmp_path / "two")
  one, one_results = phase_predictions(tmp_path / "one")
  assert set(two) == set(one) == {"weak", "ceiling", "student:xent"}
  largest = 0.0
  for phase in one:
    for split in ("B", "test"):
      np.testing.assert_allclose(two[phase][split], one[phase][split], atol=1e-5,
                                 err_msg=f"{phase} {split}")
      largest = max(largest, float(np.nanmax(abs(two[phase][split] - one[phase][split]))))
  for role in ("weak", "ceiling"):
    assert two_results[role]["accuracy"] == one_results[role]["accuracy"]
  leftovers = [p.name for p in (tmp_path / "two" / "phases").iterdir()
               if p.name.startswith(".") and p.name != ".locks"]
  assert not leftovers  # no .partial folder, no temporary file
  print(f"2 processes and 1 process side by side: {seconds:.0f}s; largest logit difference "
        f"{largest:.2e}")


def test_a_dead_process_ends_its_peer_with_an_error(tmp_path):
  port = free_port()
  first, second = (start(tmp_path / "runs", 4, i, port) for i in (0, 1))
  weak_done = tmp_path / "runs" / "phases"
  deadline = time.time() + 180
  while not any(p.name.startswith("weak-") for p in weak_done.glob("weak-*")):
    assert time.time() < deadline and first.poll() is None, "the job did not start"
    time.sleep(0.5)
  second.kill()
  killed_at = time.time()
  code, _, err = finish(first, timeout=120)
  assert code != 0
  assert time.time() - killed_at < 90  # bounded: the heartbeat timeout is 30 s
  assert "another process of this job stopped" in err or "heartbeat" in err, err[-2000:]
  print([line for line in err.splitlines() if line.startswith("error:")])
  second.communicate()
