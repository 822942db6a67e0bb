"""Students trained on other supervisors: chains, bootstrapping, ensembles, probes and label
files, on the tiny config; every link is cached and reused."""

import json
import pathlib

import numpy as np
import pytest

from w2s_jax import api, data, phases, sharding
from w2s_jax.data import label_files
from w2s_jax.errors import DataError
from w2s_jax.experiments.w2s import supervisors

METHODS = "xent,xent@s2s2,xent@boot,xent@weak_ensemble,xent@knn_filter"


def tiny_cfg():
  from configs import tiny
  cfg = tiny.get_config().to_dict()
  for role in ("strong", "mid"):
    cfg[role]["pretrain"]["enabled"] = False
  return cfg


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """(config, first results, rerun results) of every supervisor kind but files."""
  cfg = tiny_cfg()
  cfg["workdir"] = str(tmp_path_factory.mktemp("supervision") / "runs")
  cfg["supervisors"]["weak_ensemble"]["replicas"] = 2
  cfg["student"]["losses"] = METHODS
  return cfg, api.run(cfg), api.run(cfg)


def context(cfg):
  return phases.Context(cfg=cfg, workdir=pathlib.Path(cfg["workdir"]),
                        mesh=sharding.make_mesh(cfg["mesh"]),
                        splits=data.load_splits(cfg["task"], cfg["seed"]))


def test_rerun_reuses_every_link(runs):
  _, first, second = runs
  # Links behind a cached phase (a chain's first student, the probe's activations) are not
  # even opened on the rerun.
  assert set(second["phases"]) <= set(first["phases"])
  assert {"student:" + m for m in METHODS.split(",")} <= set(second["phases"])
  assert all(p["reused"] for p in second["phases"].values())
  assert all(p["dir"] == first["phases"][k]["dir"] for k, p in second["phases"].items())
  assert second["students"] == first["students"]


def test_strong_to_strong_chain_starts_at_the_xent_student(runs):
  _, first, _ = runs
  links = first["phases"]
  assert links["s2s2.1"]["dir"] == links["student:xent"]["dir"]  # one folder, computed once
  second_link = json.loads((pathlib.Path(links["s2s2"]["dir"]) / "phase.json").read_text())
  first_link = json.loads((pathlib.Path(links["student:xent"]["dir"]) / "phase.json").read_text())
  assert second_link["key"]["labels"] == {k: v for k, v in first_link["key"].items()
                                          if k != "cache_version"}
  assert pathlib.Path(links["boot"]["dir"]).name.startswith("mid-")  # the intermediate role


def test_results_name_each_students_supervisor(runs):
  _, first, _ = runs
  assert set(first["students"]) == set(METHODS.split(","))
  assert [first["students"][m]["supervisor"] for m in METHODS.split(",")] == [
      "weak", "s2s2", "boot", "weak_ensemble", "knn_filter"]
  for name in ("weak", "s2s2", "boot", "weak_ensemble", "knn_filter"):
    assert 0.0 <= first["supervisors"][name]["label_accuracy_B"] <= 1.0
  assert "test" in first["supervisors"]["weak_ensemble"]  # members' mean on test


def test_ensemble_labels_are_the_mean_of_its_members(runs):
  cfg, first, _ = runs
  ctx = context(cfg)
  members = [phases.predictions(pathlib.Path(first["phases"][name]["dir"]))["B"]
             for name in ("weak", "weak#1")]
  assert not np.allclose(members[0], members[1])  # another training seed
  np.testing.assert_allclose(supervisors.resolve(ctx, "weak_ensemble").labels("B"),
                             np.mean(members, 0), atol=1e-7)


def test_probe_filter_drops_the_contamination_fraction(runs):
  _, first, _ = runs
  info = json.loads((pathlib.Path(first["phases"]["probe:knn_filter"]["dir"]) /
                     "phase.json").read_text())
  n_b = first["n"]["B"]
  assert info["B"]["of"] == n_b and info["B"]["kept"] == n_b - int(0.1 * n_b)


