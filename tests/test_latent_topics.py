"""The offline default task's generator: the properties the experiment's story relies on."""

import numpy as np
import pytest

from configs import default
from w2s_jax import data
from w2s_jax.data import latent_topics as lt
from w2s_jax.errors import DataError


@pytest.fixture(scope="module")
def task():
  return default.get_config().task.to_dict()


@pytest.fixture(scope="module")
def world(task):
  return lt.make_world(task)


def test_topics_leave_token_frequencies_uniform(world):
  # Doubly stochastic transitions: a topic shows only in which token follows which.
  np.testing.assert_allclose(world.transitions.sum(-1), 1.0, atol=1e-12)
  np.testing.assert_allclose(world.transitions.sum(-2), 1.0, atol=1e-12)
  assert world.topic_label.sum() * 2 == len(world.topic_label)


def test_documents_layout_and_header_rate(world):
  docs = lt.sample_documents(world, 4000, np.random.default_rng(0))
  ids, mask = docs["input_ids"], docs["attention_mask"]
  lengths = mask.sum(1)
  assert lengths.min() == world.min_len + 2 and lengths.max() == world.max_len + 2
  last = ids[np.arange(len(ids)), lengths - 1]
  assert (last == lt.END).all()
  assert (ids[mask == 0] == lt.PAD).all()
  header_says_pos = ids[:, 0] == lt.HEADER_POS
  agreement = (header_says_pos == docs["label"].astype(bool)).mean()
  assert abs(agreement - world.header_agreement) < 0.03
  assert abs(docs["label"].mean() - 0.5) < 0.03


def test_pretraining_text_has_tags_and_uninformative_headers(world):
  docs = lt.sample_documents(world, 4000, np.random.default_rng(1), pretraining=True)
  lengths = docs["attention_mask"].sum(1)
  tags = docs["input_ids"][np.arange(4000), lengths - 1]
  np.testing.assert_array_equal(tags, lt.N_SPECIAL + docs["topic"])
  agreement = ((docs["input_ids"][:, 0] == lt.HEADER_POS) == docs["label"].astype(bool)).mean()
  assert abs(agreement - 0.5) < 0.03


def test_splits_are_fixed_by_the_seed(task):
  a = data.load_splits(task, seed=0)
  b = data.load_splits(task, seed=0)
  c = data.load_splits(task, seed=1)
  np.testing.assert_array_equal(a["A"]["input_ids"], b["A"]["input_ids"])
  assert not np.array_equal(a["A"]["input_ids"], c["A"]["input_ids"])
  np.testing.assert_array_equal(a["test"]["input_ids"], c["test"]["input_ids"])
  assert len(a["A"]["label"]) == len(a["B"]["label"]) == task["n_docs"] // 2


def test_one_class_and_empty_splits_are_data_errors():
  with pytest.raises(DataError, match="split A has only label"):
    data.check_split("t", "A", {"label": np.ones(5, np.int32)})
  with pytest.raises(DataError, match="split test is empty"):
    data.check_split("t", "test", {"label": np.zeros(0, np.int32)})
