r"""Control for text.py: the same job with MiniLM's weights replaced by a random
initialisation of its architecture.

  python -m w2s_jax.main --config=configs/text_no_pretrain.py:sst2 --config.task.data_dir=DATA
"""

from configs import text


def get_config(arg=None):
  c = text.get_config(arg)
  c.strong.model.pretrained = False
  c.mid.model.pretrained = False
  return c
