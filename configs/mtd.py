r"""Measurement tampering detection on the vault task, offline, on a CPU in minutes.

  python -m w2s_jax.main --config=configs/mtd.py --seeds=0,1,2
  python -m w2s_jax.main --config=configs/mtd.py --config.mtd.methods=dirty,evidence_probe

Programs act on a vault with a diamond and three sensors; some actions fool a sensor (see
w2s_jax/data/vault.py). The strong model, a two-layer transformer pretrained as a language
model on records of programs and what happened (cached after the first run), is fine-tuned
to predict the sensors; each method in w2s_jax/experiments/mtd/methods.py then scores the untrusted
test examples whose sensors all say "diamond", and the table gives the AUROC of real
against fake positives. docs/mtd.md has the figures; configs/mtd_no_pretrain.py is the
control without pretraining.
"""

from ml_collections import config_dict

from configs import default


def get_config(arg=None):
  """arg "tiny": a seconds-long smoke run (numbers are not meaningful)."""
  c = config_dict.ConfigDict()
  c.experiment = "mtd"
  c.seed = 0
  c.workdir = "runs"
  c.logging = dict(tensorboard=True, wandb=False, wandb_project="w2s_jax",
                   progress_every_s=30.0)
  c.mesh = dict(data=-1, fsdp=1, tensor=1)
  c.eval_batch_size = 256
  # The training mix and the test mix follow Redwood Research's diamonds benchmark: 20%
  # trusted (half positive); untrusted with 10% fake positives in training, 40% in test.
  c.task = dict(
      name="vault", n_docs=4000, n_test=2000, world_seed=0, n_sensors=3, n_waits=4,
      min_len=10, max_len=16, tamper_weight=0.6,
      train_mix=dict(trusted_positive=0.1, trusted_negative=0.1, real_positive=0.32,
                     fake_positive=0.08, full_negative=0.28, inconsistent=0.12),
      test_mix=dict(trusted_positive=0.0, trusted_negative=0.0, real_positive=0.4,
                    fake_positive=0.4, full_negative=0.1, inconsistent=0.1))
  c.strong = dict(
      model=dict(arch="gpt2", d_model=64, n_layers=2, n_heads=4, d_mlp=256,
                 dtype="float32", remat=False, remat_policy="full",
                 scan_layers=False, lora_rank=0, lora_alpha=16.0),
      train=default.train_section(lr=1e-3, epochs=3.0, bucket_window=0),
      pooling="last", head_init_std=0.0, linear_probe=False,
      pretrain=default.pretrain_section())
  # aggregate_weight: the conjunction head's share of the loss (each sensor has the rest).
  c.mtd = dict(methods="dirty,ground_truth,trusted_probe,evidence_probe,exclusion",
               aggregate_weight=0.3, probe_l2=1e-3)
  if arg == "tiny":
    c.task.update(dict(n_docs=512, n_test=256, min_len=6, max_len=10))
    c.strong.model.update(dict(d_model=16, n_heads=2, d_mlp=32))
    c.strong.train.epochs = 1.0
    c.strong.pretrain.update(dict(steps=20, batch_size=32, warmup_steps=5, log_every=10))
    c.eval_batch_size = 64
  elif arg:
    raise ValueError(f"unknown config argument {arg!r}; use :tiny or nothing")
  return c
