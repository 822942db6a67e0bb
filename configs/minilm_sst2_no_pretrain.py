r"""Control for minilm_sst2.py: the same job with MiniLM's weights replaced by a random
initialisation of its architecture.

  python -m w2s_jax.main --config=configs/minilm_sst2_no_pretrain.py --config.task.data_dir=DATA

Without pretraining, the strong model has no knowledge of sentiment beyond its labels.
"""

from configs import text_no_pretrain


def get_config(arg=None):
  return text_no_pretrain.get_config(f"sst2,{arg}" if arg else "sst2")
