"""Pairwise (reward-model) tasks: a context and two candidates, label 1 when the first is the
better. A model scores each candidate (models.PairwiseClassifier: p = sigmoid(r1 - r2)).

A pair travels through the text pipeline as one text, the two candidates (each after the
context) joined by tokenize.PAIR_SEPARATOR; tokenising splits it again (encode_pairs).

  pairwise            plain files: pairwise/train.jsonl, pairwise/test.jsonl under
                      task.data_dir, rows {"context", "first", "second", "label"}
  sst2_pairs          SST-2 sentences paired: a positive and a negative review, in random
                      order; "Which review is more positive?" (offline, from the SST-2 files)
  anthropic_hh_pairs  Anthropic HH-RLHF's chosen and rejected dialogues, in random order
"""

from __future__ import annotations

import random
from typing import Sequence

from w2s_jax.data.text_tasks import BadRow, Row, TextTask, binary_label
from w2s_jax.data.tokenize import PAIR_SEPARATOR

SST2_QUESTION = "Which review is more positive?"


def pair_text(context: str, first: str, second: str) -> str:
  """The one text a pair travels as: each candidate after the context."""
  for name, text in (("context", context), ("first", first), ("second", second)):
    if PAIR_SEPARATOR in text:
      raise BadRow(f"{name} holds the character U+001E, which separates a pair's candidates")
  prefix = f"{context}\n\n" if context else ""
  return f"{prefix}{first}{PAIR_SEPARATOR}{prefix}{second}"


def _text_field(row: Row, field: str, allow_empty: bool = False) -> str:
  value = row[field] if field in row else ("" if allow_empty else None)
  if not isinstance(value, str) or (not value.strip() and not allow_empty):
    raise BadRow(f"{field} must be {'a' if allow_empty else 'a non-empty'} string, got "
                 f"{value!r}")
  return value


def _local_pair(row: Row, rng: random.Random):
  del rng
  context = _text_field(row, "context", allow_empty=True)
  text = pair_text(context, _text_field(row, "first"), _text_field(row, "second"))
  return text, binary_label(row, "label")


def _sst2_pairs(rows: Sequence[Row], rng: random.Random):
  """Rows paired in the order given, a positive with a negative, as soon as one of each is
  waiting; the pair's record sits at the later row, so every row a record uses comes no later
  than it (what a split reads up to is all it uses). The positive is first with probability
  0.5."""
  waiting: dict[int, list[int]] = {0: [], 1: []}
  out: list = [None] * len(rows)
  for i, row in enumerate(rows):
    waiting[binary_label(row, "label")].append(i)
    if not (waiting[0] and waiting[1]):
      continue
    positive, negative = (str(rows[waiting[k].pop(0)]["sentence"]) for k in (1, 0))
    first_better = int(rng.random() < 0.5)
    first, second = (positive, negative) if first_better else (negative, positive)
    out[i] = (pair_text(SST2_QUESTION, first, second), first_better)
  return out


def _anthropic_hh_pairs(row: Row, rng: random.Random):
  chosen, rejected = _text_field(row, "chosen"), _text_field(row, "rejected")
  first_better = int(rng.random() < 0.5)
  first, second = (chosen, rejected) if first_better else (rejected, chosen)
  return pair_text("", first, second), first_better


TASKS = {
    "pairwise": TextTask(("",), _local_pair,
                         local={"train": "pairwise/train.jsonl", "test": "pairwise/test.jsonl"},
                         note="plain files only: a context, two candidates, which is better"),
    "sst2_pairs": TextTask(("stanfordnlp/sst2",), format_split=_sst2_pairs,
                           splits={"train": "train", "test": "validation"},
                           tfds="glue/sst2",
                           local={"train": "sst2/train.tsv", "test": "sst2/dev.tsv"},
                           local_rename={"content": "sentence"},
                           note="a positive and a negative review: which is more positive"),
    "anthropic_hh_pairs": TextTask(("Anthropic/hh-rlhf",), _anthropic_hh_pairs,
                                   note="chosen against rejected, in random order"),
}
