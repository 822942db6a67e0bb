r"""Embedding tasks (OpenAI's vision setting): heads trained on a weak and a strong model's
precomputed features of the same examples.

  python -m w2s_jax.embed --config=configs/real.py:sst2 --config.task.data_dir=DATA \
      --out=FOLDER                      # writes FOLDER from MiniLM-L6 and MPNet on SST-2
  python -m w2s_jax.main --config=configs/embeddings.py --config.task.data_dir=FOLDER
  python -m w2s_jax.main --config=configs/embeddings.py:clip,dinov2,mlp \
      --config.task.data_dir=FOLDER     # features brought from elsewhere (docs/embeddings.md)

The argument names the weak and the strong model's files in the folder (<name>.npz; default
all-MiniLM-L6-v2,all-mpnet-base-v2), then options: "mlp" (a one-hidden-layer MLP of width
256 instead of a linear head, for both) and "methods" (every method of configs/default.py).

The recipe is the linear probes' of configs/real.py, fixed before any run: batch 32, 2
epochs, no warmup, Adam (0.9, 0.999), no weight decay, a zero-initialised head, learning rate
1e-3; 1000 examples per split. The bootstrapping supervisor's intermediate model is a head on
the strong features.
"""

from configs import default

DEFAULT_MODELS = ("all-MiniLM-L6-v2", "all-mpnet-base-v2")
LR = 1e-3
MLP_WIDTH = 256
OPTIONS = ("mlp", "methods")


def head(features: str, hidden: int) -> dict:
  return dict(model=dict(arch="head", features=features, hidden=hidden),
              train=default.train_section(lr=LR, log_every=10), pooling="mean",
              head_init_std=0.0, linear_probe=False, pretrain=default.no_pretraining())


def get_config(arg=None):
  """arg: "[<weak>,<strong>][,mlp][,methods]"."""
  parts = [p.strip() for p in (arg or "").split(",") if p.strip()]
  options = [p for p in parts if p in OPTIONS]
  names = [p for p in parts if p not in OPTIONS] or list(DEFAULT_MODELS)
  if len(names) != 2:
    raise ValueError(f"name the weak and the strong model's files, e.g. "
                     f"{','.join(DEFAULT_MODELS)}; got {names}")
  hidden = MLP_WIDTH if "mlp" in options else 0
  c = default.get_config("methods" if "methods" in options else None)
  c.task = dict(name="embeddings", data_dir="", n_docs=2000, n_test=1000, n_val=0,
                balance=True, test_seed=0)
  c.weak = head(names[0], hidden)
  c.strong = head(names[1], hidden)
  c.mid = head(names[1], hidden)
  return c
