r"""A whole weak-to-strong experiment, ours against a PyTorch + transformers pipeline written
the way the reference implementations run it, side by side.

  python benchmarks/experiment.py --data=../shared/data            # full fine-tuning
  python benchmarks/experiment.py --data=../shared/data --probe    # linear-probe students
  python benchmarks/experiment.py --data=../shared/data --quick    # a small slice (smoke test)
  python benchmarks/experiment.py --data=../shared/data --cold-only  # no warm rerun
  python benchmarks/experiment.py --data=../shared/data --our-dtypes=bfloat16 --pytorch-dtypes=float32,bfloat16
  python benchmarks/experiment.py --data=../shared/data --our-dtypes=float32,bfloat16 --together

The experiment: all-MiniLM-L6-v2 (weak) and all-mpnet-base-v2 (strong) on SST-2 from local
files (task.n_docs 2000: 1000 documents for the weak model, 1000 for the ceiling and the
students; 1000 test sentences), weak + ceiling + 4 students (xent, logconf, product,
entropy), each as configs/real.py:sst2 sets it: batch 32, 2 epochs, Adam without weight
decay on a cosine schedule without warmup, max length 64, the same learning rates.
--quick uses MiniLM as both models on 128 documents.

Ours: `python -m w2s_jax.main --config=configs/real.py:sst2[,probe]`, from cold (a fresh
workdir: no phases, no compiled programs) and warm (the compiled programs of the cold run
kept, its phases deleted, so every model trains again).
PyTorch: a transformers AutoModel per model with a linear head on its mean-pooled states,
AdamW, dynamic padding, each student trained separately from the pretrained weights; a
linear probe freezes all but the head and still runs the model every step, as the reference
implementations do. The model is the same function as ours: mean pooling (as
sentence-transformers and configs/real.py read these checkpoints), a zero-initialised
linear head, no dropout. AutoModelForSequenceClassification's heads read the first token
through a pooler these checkpoints never trained, which left a MiniLM probe at chance
(0.514).

Precision: float32 on both sides unless asked. --our-dtypes lists our variants to run:
float32 and/or bfloat16 (bfloat16 compute over float32 weights, configs/real.py's "bf16"
option); --bf16 is short for --our-dtypes=bfloat16. --pytorch-dtypes lists the PyTorch
variants to run, float32 (the reference implementations on a CPU) and/or bfloat16 (the same
pipeline under torch.autocast, float32 weights: the matched-precision comparison).

Each side runs in its own process, alternating, --rounds times; the figures are medians.
Both sides read the same documents (our loader). Needs torch and transformers (the test
extra).
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
STUDENTS = ("xent", "logconf", "product", "entropy")


def our_command(args, dtype: str, workdir: pathlib.Path) -> list[str]:
  config = ("configs/real.py:sst2" + (",probe" if args.probe else "")
            + (",bf16" if dtype == "bfloat16" else ""))
  command = [sys.executable, "-m", "w2s_jax.main", f"--config={config}",
             f"--config.task.data_dir={args.data}", f"--config.workdir={workdir}",
             f"--config.student.losses={','.join(STUDENTS)}"]
  if args.together:
    command.append("--config.student.vectorize=True")
  if args.quick:
    command += quick_overrides()
  return command


def quick_overrides() -> list[str]:
  return ["--config.task.n_docs=128", "--config.task.n_test=64",
          "--config.strong.model.name=all-MiniLM-L6-v2", "--config.eval_batch_size=32",
          "--config.strong.train.lr=2e-4"]


def run_ours(args, dtype: str, workdir: pathlib.Path) -> dict:
  start = time.perf_counter()
  proc = subprocess.run(our_command(args, dtype, workdir), cwd=REPO, capture_output=True, text=True)
  wall = time.perf_counter() - start
  if proc.returncode:
    sys.exit(f"ours failed:\n{proc.stderr[-2000:]}")
  results = json.loads(next(workdir.glob("results/*/results.json")).read_text())
  accuracy = {"weak": results["weak"]["accuracy"], "ceiling": results["ceiling"]["accuracy"],
              **{s: results["students"][s]["accuracy"] for s in STUDENTS}}
  phases = {name: phase["wall_s"] for name, phase in results["phases"].items()}
  return {"wall_s": wall, "accuracy": accuracy, "phases": phases}


def run_pytorch(args, dtype: str) -> dict:
  command = [sys.executable, __file__, "--side=pytorch", f"--data={args.data}",
             f"--pytorch-dtypes={dtype}"]
  command += ["--probe"] * args.probe + ["--quick"] * args.quick
  start = time.perf_counter()
  proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
  wall = time.perf_counter() - start
  if proc.returncode:
    sys.exit(f"pytorch failed:\n{proc.stderr[-2000:]}")
  return {"wall_s": wall, "accuracy": json.loads(proc.stdout.strip().splitlines()[-1])}


# ---------------------------------------------------------------- the PyTorch pipeline

def pytorch_pipeline(args) -> dict:
  """Weak, ceiling and students, each trained as the reference implementations do."""
  import numpy as np
  import torch
  import torch.nn.functional as F
  from transformers import AutoModel, AutoTokenizer

  from configs import real
  from w2s_jax import data, models

  cfg = real.get_config("sst2,probe" if args.probe else "sst2").to_dict()
  cfg["task"]["data_dir"] = args.data
  weak_name, strong_name = real.WEAK, real.STRONG
  lrs = {weak_name: cfg["weak"]["train"]["lr"], strong_name: cfg["strong"]["train"]["lr"]}
  if args.quick:
    cfg["task"].update(n_docs=128, n_test=64)
    strong_name = weak_name
    lrs[strong_name] = 2e-4
  splits = data.load_splits(cfg["task"], cfg["seed"])
  max_len, batch_size, epochs = cfg["task"]["max_ctx"], 32, 2
  torch.manual_seed(cfg["seed"])
  # bfloat16: autocast over float32 weights, as mixed-precision training runs in PyTorch
  autocast = torch.autocast("cpu", dtype=torch.bfloat16,
                            enabled=args.pytorch_dtypes == "bfloat16")

  class MeanPooledClassifier(torch.nn.Module):
    def __init__(self, folder):
      super().__init__()
      # no dropout, as ours (the recipes we replicate fine-tune without it)
      self.backbone = AutoModel.from_pretrained(folder, add_pooling_layer=False,
                                                hidden_dropout_prob=0.0,
                                                attention_probs_dropout_prob=0.0)
      self.head = torch.nn.Linear(self.backbone.config.hidden_size, 2)
      torch.nn.init.zeros_(self.head.weight)
      torch.nn.init.zeros_(self.head.bias)

    def forward(self, input_ids, attention_mask, **_):
      states = self.backbone(input_ids=input_ids, attention_mask=attention_mask)[0]
      mask = attention_mask.unsqueeze(-1).to(states.dtype)
      return self.head((states * mask).sum(1) / mask.sum(1).clamp(min=1))

  def load(name):
    folder = str(models.checkpoint_folder({"name": name}))
    model = MeanPooledClassifier(folder)
    if args.probe:
      model.backbone.requires_grad_(False)
    return AutoTokenizer.from_pretrained(folder), model

  def batches(tokenizer, texts, order):
    for start in range(0, len(order), batch_size):
      rows = order[start:start + batch_size]
      yield rows, tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                            max_length=max_len, return_tensors="pt")

  def loss_fn(name, logits, targets, frac):
    log_p = F.log_softmax(logits.float(), -1)
    p = log_p.exp().detach()
    a = 0.5 * min(frac / 0.2, 1.0)
    if name == "xent":
      target = targets
    elif name == "logconf":  # hardened at the batch's label-mean quantile
      threshold = torch.quantile(p[:, 1], 1 - targets[:, 1].mean())
      hard = F.one_hot((p[:, 1] > threshold).long(), 2).float()
      target = (1 - a) * targets + a * hard
    elif name == "entropy":
      target = (1 - a) * targets + a * p
    else:  # product
      target = F.softmax(torch.log(targets + 1e-38) + log_p.detach(), -1)
    return -(target * log_p).sum(-1).mean()

  def train(name, texts, targets, loss="xent"):
    tokenizer, model = load(name)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    steps = epochs * math.ceil(len(texts) / batch_size)
    optimizer = torch.optim.AdamW(params, lr=lrs[name], weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    targets = torch.tensor(targets, dtype=torch.float32)
    step = 0
    for epoch in range(epochs):
      order = np.random.default_rng([cfg["seed"], epoch]).permutation(len(texts))
      for rows, batch in batches(tokenizer, texts, order):
        with autocast:
          logits = model(**batch)
        loss_value = loss_fn(loss, logits, targets[rows], step / steps)
        optimizer.zero_grad()
        loss_value.backward()
        optimizer.step()
        schedule.step()
        step += 1
    return tokenizer, model

  @torch.no_grad()
  def predict(tokenizer, model, texts):
    model.eval()
    out = np.zeros(len(texts), np.float32)
    for rows, batch in batches(tokenizer, texts, np.arange(len(texts))):
      with autocast:
        logits = model(**batch)
      out[rows] = F.softmax(logits.float(), -1)[:, 1].numpy()
    return out

  def one_hot(labels):
    return np.stack([1 - labels, labels], -1).astype(np.float32)

  texts = {s: list(splits[s]["text"]) for s in ("A", "B", "test")}
  truth = splits["test"]["label"]
  accuracy = {}
  weak = train(weak_name, texts["A"], one_hot(splits["A"]["label"]))
  weak_labels = predict(*weak, texts["B"])
  accuracy["weak"] = float(((predict(*weak, texts["test"]) > 0.5) == truth).mean())
  ceiling = train(strong_name, texts["B"], one_hot(splits["B"]["label"]))
  accuracy["ceiling"] = float(((predict(*ceiling, texts["test"]) > 0.5) == truth).mean())
  for loss in STUDENTS:
    student = train(strong_name, texts["B"], one_hot(weak_labels), loss)
    accuracy[loss] = float(((predict(*student, texts["test"]) > 0.5) == truth).mean())
  return accuracy


# ---------------------------------------------------------------- side by side

def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
  parser.add_argument("--probe", action="store_true")
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--rounds", type=int, default=1)
  parser.add_argument("--cold-only", action="store_true",
                      help="skip our warm run (the acceptance figure is the cold one)")
  parser.add_argument("--our-dtypes", default="float32",
                      help="our variants, comma-separated: float32 and/or bfloat16 (bfloat16 "
                           "compute over float32 weights)")
  parser.add_argument("--bf16", action="store_true", help="short for --our-dtypes=bfloat16")
  parser.add_argument("--together", action="store_true",
                      help="our students train together (student.vectorize: one compiled "
                           "step, each student stepped from a thread of its own)")
  parser.add_argument("--pytorch-dtypes", default="float32",
                      help="PyTorch variants, comma-separated: float32 and/or bfloat16 "
                           "(autocast)")
  parser.add_argument("--side", choices=("both", "pytorch"), default="both")
  args = parser.parse_args()
  dtypes = {}
  for flag, value in (("--our-dtypes", "bfloat16" if args.bf16 else args.our_dtypes),
                      ("--pytorch-dtypes", args.pytorch_dtypes)):
    dtypes[flag] = [d.strip() for d in value.split(",") if d.strip()]
    if not dtypes[flag] or set(dtypes[flag]) - {"float32", "bfloat16"}:
      parser.error(f"{flag}={value!r}: give float32 and/or bfloat16")
  our_dtypes, pytorch_dtypes = dtypes["--our-dtypes"], dtypes["--pytorch-dtypes"]
  if args.side == "pytorch":
    sys.path.insert(0, str(REPO))
    print(json.dumps(pytorch_pipeline(args)))
    return
  our_sides = [f"ours {d}" for d in our_dtypes]
  pytorch_sides = [f"pytorch {d}" for d in pytorch_dtypes]
  figures = {**{f"{side} {when}": [] for side in our_sides for when in ("cold", "warm")},
             **{side: [] for side in pytorch_sides}}
  accuracies = {}
  for round_index in range(args.rounds):
    order = [*our_sides, *pytorch_sides]
    order = order if round_index % 2 == 0 else order[::-1]
    for side in order:
      library, dtype = side.split()
      if library == "pytorch":
        result = run_pytorch(args, dtype)
        figures[side].append(result["wall_s"])
        accuracies[side] = result["accuracy"]
        continue
      workdir = pathlib.Path(tempfile.mkdtemp(prefix="w2s_experiment_"))
      try:
        cold = run_ours(args, dtype, workdir)
        figures[f"{side} cold"].append(cold["wall_s"])
        print(f"  {side} cold, seconds by phase: " + ", ".join(
            f"{name} {seconds:.0f}" for name, seconds in cold["phases"].items()), flush=True)
        if not args.cold_only:
          for finished in ("phases", "results", "tensorboard"):
            shutil.rmtree(workdir / finished, ignore_errors=True)
          figures[f"{side} warm"].append(run_ours(args, dtype, workdir)["wall_s"])
      finally:
        shutil.rmtree(workdir, ignore_errors=True)
      accuracies[side] = cold["accuracy"]
    print(f"round {round_index + 1}: " + ", ".join(f"{k} {v[-1]:.0f} s"
                                                   for k, v in figures.items() if v),
          flush=True)
  median = {k: statistics.median(v) for k, v in figures.items() if v}
  kind = "linear-probe" if args.probe else "full fine-tuning"
  print(f"\n{kind} experiment{' (quick)' if args.quick else ''}: weak + ceiling + "
        f"{len(STUDENTS)} students, median of {args.rounds} round(s)"
        f"{'; our students together' if args.together else ''}")
  for name, seconds in median.items():
    print(f"  {name:20s} {seconds:8.1f} s")
  for ours in our_sides:
    for side in pytorch_sides:
      print(f"  {ours} against {side}, cold: {median[side] / median[f'{ours} cold']:.2f}x"
            + (f"; warm: {median[side] / median[f'{ours} warm']:.2f}x"
               if f"{ours} warm" in median else ""))
  models_ = ["weak", "ceiling", *STUDENTS]
  print("  test accuracy         " + "  ".join(f"{m:>8s}" for m in models_))
  for side, accuracy in accuracies.items():
    print(f"  {side:20s}  " + "  ".join(f"{accuracy[m]:8.3f}" for m in models_))


if __name__ == "__main__":
  main()
