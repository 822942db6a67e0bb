r"""The offline default: weak-to-strong on the latent-topics task, on a CPU in minutes.

  python -m w2s_jax.main --config=configs/default.py
  python -m w2s_jax.main --config=configs/default.py --config.seed=1 \
      --config.student.losses=xent,logconf,xent@weak_ensemble,xent@knn_relabel

Documents come from hidden topics (a Markov chain per topic); the label is a function of the
topic, and a header token agrees with the label 80% of the time. The weak model is a
one-layer transformer trained from scratch on ground truth (split A); it learns the header.
The strong model is a two-layer transformer pretrained as a language model on unlabeled
documents from the same world (cached after the first run), then fine-tuned on the weak
model's soft labels (split B). See w2s_jax/data/latent_topics.py.

A student is "<loss>" (trained on the weak model's labels) or "<loss>@<supervisor>", with
the supervisors defined in `supervisors()` below: weak ensembles, strong-to-strong chains,
bootstrapping through an intermediate model (the `mid` section), probes that relabel or
filter, and external label files. docs/methods.md compares them.
"""

from ml_collections import config_dict


def train_section(**overrides):
  """Optimiser and batching of one model. bucket_window > 1 batches documents of similar
  length together (windows of that many batches are sorted by length); 0 shuffles plainly.
  eval_every > 0 scores the model every that many steps by validation AUROC against its
  supervisor's labels (needs task.n_val > 0): select_best keeps the best-scoring weights,
  early_stop_patience > 0 stops after that many scores without improvement. Checkpoints
  inside the phase (resumed by a rerun) are taken every checkpoint_every_steps steps and/or
  checkpoint_every_minutes minutes (0: not by that rule), the last checkpoints_kept kept.
  A loss above max_loss_ratio times its start stops the run (0: off). save_weights keeps
  the trained classifier in the phase folder. grad_accum_steps > 1 averages the gradients
  of that many micro-batches per update (batch 32 for a model that fits 8 at a time)."""
  section = dict(lr=1e-3, epochs=2.0, batch_size=32, grad_accum_steps=1, warmup_steps=0,
                 weight_decay=0.0, b1=0.9, b2=0.999, max_grad_norm=0.0, log_every=25,
                 bucket_window=8,
                 eval_every=0, select_best=False, early_stop_patience=0, **GUARDS,
                 save_weights=False)
  section.update(overrides)
  return section


# Checkpointing and the divergence guard, in every train and pretrain section.
GUARDS = dict(checkpoint_every_steps=0, checkpoint_every_minutes=10.0, checkpoints_kept=2,
              max_loss_ratio=100.0)


def pretrain_section(**overrides):
  """Language-model pretraining of a custom backbone, cached (enabled=False: none)."""
  section = dict(enabled=True, steps=1500, batch_size=64, grad_accum_steps=1, lr=3e-3,
                 warmup_steps=100, weight_decay=0.0, seed=0, log_every=100, **GUARDS)
  section.update(overrides)
  return section


def no_pretraining():
  """The pretrain section of a model that starts from its checkpoint."""
  return pretrain_section(enabled=False, steps=0, batch_size=32, lr=0.0, warmup_steps=0)


# RAVEN's schedule (weights frozen for the first half of training, disagreeing examples left
# out for the first half) and a step for the weights (docs/methods.md, "Learned weights")
RAVEN_SCHEDULE = dict(weight_lr=0.5, freeze_frac=0.5, easy_frac=0.5)


def supervisors(mid_role: str = "mid"):
  """The supervisors a student can name as <loss>@<name> (see w2s_jax/experiments/w2s/supervisors.py);
  "gt", the ground truth, is built in. `weak` is every plain student's supervisor."""
  probe = dict(kind="probe", of="weak", role="strong", layer=-1, contamination=0.1,
               k=50, l2=1e-3, k_cc=50, k_zeta=50)
  return dict(
      weak=dict(kind="model", role="weak", of="gt", split="A", loss="xent"),
      weak_ensemble=dict(kind="ensemble", members="weak", replicas=3),
      # the same members, weighted by weights learned with the student (RAVEN)
      raven=dict(kind="raven", members="weak", replicas=3, **RAVEN_SCHEDULE),
      # supervisors of different quality: the weak model, bootstrapping's intermediate model
      # and the kNN relabelling, averaged or weighted as the student learns
      mixed_ensemble=dict(kind="ensemble", members="weak,boot,knn_relabel"),
      mixed_raven=dict(kind="raven", members="weak,boot,knn_relabel", **RAVEN_SCHEDULE),
      # strong-to-strong: a student of the xent student (s2s), and of its student (s2s2)
      s2s=dict(kind="model", role="strong", of="weak", loss="xent", iters=1),
      s2s2=dict(kind="model", role="strong", of="weak", loss="xent", iters=2),
      # bootstrapping: weak -> intermediate model -> the student
      boot=dict(kind="model", role=mid_role, of="weak", loss="xent"),
      knn_relabel=dict(probe, probe="knn", mode="relabel"),
      knn_filter=dict(probe, probe="knn", mode="filter"),
      logreg_relabel=dict(probe, probe="logreg", mode="relabel"),
      logreg_filter=dict(probe, probe="logreg", mode="filter"),
      topo_relabel=dict(probe, probe="topo", mode="relabel"),
      topo_filter=dict(probe, probe="topo", mode="filter"),
      labels_file=dict(kind="file", path=""),  # --config.supervisors.labels_file.path=...
  )


