r"""A sweep over the offline task: 2 weak × 2 strong sizes × 3 losses × 3 seeds.

  python -m w2s_jax.sweep --config=configs/sweep.py
  python -m w2s_jax.sweep --config=configs/sweep.py --dry_run     # done and left
  python -m w2s_jax.report runs/sweep                             # tables and figures

Weak sizes are one-layer transformers trained from scratch on split A (they learn the
header); strong sizes are two-layer transformers pretrained as language models on the
task's unlabeled documents (half and full width of configs/default.py's strong model).
"""

import copy

from configs import default


def get_config(arg=None):
  c = default.get_config(arg)
  c.workdir = "runs/sweep"
  weak, strong = c.weak.to_dict(), c.strong.to_dict()
  weak_wide = copy.deepcopy(weak)
  weak_wide["model"].update(d_model=64, n_heads=4, d_mlp=256)
  c.sizes = dict(weak_d32=weak, weak_d64=weak_wide, strong_d32=c.mid.to_dict(),
                 strong_d64=strong)
  c.tasks = dict(latent_topics=c.task.to_dict())
  c.sweep = dict(sizes="weak_d32,weak_d64,strong_d32,strong_d64", weak="weak_d32,weak_d64",
                 strong="strong_d32,strong_d64", seeds="0,1,2", tasks="latent_topics")
  return c
