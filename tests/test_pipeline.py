"""The phases end to end on the tiny config, caching, and one-line errors from the CLI."""

import json
import os
import pathlib
import subprocess
import sys
import time

import pytest

from w2s_jax import pipeline

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_pipeline_end_to_end_then_reuses_every_phase(tiny_config):
  start = time.time()
  first = pipeline.run(tiny_config)
  assert time.time() - start < 60
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

  second = pipeline.run(tiny_config)
  assert all(p["reused"] for p in second["phases"].values())
  for role in ("weak", "ceiling"):
    assert second[role] == first[role]
  assert second["students"] == first["students"]


def test_students_share_the_weak_label_artefact(tiny_config):
  tiny_config["strong"]["pretrain"]["enabled"] = False
  tiny_config["student"]["losses"] = "xent"
  first = pipeline.run(tiny_config)
  tiny_config["student"]["losses"] = "logconf"
  second = pipeline.run(tiny_config)
  assert second["phases"]["weak"] == {**first["phases"]["weak"], "reused": True, "wall_s": 0.0}
  assert second["phases"]["ceiling"]["reused"]
  assert not second["phases"]["student:logconf"]["reused"]
  assert first["config_hash"] != second["config_hash"]


def test_interrupted_phase_leaves_no_finished_folder(tiny_config, monkeypatch):
  tiny_config["strong"]["pretrain"]["enabled"] = False

  def crash(*args, **kwargs):
    raise KeyboardInterrupt
  monkeypatch.setattr(pipeline, "_train_classifier", crash)
  with pytest.raises(KeyboardInterrupt):
    pipeline.run(tiny_config)
  phases = pathlib.Path(tiny_config["workdir"]) / "phases"
  assert [p.name for p in phases.iterdir() if not p.name.startswith(".")] == []
  assert not (pathlib.Path(tiny_config["workdir"]) / "results").exists()


def run_cli(tmp_path, *overrides):
  env = {**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu"}
  return subprocess.run(
      [sys.executable, "-m", "w2s_jax.main", "--config=configs/tiny.py",
       f"--config.workdir={tmp_path}/runs", *overrides],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


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
  proc = run_cli(tmp_path, override)
  assert proc.returncode == 2, proc.stderr
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1, proc.stderr
  assert lines[0].startswith(message), lines[0]
  assert not (tmp_path / "runs" / "results").exists()
