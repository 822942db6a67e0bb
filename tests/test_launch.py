"""The launch scripts: dry runs print the commands they would run, and the TPU script's real
control flow (create, wait, copy, run, clean up, preemption) against a stand-in gcloud."""

import os
import pathlib
import subprocess

from tests import helpers

TPU = str(helpers.REPO / "launch" / "tpu_pod.sh")
GPU = str(helpers.REPO / "launch" / "gpu_cluster.sh")
POD = ["w2s", "us-central2-b", "v4-32", "tpu-ubuntu2204-base", "configs/default.py",
       "/mnt/shared/runs"]
EXTRA = ["--config.student.losses=xent,logconf", "--config.task.data_dir=/mnt/my data"]


def bash_words(line: str) -> list[str]:
  """The arguments bash would pass for a printed command line (nothing is run)."""
  out = subprocess.run(["bash", "-c", f"set -- {line}; printf '%s\\0' \"$@\""],
                       capture_output=True, text=True, check=True).stdout
  return out.split("\0")[:-1]


def launch(*args, env=None):
  return subprocess.run(list(args), capture_output=True, text=True, timeout=60,
                        env={**os.environ, **(env or {})})


def test_tpu_dry_run_prints_each_step_with_flags_quoted():
  proc = launch(TPU, "--dry-run", *POD, *EXTRA)
  assert proc.returncode == 0, proc.stderr
  commands = [bash_words(line) for line in proc.stdout.splitlines()
              if not line.startswith("#")]
  steps = [" ".join(c[:4]) for c in commands]
  assert steps == ["gcloud compute tpus queued-resources",  # describe: reuse or replace
                   "gcloud compute tpus queued-resources",  # create
                   "gcloud compute tpus queued-resources",  # describe until ACTIVE
                   f"tar -C {helpers.REPO} --exclude=.venv",
                   "gcloud compute tpus tpu-vm", "gcloud compute tpus tpu-vm",
                   "gcloud compute tpus queued-resources"]  # delete, always
  assert commands[1][4:6] == ["create", "w2s"] and "--accelerator-type=v4-32" in commands[1]
  assert commands[4][4] == "scp" and "--worker=all" in commands[4]
  assert commands[5][4] == "ssh" and "--worker=all" in commands[5]
  assert commands[-1][4:6] == ["delete", "w2s"]
  remote = commands[5][commands[5].index("--command") + 1]
  job = bash_words(remote.splitlines()[-1])
  assert job == ["python", "-m", "w2s_jax.main", "--distributed",
                 "--config=configs/default.py", "--config.workdir=/mnt/shared/runs", *EXTRA]


def test_gpu_dry_run_prints_the_local_or_slurm_command():
  proc = launch(GPU, "--dry-run", "configs/tiny.py", "/shared/my runs", *EXTRA)
  assert proc.returncode == 0, proc.stderr
  assert bash_words(proc.stdout.strip()) == [
      "python", "-m", "w2s_jax.main", "--config=configs/tiny.py",
      "--config.workdir=/shared/my runs", *EXTRA]
  proc = launch(GPU, "--dry-run", "configs/tiny.py", "/shared/runs",
                env={"SLURM_JOB_ID": "7", "SLURM_NTASKS": "2"})
  assert bash_words(proc.stdout.strip())[:5] == ["srun", "python", "-m", "w2s_jax.main",
                                                 "--distributed"]


def fake_gcloud(tmp_path: pathlib.Path, states: list[str]) -> dict:
  """A gcloud on PATH that logs its calls and answers `describe` with the next of `states`
  (the last one repeats); MISSING means no such resource."""
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir(exist_ok=True)
  (tmp_path / "states").write_text("\n".join(states) + "\n")
  script = bin_dir / "gcloud"
  script.write_text(f"""#!/usr/bin/env bash
echo "$*" >> {tmp_path}/calls
case "$*" in
  *"queued-resources describe"*)
    s=$(head -1 {tmp_path}/states)
    if [ "$(wc -l < {tmp_path}/states)" -gt 1 ]; then sed -i 1d {tmp_path}/states; fi
    if [ "$s" = MISSING ]; then exit 1; fi
    echo "$s" ;;
esac
""")
  script.chmod(0o755)
  return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "W2S_POLL_S": "0"}


def calls(tmp_path) -> list[str]:
  return [" ".join(line.split()[2:4])
          for line in (tmp_path / "calls").read_text().splitlines()
          if line.startswith("compute ") and "describe" not in line]


def test_preempted_slice_is_reported_and_the_same_command_resumes(tmp_path):
  env = fake_gcloud(tmp_path, ["MISSING", "MISSING", "WAITING_FOR_RESOURCES", "SUSPENDED"])
  proc = launch(TPU, *POD, *EXTRA, env=env)
  assert proc.returncode == 1
  assert "queued resource w2s is SUSPENDED" in proc.stderr
  assert "run the same command again" in proc.stderr
  assert calls(tmp_path) == ["queued-resources create", "queued-resources delete"]

  (tmp_path / "calls").unlink()
  env = fake_gcloud(tmp_path, ["SUSPENDED", "MISSING", "ACTIVE"])  # the old one is replaced
  proc = launch(TPU, *POD, *EXTRA, env=env)
  assert proc.returncode == 0, proc.stderr
  assert calls(tmp_path) == ["queued-resources delete", "queued-resources create",
                             "tpu-vm scp", "tpu-vm ssh", "queued-resources delete"]
