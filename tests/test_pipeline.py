"""The phases end to end on the tiny config, caching, and one-line errors from the CLI."""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest

from tests import helpers
from w2s_jax import api, data, phases, train
from w2s_jax.core import config_files
from w2s_jax.errors import CheckpointError, ConfigError, Interrupted

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
  """One tiny run end to end: (config, results, seconds it took)."""
  from configs import tiny
  cfg = tiny.get_config().to_dict()
  cfg["workdir"] = str(tmp_path_factory.mktemp("finished") / "runs")
  start = time.time()
  results = api.run(cfg)
  return cfg, results, time.time() - start


def copy_of(finished_run, tmp_path):
  """The finished run's config, pointing at a private copy of its workdir."""
  cfg, results, _ = finished_run
  cfg = json.loads(json.dumps(cfg))
  shutil.copytree(cfg["workdir"], tmp_path / "runs")
  cfg["workdir"] = str(tmp_path / "runs")
  return cfg, results


def test_pipeline_end_to_end_then_reuses_every_phase(finished_run):
  tiny_config, first, _ = finished_run
  results_file = pathlib.Path(first["results_file"])
  saved = json.loads(results_file.read_text())
  assert set(saved["students"]) == {"xent", "logconf", "product"}
  for role in ("weak", "ceiling"):
    assert 0.0 <= saved[role]["accuracy"] <= 1.0
  for student in saved["students"].values():
    assert {"accuracy", "auroc", "agreement_with_weak", "pgr"} <= set(student)
  expected = {"pretrain", "weak", "ceiling", "student:xent", "student:logconf",
              "student:product"}
  assert set(first["phases"]) == expected
  assert not any(p["reused"] for p in first["phases"].values())
  assert json.loads((results_file.parent / "config.json").read_text()) == tiny_config

  second = api.run(tiny_config)
  assert all(p["reused"] for p in second["phases"].values())
  assert second["results_file"] == first["results_file"]
  for role in ("weak", "ceiling"):
    assert second[role] == first[role]
  assert second["students"] == first["students"]


def test_vectorised_students_match_students_trained_one_by_one(finished_run, tmp_path):
  """On a CPU students together share one compiled step, taking each student's state in
  turn: the same predictions bit for bit as each trained alone, for the losses whose
  rounding moved when compiled in beside the model (the vmapped path is test_train's)."""
  from w2s_jax import api
  methods = ("entropy", "logconf_balanced")
  outcomes = {}
  for vectorize in (False, True):
    cfg, _ = copy_of(finished_run, tmp_path / str(vectorize))
    cfg["student"].update(losses=",".join(methods), vectorize=vectorize)
    results = api.run(cfg)
    outcomes[vectorize] = results
    assert not any(results["phases"][f"student:{m}"]["reused"] for m in methods)
  for method in methods:
    alone, together = (api.predictions(outcomes[v], f"student:{method}") for v in (False, True))
    np.testing.assert_array_equal(together, alone, err_msg=method)
    assert outcomes[True]["students"][method] == outcomes[False]["students"][method]
  info = json.loads((pathlib.Path(outcomes[True]["phases"]["student:logconf_balanced"]["dir"])
                     / phases.PHASE_FILE).read_text())
  assert info["trained_with"] == list(methods)
  assert all(isinstance(h["loss"], float) for h in info["history"])


def test_a_linear_probe_on_cached_features_equals_the_full_forward(finished_run, tmp_path,
                                                                    monkeypatch):
  """A linear probe trains its head on the frozen backbone's features, computed once per
  split: the same logits (within 1e-5) as running the backbone at every step."""
  outcomes = {}
  for cached in (True, False):
    cfg, _ = copy_of(finished_run, tmp_path / str(cached))
    cfg["strong"]["linear_probe"] = True
    cfg["strong"]["train"]["lr"] = 1e-2
    cfg["student"]["losses"] = "xent,logconf"
    if not cached:
      monkeypatch.setattr(phases.classifier, "reads_frozen_features", lambda *a, **k: False)
    outcomes[cached] = api.run(cfg)
  with_features = outcomes[True]["phases"]
  assert {"features:strong:B", "features:strong:val", "features:strong:test"} <= set(with_features)
  assert not any(name.startswith("features:") for name in outcomes[False]["phases"])
  for name in ("ceiling", "student:xent", "student:logconf"):
    cached, full = (api.predictions(outcomes[c], name) for c in (True, False))
    assert np.abs(cached - api.predictions(finished_run[1], name)).max() > 1e-3, name
    np.testing.assert_allclose(cached, full, atol=1e-5, err_msg=name)