def loss_sections():
  """Each loss's hyperparameters; an entry with `base` is a named variant of a loss."""
  return dict(
      xent=dict(),
      logconf=dict(a_max=0.5, warmup_frac=0.2, balance_batch=False),
      product=dict(alpha=1.0, beta=1.0),
      entropy=dict(a_max=0.5, warmup_frac=0.2, balance_batch=False),
      window=dict(radius=0.15),
      kl=dict(),
      adaptconf=dict(temperature=0.5),
      logconf_legacy=dict(a_max=0.5, warmup_frac=0.1),
      window_midweak=dict(base="window", radius="midweak"),
      logconf_balanced=dict(base="logconf", a_max=0.5, warmup_frac=0.2, balance_batch=True),
      # the hardening threshold over the last 256 predictions and this batch's
      logconf_buffered=dict(base="logconf", a_max=0.5, warmup_frac=0.2, buffer_size=256),
  )


# Every method: the losses on the weak model's labels, then xent on each other supervisor.
METHODS = ("xent", "logconf", "product", "entropy", "window", "window_midweak", "kl",
           "adaptconf", "logconf_balanced", "logconf_buffered", "xent@weak_ensemble",
           "xent@s2s", "xent@s2s2", "xent@boot", "xent@knn_relabel", "xent@knn_filter",
           "xent@logreg_relabel", "xent@logreg_filter", "xent@topo_relabel", "xent@topo_filter")


def get_config(arg=None):
  """arg "methods" runs every method in METHODS."""
  c = config_dict.ConfigDict()
  c.seed = 0
  c.workdir = "runs"
  # Training curves: TensorBoard events in <workdir>/tensorboard, W&B if asked for (and
  # installed), a progress line every progress_every_s seconds when stderr is no terminal.
  c.logging = dict(tensorboard=True, wandb=False, wandb_project="w2s_jax",
                   progress_every_s=30.0)
  c.mesh = dict(data=-1, fsdp=1, tensor=1)  # -1: the remaining devices
  c.eval_batch_size = 256

  c.task = dict(
      name="latent_topics", n_docs=4000, n_test=2000, n_val=500, world_seed=0,
      n_topics=8, n_content_tokens=32, successors_per_token=2, transition_noise=0.3,
      header_agreement=0.8, min_len=16, max_len=32)

  c.weak = dict(
      model=dict(arch="gpt2", d_model=32, n_layers=1, n_heads=2, d_mlp=128,
                 dtype="float32", remat=False, remat_policy="full",
                 scan_layers=False, lora_rank=0, lora_alpha=16.0),
      # From scratch, 2 epochs sometimes stop short of the header (1 seed in 6 at 0.54);
      # 4 epochs learn it for every seed tried (0-5). Near-equal lengths: one shape.
      train=train_section(lr=1e-3, epochs=4.0, bucket_window=0),
      pooling="last", head_init_std=0.0, linear_probe=False)

  c.strong = dict(
      model=dict(arch="gpt2", d_model=64, n_layers=2, n_heads=4, d_mlp=256,
                 dtype="float32", remat=False, remat_policy="full",
                 scan_layers=False, lora_rank=0, lora_alpha=16.0),
      train=train_section(lr=3e-4, bucket_window=0),
      pooling="last", head_init_std=0.0, linear_probe=False,
      pretrain=pretrain_section())

  # An intermediate model for bootstrapping (supervisors.boot): half the strong model's
  # width, pretrained on the same corpus.
  c.mid = dict(
      model=dict(arch="gpt2", d_model=32, n_layers=2, n_heads=2, d_mlp=128,
                 dtype="float32", remat=False, remat_policy="full",
                 scan_layers=False, lora_rank=0, lora_alpha=16.0),
      train=train_section(lr=3e-4, bucket_window=0),
      pooling="last", head_init_std=0.0, linear_probe=False,
      pretrain=pretrain_section())

  c.ceiling = dict(split="B")  # ground truth of split B: the inputs the student sees
  # vectorize: the students sharing a supervisor train with one compiled step (see
  # benchmarks/students.py), vectorize_chunk of them at a time (0: on a CPU each its own
  # call of the step, the calls running side by side, the same results bit for bit as
  # training alone; all of them vmapped on accelerators, the same within float rounding).
  c.student = dict(losses="xent,logconf,product", vectorize=False, vectorize_chunk=0)
  # Salience (docs/diagnostics.md): a logistic probe on the strong model's frozen features,
  # fitted to this many ground-truth labels of B (0: not measured).
  c.diagnostics = dict(salience_examples=100)
  c.supervisors = supervisors()
  c.losses = loss_sections()
  if arg == "methods":
    c.student.losses = ",".join(METHODS)
  elif arg:
    raise ValueError(f"unknown config argument {arg!r}; use :methods or nothing")
  return c
