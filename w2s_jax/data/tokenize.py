"""Text → token ids with attention masks, under a max_ctx policy.

  long_docs = "truncate"  cut a long document's beginning: keep its leading special tokens
                          ([CLS], <s>) and its last tokens, max_ctx in all. Every task's
                          document ends with what its label is about (the question and the
                          candidate answer after a passage), so the end is what must stay.
  long_docs = "drop"      leave documents longer than max_ctx out (OpenAI); the caller gets
                          a keep mask so every model is scored on the same documents
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from w2s_jax.errors import ConfigError

POLICIES = ("truncate", "drop")
# Part of the key of every phase that reads a text task's tokens (phases/keys.py): change it
# when the same text and tokenizer encode differently, so that no cached phase computed from
# the old tokens is reused. 2: a truncated document keeps its end, not its beginning.
ENCODING_VERSION = 2


def encode(texts: Sequence[str], tokenizer, max_ctx: int, long_docs: str = "truncate"):
  """(arrays {input_ids, attention_mask} right-padded to the longest kept document, keep mask).

  Dropped documents keep a row (all padding but one token) so row i is always document i.
  """
  if long_docs not in POLICIES:
    raise ConfigError(f"task.long_docs={long_docs!r} is unknown; choose from {', '.join(POLICIES)}")
  ids = tokenizer(list(texts), add_special_tokens=True, truncation=False,
                  verbose=False)["input_ids"]
  lengths = np.array([len(x) for x in ids])
  keep = lengths <= max_ctx if long_docs == "drop" else np.ones(len(ids), bool)
  kept_lengths = np.where(keep, np.minimum(lengths, max_ctx), 1)
  width = max(int(kept_lengths.max(initial=1)), 1)
  pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
  input_ids = np.full((len(ids), width), pad, np.int32)
  front = min(leading_special_tokens(tokenizer), max_ctx - 1) if (lengths > max_ctx).any() else 0
  for row, (tokens, n) in enumerate(zip(ids, kept_lengths)):
    if len(tokens) > n > 1:  # truncated: the leading specials, then the document's end
      tokens = tokens[:front] + tokens[len(tokens) - (n - front):]
    input_ids[row, :n] = tokens[:n]
  attention_mask = (np.arange(width)[None] < kept_lengths[:, None]).astype(np.int32)
  return {"input_ids": input_ids, "attention_mask": attention_mask}, keep


def leading_special_tokens(tokenizer) -> int:
  """How many special tokens the tokenizer puts before a text: 1 for [CLS] or <s>, 0 for
  GPT-2's."""
  ids = tokenizer("a", add_special_tokens=True, verbose=False)["input_ids"]
  specials = set(tokenizer.all_special_ids)
  return next((i for i, token in enumerate(ids) if token not in specials), len(ids))


# A pairwise task's document is one text: its two candidates joined by this (ASCII record
# separator, refused inside a candidate; data/pairwise.py).
PAIR_SEPARATOR = "\x1e"


def encode_pairs(texts: Sequence[str], tokenizer, max_ctx: int, long_docs: str = "truncate"):
  """A pairwise task's documents: each candidate encoded as `encode` does, the second's
  fields suffixed "_2"; a pair is kept when both candidates are."""
  halves = [text.split(PAIR_SEPARATOR) for text in texts]
  first, keep_first = encode([a for a, _ in halves], tokenizer, max_ctx, long_docs)
  second, keep_second = encode([b for _, b in halves], tokenizer, max_ctx, long_docs)
  return ({**first, **{f"{k}_2": v for k, v in second.items()}}, keep_first & keep_second)
