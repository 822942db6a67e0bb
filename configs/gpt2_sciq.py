r"""The OpenAI setting: gpt2 supervises gpt2-xl on SciQ, students with xent and logconf.

  python -m w2s_jax.main --config=configs/gpt2_sciq.py            # needs the hub (or cache)
  python -m w2s_jax.main --config=configs/gpt2_sciq.py --config.strong.model.name=gpt2-large

As in openai/weak-to-strong's train_simple.py: 20000 training documents (capped by the split)
halved into A and B, 10000 test documents, documents of 1024 tokens or more dropped, batch 32,
2 epochs, Adam without weight decay, cosine decay to 0 with no warmup, zero-initialised head
on the last token, learning rate per model. The ceiling trains on split B (see DESIGN: the
student's inputs); set ceiling.split=A for OpenAI's choice.
"""

from configs import default
from w2s_jax.models import registry


def model_role(name: str, **train_overrides) -> dict:
  spec = registry.get(name)
  return dict(model=dict(name=name, checkpoint="", pretrained=True, n_layers=0,
                         dtype=spec.dtype, remat=spec.remat, remat_policy="full", scan_layers=False, lora_rank=0, lora_alpha=16.0),
              train=default.train_section(lr=spec.lr, **train_overrides),
              pooling=spec.pooling, head_init_std=0.0, linear_probe=False)


def get_config(arg=None):
  c = default.get_config(arg)
  c.task = dict(name="sciq", source="hub", data_dir="", n_docs=20000, n_test=10000, n_val=0,
                max_ctx=1024, long_docs="drop", balance=False, test_seed=0)
  c.weak = model_role("gpt2")
  c.strong = dict(model_role("gpt2-xl"), pretrain=default.no_pretraining())
  c.mid = dict(model_role("gpt2-medium"), pretrain=default.no_pretraining())  # bootstrapping
  c.student.losses = "xent,logconf"
  c.eval_batch_size = registry.get("gpt2-xl").eval_batch_size
  return c
