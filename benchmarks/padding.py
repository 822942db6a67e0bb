r"""Padding tokens per training batch with and without length bucketing, on real text.

  python benchmarks/padding.py                       # data from W2S_JAX_DATA_DIR
  python benchmarks/padding.py --task=boolq --max_ctx=512

Tokenises a real dataset with a real tokenizer and runs one epoch of batches each way.
"""

from __future__ import annotations

import argparse
import os
import pathlib

import numpy as np

from w2s_jax import data, models
from w2s_jax.data import batching, tokenize

DEFAULT_DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"


def padding_per_batch(arrays, batch_size, window):
  pads, widths = [], set()
  for batch in batching.train_batches(arrays, batch_size=batch_size, num_epochs=1, seed=0,
                                      bucket_window=window):
    mask = batch["attention_mask"]
    pads.append(mask.size - mask.sum())
    widths.add(mask.shape[1])
  return np.array(pads), sorted(widths)


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--task", default="sst2")
  parser.add_argument("--data_dir", default=os.environ.get("W2S_JAX_DATA_DIR", str(DEFAULT_DATA)))
  parser.add_argument("--model", default="all-MiniLM-L6-v2", help="whose tokenizer")
  parser.add_argument("--n_docs", type=int, default=8000)
  parser.add_argument("--max_ctx", type=int, default=512)
  parser.add_argument("--batch_size", type=int, default=32)
  parser.add_argument("--window", type=int, default=8)
  args = parser.parse_args()

  splits = data.load_splits(dict(name=args.task, source="local", data_dir=args.data_dir,
                                 n_docs=args.n_docs, n_test=200), seed=0)
  texts = np.concatenate([splits["A"]["text"], splits["B"]["text"]])
  tokenizer = models.tokenizer_for({"name": args.model})
  arrays, _ = tokenize.encode(texts, tokenizer, args.max_ctx, "truncate")
  lengths = arrays["attention_mask"].sum(1)
  print(f"{args.task}: {len(texts)} documents, tokens per document mean {lengths.mean():.1f}, "
        f"median {np.median(lengths):.0f}, max {lengths.max()} ({args.model} tokenizer, "
        f"max_ctx {args.max_ctx}), batch {args.batch_size}")
  plain, plain_widths = padding_per_batch(arrays, args.batch_size, 0)
  bucketed, widths = padding_per_batch(arrays, args.batch_size, args.window)
  real = lengths.mean() * args.batch_size
  for name, pads, shapes in (("no bucketing", plain, plain_widths),
                             (f"bucket_window={args.window}", bucketed, widths)):
    print(f"{name:<18} padding tokens per batch: mean {pads.mean():8.1f}  "
          f"(real tokens per batch ≈ {real:.0f}; padded share {pads.mean() / (pads.mean() + real):.1%})"
          f"  batch widths {shapes}")
  print(f"padding ratio bucketed / plain: {bucketed.mean() / plain.mean():.3f}")


if __name__ == "__main__":
  main()