def test_students_share_the_weak_label_artefact(tiny_config):
  tiny_config["strong"]["pretrain"]["enabled"] = False
  tiny_config["student"]["losses"] = "xent"
  first = api.run(tiny_config)
  tiny_config["student"]["losses"] = "logconf"
  second = api.run(tiny_config)
  assert second["phases"]["weak"] == {**first["phases"]["weak"], "reused": True, "wall_s": 0.0}
  assert second["phases"]["ceiling"]["reused"]
  assert not second["phases"]["student:logconf"]["reused"]
  assert first["config_hash"] != second["config_hash"]


def test_interrupted_phase_leaves_no_finished_folder(tiny_config, monkeypatch):
  tiny_config["strong"]["pretrain"]["enabled"] = False

  def crash(*args, **kwargs):
    raise KeyboardInterrupt
  monkeypatch.setattr(train, "run_training", crash)
  with pytest.raises(Interrupted, match="interrupted in phase weak; rerun the same command"):
    api.run(tiny_config)
  phase_root = pathlib.Path(tiny_config["workdir"]) / "phases"
  assert [p.name for p in phase_root.iterdir() if not p.name.startswith(".")] == []
  assert not (pathlib.Path(tiny_config["workdir"]) / "results").exists()


def run_cli(tmp_path, *overrides):
  return helpers.run_cli(f"--config.workdir={tmp_path}/runs", *overrides)


@pytest.mark.parametrize("override,message", [
    ("--config.student.losses=xent,bogus",
     "error: student.losses: unknown loss 'bogus'; choose from xent, logconf, product"),
    ("--config.task.name=imagenet", "error: task.name='imagenet' is unknown; choose from"),
    ("--config.no_such_key=1", "error: --config.no_such_key: the config has no key"),
    ("--config.seed=abc", "error: flag --config.seed=abc: invalid literal for int()"),
    ("--config.ceiling.split=C", "error: ceiling.split='C' is unknown; choose from A, B"),
    ("--config.task.n_docs=2", "error: task 'latent_topics': split A has only label"),
    ("--config.mesh.data=3", "error: mesh {'data': 3, 'fsdp': 1, 'tensor': 1} needs 3 devices"),
])
def test_bad_input_stops_with_one_line_and_no_results(tmp_path, override, message):
  line = helpers.one_line_error(run_cli(tmp_path, override))
  assert line.startswith(message), line
  assert not (tmp_path / "runs" / "results").exists()


def test_batch_that_does_not_split_over_devices_is_a_config_error(tiny_config):
  from w2s_jax.errors import ConfigError
  tiny_config["weak"]["train"]["batch_size"] = 12  # 8 data-parallel devices
  with pytest.raises(ConfigError, match="weak.train.batch_size=12 does not split over the 8"):
    api.run(tiny_config)


def test_corrupt_artefact_is_a_one_line_error_that_keeps_old_results(finished_run, tmp_path):
  cfg, results = copy_of(finished_run, tmp_path)
  student_dir = pathlib.Path(results["phases"]["student:xent"]["dir"].replace(
      str(pathlib.Path(finished_run[0]["workdir"])), cfg["workdir"]))
  (student_dir / "predictions.npz").write_bytes(b"not a zip file")
  results_file = pathlib.Path(cfg["workdir"]) / "results" / results["config_hash"] / "results.json"
  before = results_file.read_bytes()
  with pytest.raises(CheckpointError, match=f"artefact {student_dir}/predictions.npz is "
                     f"unreadable .*; delete {student_dir} to recompute it"):
    api.run(cfg)
  assert results_file.read_bytes() == before


def test_corrupt_pretrained_checkpoint_is_a_one_line_error(finished_run, tmp_path):
  cfg, results = copy_of(finished_run, tmp_path)
  workdir = pathlib.Path(cfg["workdir"])
  pretrain_dir = next((workdir / "phases").glob("pretrain-*"))
  for f in (pretrain_dir / "backbone").rglob("*"):
    if f.is_file():
      f.write_bytes(b"\0" * 16)
  ceiling_dir = results["phases"]["ceiling"]["dir"].replace(finished_run[0]["workdir"],
                                                            cfg["workdir"])
  shutil.rmtree(ceiling_dir)  # must restore the backbone
  with pytest.raises(CheckpointError, match=f"checkpoint {pretrain_dir}/backbone is "
                     "unreadable .*; delete its phase folder to recompute it"):
    api.run(cfg)


