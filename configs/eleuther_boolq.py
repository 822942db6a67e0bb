r"""The EleutherAI setting: Qwen1.5-0.5B supervises Llama-3-8B on BoolQ, with LoRA.

  python -m w2s_jax.main --config=configs/eleuther_boolq.py      # needs the hub (or cache)
  python -m w2s_jax.main --config=configs/eleuther_boolq.py --config.mesh.fsdp=8

As in EleutherAI/w2s: datasets balanced 50/50 by undersampling, up to 10000 training
documents (halved into A and B), 1000 validation and 5000 test documents, long documents
truncated, 3 epochs, cosine schedule with 40 warmup steps, AdamW (weight decay 0.1, beta2
0.95), lr 5e-4 for the weak model and 8e-5 for the strong one, LoRA rank 8 on every block
projection (alpha 16), head initialised at 1% of the usual scale, batch 32; every 25 steps
the model is scored by validation AUROC against its supervisor's labels and the best
weights are kept. Bootstrapping (xent@boot) goes through Qwen2.5-1.5B.
"""

from configs import default
from w2s_jax.models import registry


def lora_role(name: str, lr: float) -> dict:
  spec = registry.get(name)
  return dict(
      model=dict(name=name, checkpoint="", pretrained=True, n_layers=0, dtype=spec.dtype,
                 param_dtype=spec.dtype, remat=spec.remat, remat_policy="full", scan_layers=False, lora_rank=8, lora_alpha=16.0),
      train=default.train_section(lr=lr, epochs=3.0, warmup_steps=40, weight_decay=0.1,
                                  b2=0.95, eval_every=25, select_best=True),
      pooling=spec.pooling, head_init_std=0.02 * 0.01, linear_probe=False)


def get_config(arg=None):
  c = default.get_config(arg)
  c.task = dict(name="boolq", source="hub", data_dir="", n_docs=10000, n_test=5000,
                n_val=1000, max_ctx=1024, long_docs="truncate", balance=True, test_seed=0)
  c.weak = lora_role("Qwen1.5-0.5B", 5e-4)
  c.strong = dict(lora_role("Llama-3-8B", 8e-5), pretrain=default.no_pretraining())
  c.mid = dict(lora_role("Qwen2.5-1.5B", 8e-5), pretrain=default.no_pretraining())
  c.student.losses = "xent,logconf"
  c.eval_batch_size = 16
  return c