def test_student_on_a_label_file_of_the_weak_labels_matches_the_weak_student(runs, tmp_path):
  cfg, first, _ = runs
  ctx = context(cfg)
  weak = phases.predictions(pathlib.Path(first["phases"]["weak"]["dir"]))
  path = tmp_path / "labels.csv"
  label_files.write(path, np.concatenate([ctx.splits["B"]["id"], ctx.splits["val"]["id"]]),
                    np.concatenate([weak["B"], weak["val"]]))
  cfg = {**cfg, "student": {"losses": "xent@labels_file"},
         "supervisors": {**cfg["supervisors"], "labels_file": {"kind": "file",
                                                               "path": str(path)}}}
  results = api.run(cfg)
  from_file = phases.predictions(pathlib.Path(results["phases"]["student:xent@labels_file"]
                                              ["dir"]))
  from_weak = phases.predictions(pathlib.Path(first["phases"]["student:xent"]["dir"]))
  for split in ("B", "val", "test"):
    np.testing.assert_allclose(from_file[split], from_weak[split], atol=1e-5)


def bad_file(tmp_path, ctx, edit):
  ids = list(ctx.splits["B"]["id"]) + list(ctx.splits["val"]["id"])
  rows = [[str(i), "0.5"] for i in ids]
  edit(rows)
  path = tmp_path / "labels.csv"
  path.write_text("id,label\n" + "".join(f"{i},{p}\n" for i, p in rows))
  return path


@pytest.mark.parametrize("edit,message", [
    (lambda rows: rows.pop(3), "document(s) of split B have no label, e.g. ids"),
    (lambda rows: rows.append(rows[0]), "is a duplicate (first on line 2)"),
    (lambda rows: rows[5].__setitem__(1, "1.5"), "line 7: label '1.5' is outside [0, 1]"),
    (lambda rows: rows[5].__setitem__(1, "neg"), "line 7: label 'neg' is not a number"),
    (lambda rows: rows.append(["999999", "0.5"]), "1 id(s) are not documents of the training "
                                                  "pool, e.g. [999999]"),
])
def test_bad_label_file_is_a_one_line_error_before_any_work(tmp_path, edit, message):
  cfg = tiny_cfg()
  path = bad_file(tmp_path, context(cfg), edit)
  cfg = {**cfg, "workdir": str(tmp_path / "runs"), "student": {"losses": "xent@labels_file"},
         "supervisors": {**cfg["supervisors"], "labels_file": {"kind": "file",
                                                               "path": str(path)}}}
  with pytest.raises(DataError) as error:
    api.run(cfg)
  assert f"labels file {path}" in str(error.value) and message in str(error.value)
  assert "\n" not in str(error.value)
  assert not list((tmp_path / "runs").rglob("*.npz"))  # nothing trained
  assert not (tmp_path / "runs" / "results").exists()


def test_label_file_encodings_a_user_saves(tmp_path):
  """A byte-order mark and spaces in the header read as the plain file; a byte that is not
  UTF-8 is a one-line error naming where it is."""
  plain = tmp_path / "plain.csv"
  plain.write_text("id,label\n1,0.25\n2,1\n")
  spreadsheet = tmp_path / "bom.csv"
  spreadsheet.write_bytes(b"\xef\xbb\xbfid, label\n1, 0.25\n2,1\n")
  lines = tmp_path / "bom.jsonl"
  lines.write_bytes(b'\xef\xbb\xbf{"id": 1, "label": 0.25}\n{"id": 2, "label": 1}\n')
  assert label_files.read(spreadsheet) == label_files.read(plain) == label_files.read(lines)
  latin = tmp_path / "latin.csv"
  latin.write_bytes(b"id,label\n1,0.25\n2,\xe91\n")
  with pytest.raises(DataError, match=r"latin.csv: byte b'\\xe9' is not UTF-8") as error:
    label_files.read(latin)
  assert "\n" not in str(error.value)
