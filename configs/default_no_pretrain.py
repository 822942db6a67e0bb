r"""Control for the default: the same job, but the strong model skips pretraining.

  python -m w2s_jax.main --config=configs/default_no_pretrain.py

With no latent knowledge to draw on, the strong student can only imitate its supervisor.
"""

from configs import default


def get_config(arg=None):
  c = default.get_config(arg)
  c.strong.pretrain.enabled = False
  return c
