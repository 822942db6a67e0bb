r"""A sweep of measurement tampering detection: strong sizes × seeds on the vault task.

  python -m w2s_jax.sweep --config=configs/mtd_sweep.py
  python -m w2s_jax.sweep --config=configs/mtd_sweep.py:tiny   # seconds-long smoke run
  python -m w2s_jax.report runs/mtd_sweep                        # tables and figures

Each run is configs/mtd.py with one strong size; pretraining is shared by the runs of a
size, and every method of mtd.methods runs in each.
"""

import copy

from configs import mtd


def get_config(arg=None):
  """arg "tiny": two seeds × two methods on the tiny MTD config."""
  c = mtd.get_config("tiny" if arg == "tiny" else None)
  c.workdir = "runs/mtd_sweep"
  strong = c.strong.to_dict()
  half = copy.deepcopy(strong)
  half["model"].update(d_model=strong["model"]["d_model"] // 2)
  c.sizes = dict(strong_half=half, strong_full=strong)
  c.tasks = dict(vault=c.task.to_dict())
  c.sweep = dict(sizes="strong_half,strong_full", strong="strong_half,strong_full",
                 seeds="0,1,2", tasks="vault")
  if arg == "tiny":
    c.sweep.update(strong="strong_full", seeds="0,1")
    c.mtd.methods = "dirty,trusted_probe"
  elif arg:
    raise ValueError(f"unknown config argument {arg!r}; use :tiny or nothing")
  return c
