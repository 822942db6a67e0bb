"""The real dataset copies (SST-2, BoolQ dev, CosmosQA valid, SciQ) through the registry.

They live outside the repository: W2S_JAX_DATA_DIR, by default ../shared/data beside it.
The pipeline on real SST-2 runs in the real_checkpoint notebook (tests/test_notebooks.py).
"""

import os
import pathlib

import pytest

from w2s_jax import data

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

