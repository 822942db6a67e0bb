r"""The control for configs/mtd.py: the same strong model without pretraining.

  python -m w2s_jax.main --config=configs/mtd_no_pretrain.py --seeds=0,1,2

Without the language-model pretraining on records of programs and outcomes, the strong
model knows only what fine-tuning on the sensors teaches it.
"""

from configs import mtd


def get_config(arg=None):
  c = mtd.get_config(arg)
  c.strong.pretrain.enabled = False
  return c