def test_single_host_launcher_runs_the_job(tmp_path):
  proc = subprocess.run(["launch/gpu_cluster.sh", "configs/tiny.py", str(tmp_path / "runs"),
                         "--config.student.losses=xent"],
                        cwd=REPO, capture_output=True, text=True, timeout=300,
                        env={**helpers.cli_env(),
                             "PATH": f"{pathlib.Path(sys.executable).parent}:{os.environ['PATH']}"})
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "student:xent" in proc.stdout
  assert len(list((tmp_path / "runs" / "results").glob("*/results.json"))) == 1


@pytest.mark.parametrize("edit,message", [
    (lambda c: c["strong"]["pretrain"].update(steps=5),
     "strong.pretrain.warmup_steps=5 is not below the 5 steps it trains for; lower it"),
    (lambda c: c["weak"]["train"].update(warmup_steps=100),
     "weak.train.warmup_steps=100 is not below the 4 steps it trains for; lower it"),
    (lambda c: c.update(workdir=" "), "workdir is empty; give a folder with --config.workdir"),
    (lambda c: c["task"].update(n_docs=10**10),
     "task.n_docs=10000000000 (with n_test and n_val: 10,000,000,"),
    (lambda c: c["strong"]["pretrain"].update(steps=10**9),
     "strong.pretrain.steps=1000000000 (x batch_size 32: 32,000,000,000 documents) needs "
     "about"),
])
def test_schedule_and_workdir_mistakes_are_one_line_errors_before_training(tiny_config, edit,
                                                                          message):
  if "weak" in message:
    tiny_config["strong"]["pretrain"]["enabled"] = False
  edit(tiny_config)
  with pytest.raises(ConfigError) as error:
    api.run(tiny_config)
  assert str(error.value) == message or str(error.value).startswith(message)
  assert not list(pathlib.Path(tiny_config["workdir"] or ".").rglob("phase.json"))


@pytest.mark.parametrize("config,generate", [
    ("configs/tiny.py", lambda task, n: data.load_splits({**task, "n_docs": n, "n_test": 64}, 0)),
    ("configs/tiny.py", lambda task, n: data.pretraining_documents(task, n, 0)),
    ("configs/mtd.py:tiny", lambda task, n: data.pretraining_documents(task, n, 0)),
])
def test_the_memory_estimate_that_refuses_sizes_covers_what_generation_takes(config, generate):
  task = config_files.load_file(config).to_dict()["task"]
  n_docs = 20_000
  tracemalloc.start()
  try:
    generate(task, n_docs)
    peak = tracemalloc.get_traced_memory()[1]
  finally:
    tracemalloc.stop()
  estimate = data.generation_bytes(task, n_docs)
  assert peak <= estimate <= 1.5 * peak


def test_a_results_folder_that_cannot_be_written_stops_the_run_before_training(tiny_config):
  workdir = pathlib.Path(tiny_config["workdir"])
  workdir.mkdir(parents=True)
  (workdir / "results").write_text("")  # where the results folder should be
  with pytest.raises(ConfigError, match=f"workdir {workdir} is not usable: {workdir}/results "
                                        r"\(File exists\); choose another"):
    api.run(tiny_config)
  assert not list(workdir.rglob("phase.json"))


def test_a_failing_seed_is_named(tmp_path):
  line = helpers.one_line_error(run_cli(tmp_path, "--seeds=0,1", "--config.task.n_docs=2"))
  assert line.startswith("error: seed 0: task 'latent_topics': split A has only label"), line


def test_a_finished_phase_whose_record_no_longer_reads_is_computed_again(finished_run,
                                                                         tmp_path):
  cfg, first = copy_of(finished_run, tmp_path)
  ceiling = (pathlib.Path(cfg["workdir"]) / "phases"
             / pathlib.Path(first["phases"]["ceiling"]["dir"]).name)
  (ceiling / phases.PHASE_FILE).write_text("")  # emptied, as by a full disk
  again = api.run(cfg)
  assert not again["phases"]["ceiling"]["reused"]
  assert all(info["reused"] for name, info in again["phases"].items() if name != "ceiling")
  assert again["ceiling"] == first["ceiling"] and again["students"] == first["students"]
  assert json.loads((ceiling / phases.PHASE_FILE).read_text())["phase"] == "ceiling"
