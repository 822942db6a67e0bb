r"""A real pretrained strong model offline: all-MiniLM-L6-v2 supervised by a small encoder
trained from scratch, on SST-2 (configs/text.py with task sst2).

  python -m w2s_jax.main --config=configs/minilm_sst2.py --config.task.data_dir=DATA
  python -m w2s_jax.main --config=configs/minilm_sst2.py:methods --config.task.data_dir=DATA \
      --seeds=0,1,2                                   # every method (docs/methods.md)

DATA holds sst2/train.tsv and sst2/dev.tsv (the GLUE SST-2 release, label column first;
test = dev, as the anchors use the validation split). A weak model cut from MiniLM itself is
pretrained like its student, and showed no W2SG; one trained from scratch does. The control,
minilm_sst2_no_pretrain.py, starts MiniLM from random weights.
"""

from configs import text


def get_config(arg=None):
  """arg "methods" runs every method."""
  return text.get_config(f"sst2,{arg}" if arg else "sst2")
