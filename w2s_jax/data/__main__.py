r"""See what the models are trained on.

  python -m w2s_jax.data list
  python -m w2s_jax.data show sst2 --source=local --data_dir=DATA --n=3
  python -m w2s_jax.data show boolq                     # from the hub (needs the network)
"""

from __future__ import annotations

import argparse
import sys

from w2s_jax import data
from w2s_jax.data import embeddings, sources
from w2s_jax.errors import W2SError


def list_tasks() -> str:
  rows = [("latent_topics", "(generated offline, the default task)", "", "", "")]
  for name, task in data.TEXT_TASKS.items():
    local = ", ".join(task.local.values()) or "-"
    rows.append((name, " ".join(task.hub), task.splits["test"], task.tfds or "-",
                 local + (f"  ({task.note})" if task.note else "")))
  rows.append((embeddings.TASK, "(features computed elsewhere)", "test", "-",
               f"{embeddings.LABELS_FILE}, <model>.npz  (docs/embeddings.md)"))
  header = ("name", "hub", "test split", "tfds", "local files")
  widths = [max(len(row[i]) for row in [header, *rows]) + 2 for i in range(4)]
  return "\n".join("".join(cell.ljust(width) for cell, width in zip(row, widths)) + row[4]
                   for row in [header, *rows]).rstrip()


def show(name: str, source: str, data_dir: str, n: int, seed: int) -> str:
  # A few dozen documents: enough for both labels in each split, cheap for any source.
  cfg = dict(name=name, source=source, data_dir=data_dir, n_docs=max(4 * n, 40),
             n_test=max(n, 20), world_seed=0, n_topics=8, n_content_tokens=32,
             successors_per_token=2, transition_noise=0.3, header_agreement=0.8, min_len=16,
             max_len=32)
  splits = data.load_splits(cfg, seed)
  records = splits["A"]
  out = []
  for i in range(min(n, len(records["label"]))):
    if "text" in records:
      body = records["text"][i]
    elif "input_ids" in records:
      body = " ".join(map(str, records["input_ids"][i][records["attention_mask"][i] == 1]))
    else:  # an embedding task: its examples are rows of each model's file
      body = f"id {records['id'][i]}"
    out.append(f"--- {name} A[{i}] label={records['label'][i]}\n{body}")
  return "\n".join(out)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m w2s_jax.data", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = parser.add_subparsers(dest="command", required=True)
  sub.add_parser("list", help="the registered tasks")
  show_parser = sub.add_parser("show", help="a few formatted examples of one task")
  show_parser.add_argument("name")
  show_parser.add_argument("--source", default="hub", choices=sources.SOURCES)
  show_parser.add_argument("--data_dir", default="")
  show_parser.add_argument("--n", type=int, default=3)
  show_parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  try:
    print(list_tasks() if args.command == "list" else
          show(args.name, args.source, args.data_dir, args.n, args.seed))
  except W2SError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
