r"""A seconds-long smoke run of the whole pipeline (numbers are not meaningful).

  python -m w2s_jax.main --config=configs/tiny.py
"""

from configs import default


def get_config(arg=None):
  c = default.get_config(arg)
  c.task.update(dict(n_docs=256, n_test=128, n_val=64, n_topics=4, n_content_tokens=8,
                     min_len=6, max_len=10))
  for role in ("weak", "strong", "mid"):
    c[role].model.update(dict(d_model=16, n_heads=2, d_mlp=32))
    c[role].train.epochs = 1.0
  for role in ("strong", "mid"):
    c[role].pretrain.update(dict(steps=20, batch_size=32, warmup_steps=5, log_every=10))
  c.mid.model.d_model = 8
  for probe in ("knn", "topo"):
    for mode in ("relabel", "filter"):
      c.supervisors[f"{probe}_{mode}"].update(dict(k=8, k_cc=32, k_zeta=8))
  c.eval_batch_size = 64
  c.diagnostics.salience_examples = 0  # a smoke run: no extra phases
  return c
