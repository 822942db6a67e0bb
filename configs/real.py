r"""The field's canonical experiment offline: a small pretrained model (all-MiniLM-L6-v2, 22M)
supervises a large pretrained one (all-mpnet-base-v2, 110M) on real data.

  python -m w2s_jax.main --config=configs/real.py:sst2 --config.task.data_dir=DATA
  python -m w2s_jax.main --config=configs/real.py:boolq,random --config.task.data_dir=DATA
  python -m w2s_jax.main --config=configs/real.py:sciq,probe --config.task.data_dir=DATA \
      --seeds=0,1,2

The argument is a task (sst2, boolq, cosmos_qa, sciq: the plain files under DATA, read by the
same local loaders as configs/text.py), then options: "methods" (every method of
configs/default.py), "probe" (linear probes: both models frozen, a logistic head trained),
"random" (the control: the strong model starts from random weights), "bf16" (bfloat16
compute over float32 weights and optimizer state; on a CPU with AMX or AVX512-BF16 a step
takes about half the time: docs/performance.md). Both models read mean-pooled token states,
as sentence-transformers does; both install offline (README).

Hyperparameters, fixed before any run and never tuned on test (docs/real_models.md):
OpenAI's recipe of batch 32, 2 epochs, no warmup, Adam (0.9, 0.999), no weight decay, a
zero-initialised head; 1000 documents per split. Learning rates: 2e-4 for MiniLM (with 62
steps a zero-initialised head barely moves at the registry's 5e-5: configs/text.py) and half
of it, 1e-4, for MPNet, five times larger (OpenAI lowers the rate for its larger models);
1e-3 for a linear probe's head. Inputs are cut to max_ctx tokens (task below) so that an
MPNet phase on two CPU cores stays under ~10 minutes.
"""

from configs import default
from w2s_jax.models import registry

TASKS = {  # argument -> (task, max_ctx)
    "sst2": ("sst2", 64),
    "boolq": ("boolq", 128),
    "cosmos_qa": ("cosmos_qa", 128),
    "sciq": ("sciq_no_distractors", 64),  # the shared copy has no distractors
}
WEAK, STRONG = "all-MiniLM-L6-v2", "all-mpnet-base-v2"
LR = {WEAK: 2e-4, STRONG: 1e-4}
PROBE_LR = 1e-3
OPTIONS = ("methods", "probe", "random", "bf16")


def role(name: str, *, probe: bool, pretrained: bool = True, n_layers: int = 0,
         dtype: str = "float32") -> dict:
  """A registered model from its checkpoint (n_layers > 0: its first n_layers layers),
  computing in dtype."""
  return dict(model=dict(name=name, checkpoint="", pretrained=pretrained, n_layers=n_layers,
                         dtype=dtype, param_dtype="float32",
                         remat=False, remat_policy="full", scan_layers=False, lora_rank=0,
                         lora_alpha=16.0),
              train=default.train_section(lr=PROBE_LR if probe else LR[name], log_every=10),
              pooling=registry.get(name).pooling, head_init_std=0.0, linear_probe=probe,
              pretrain=default.no_pretraining())


def get_config(arg=None):
  """arg: "<task>[,methods][,probe][,random][,bf16]"."""
  parts = [p.strip() for p in (arg or "sst2").split(",") if p.strip()]
  if parts[0] not in TASKS:
    raise ValueError(f"unknown task {parts[0]!r}; choose from {', '.join(TASKS)}")
  options = set(parts[1:])
  if options - set(OPTIONS):
    raise ValueError(f"unknown options {sorted(options - set(OPTIONS))}; choose from "
                     f"{', '.join(OPTIONS)}")
  probe = "probe" in options
  c = default.get_config("methods" if "methods" in options else None)
  task, max_ctx = TASKS[parts[0]]
  c.task = dict(name=task, source="local", data_dir="", n_docs=2000, n_test=1000, n_val=0,
                max_ctx=max_ctx, long_docs="truncate", balance=True, test_seed=0)
  dtype = "bfloat16" if "bf16" in options else "float32"
  c.weak = role(WEAK, probe=probe, dtype=dtype)
  c.strong = role(STRONG, probe=probe, pretrained="random" not in options, dtype=dtype)
  # bootstrapping through MPNet's first half
  c.mid = role(STRONG, probe=probe, n_layers=6, dtype=dtype)
  c.eval_batch_size = registry.get(STRONG).eval_batch_size
  return c
