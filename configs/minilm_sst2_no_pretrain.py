r"""Control for minilm_sst2.py: the same job with MiniLM's weights replaced by a random
initialisation of its architecture.

  python -m w2s_jax.main --config=configs/minilm_sst2_no_pretrain.py --config.task.data_dir=DATA

Without pretraining, the strong model has no knowledge of sentiment beyond its labels.
"""

from configs import minilm_sst2


def get_config(arg=None):
  c = minilm_sst2.get_config(arg)
  c.strong.model.pretrained = False
  c.mid.model.pretrained = False
  return c
