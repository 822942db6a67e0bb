r"""Training-step throughput: ours against a PyTorch eager loop on the same model, side by side.

  python benchmarks/throughput.py                              # gpt2 and minilm
  python benchmarks/throughput.py --shapes=mpnet                # all-mpnet-base-v2
  python benchmarks/throughput.py --shapes=gpt2 --rounds=5
  python benchmarks/throughput.py --custom=n_layers=8,d_model=512,n_heads=8,vocab=16384,batch=16,seq=256
  python benchmarks/throughput.py --shapes=mpnet --forward      # the pooled forward only
  python benchmarks/throughput.py --shapes=mpnet --together=4   # students' steps side by side
  python benchmarks/throughput.py --shapes=gpt2-xl,qwen2.5-1.5b --dtype=bfloat16   # on a GPU

Shapes: "gpt2", a GPT-2-shaped classifier (4 layers, d 256, 4 heads, vocab 8192) on batch
32 x 128 tokens; "minilm" and "mpnet", the real all-MiniLM-L6-v2 and all-mpnet-base-v2
(offline packages) with mean pooling on batch 32 x 64. Both sides: a linear head on the pooled state, soft-label cross-entropy, Adam
(lr 1e-4, no weight decay), float32 unless --dtype, no dropout, the default thread counts.
--dtype=bfloat16 is mixed precision on both sides: float32 weights and Adam state, bfloat16
compute (ours: model.dtype; PyTorch: torch.autocast).
Each side runs in its own worker process (so neither's thread pool spins against the
other's), started with the same environment; rounds alternate between them, each timing
--steps steps after warm-up, and the figures are medians over rounds. --forward times the
pooled forward alone (ours: the compiled predict step that frozen features and evaluation
use; PyTorch: under torch.no_grad), the work a linear probe on frozen features does.
--together=N times ours only: N students' steps on one batch (one compiled step, N states)
called in turn, against the same calls made from N threads as students trained together
are on a CPU (train.each_student). Needs torch and transformers (the test extra).

"gpt2-xl" and "qwen2.5-1.5b" are those models' shapes (from their config.json files, random
weights, mean pooling so that both sides run every position) on batch 8 x 1024, for an
accelerator. On a GPU the PyTorch side runs on CUDA where torch has it. MFU is the model's
FLOPs per step (6 x matmul parameters x tokens, plus 12 x layers x attention width x
sequence x tokens for attention, PaLM's count) over the step time and the device's dense
bfloat16 peak: --peak-tflops, or a table of known accelerators; none is printed for a CPU.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib.util
import multiprocessing
import os
import statistics
import sys
import time

# Both sides' processes share one accelerator: JAX's default preallocation (75% of its
# memory) would leave PyTorch too little. No effect on a CPU.
os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.45")

import jax
import jax.numpy as jnp
import numpy as np

from w2s_jax import losses, models, sharding, train

SHAPES = {
    "gpt2": dict(family="gpt2", n_layers=4, d_model=256, n_heads=4, vocab=8192, batch=32,
                 seq=128, pooling="last"),
    "minilm": dict(family="registered", model="all-MiniLM-L6-v2", batch=32, seq=64,
                   pooling="mean"),
    "mpnet": dict(family="registered", model="all-mpnet-base-v2", batch=32, seq=64,
                  pooling="mean"),
    # From openai-community/gpt2-xl's and Qwen/Qwen2.5-1.5B's config.json.
    "gpt2-xl": dict(family="gpt2", n_layers=48, d_model=1600, n_heads=25, vocab=50257,
                    batch=8, seq=1024, pooling="mean"),
    "qwen2.5-1.5b": dict(family="llama", n_layers=28, d_model=1536, n_heads=12, n_kv_heads=2,
                         d_mlp=8960, vocab=151936, rope_theta=1e6, batch=8, seq=1024,
                         pooling="mean"),
}
# Dense bfloat16 peak TFLOP/s per device, by a substring of jax's device_kind (first match).
PEAK_TFLOPS = (("H100 PCIe", 756.0), ("H100", 989.0), ("H200", 989.0), ("A100", 312.0),
               ("TPU v4", 275.0), ("TPU v5 lite", 197.0), ("TPU v5p", 459.0),
               ("TPU v6 lite", 918.0))


def inputs(shape, vocab, seed=0):
  rng = np.random.default_rng(seed)
  ids = rng.integers(1, vocab, size=(shape["batch"], shape["seq"])).astype(np.int32)
  mask = np.ones_like(ids)
  labels = rng.random(shape["batch"]).astype(np.float32)
  return ids, mask, np.stack([1 - labels, labels], -1)


# ---------------------------------------------------------------- ours

def our_model_config(shape, dtype):
  if shape["family"] == "registered":
    return {"name": shape["model"], "dtype": dtype, "param_dtype": "float32"}
  common = dict(vocab_size=shape["vocab"], d_model=shape["d_model"],
                n_layers=shape["n_layers"], n_heads=shape["n_heads"], dtype=dtype)
  if shape["family"] == "llama":
    return dict(arch="llama", n_kv_heads=shape["n_kv_heads"], d_mlp=shape["d_mlp"],
                rope_theta=shape["rope_theta"], max_positions=shape["seq"],
                attention_bias=True, **common)
  return dict(arch="gpt2", n_positions=shape["seq"], **common)


def step_flops(shape, dtype) -> float:
  """Model FLOPs of one train step (PaLM's count; see the module's docstring)."""
  model = models.build_classifier(our_model_config(shape, dtype), pooling=shape["pooling"])
  ids = np.zeros((1, shape["seq"]), np.int32)
  params = jax.eval_shape(lambda: model.init(jax.random.key(0), ids, np.ones_like(ids)))
  matmul = sum(leaf.size for path, leaf in jax.tree_util.tree_leaves_with_path(params)
               if "kernel" in jax.tree_util.keystr(path))
  config = model.backbone.config
  attention_width = config.n_heads * (getattr(config, "head_dim", 0)
                                      or config.d_model // config.n_heads)
  tokens = shape["batch"] * shape["seq"]
  return tokens * (6 * matmul + 12 * config.n_layers * attention_width * shape["seq"])


def peak_tflops(given: float, device_kind: str) -> float | None:
  if given:
    return given
  return next((peak for name, peak in PEAK_TFLOPS if name in device_kind), None)


def ours(shape, dtype, forward=False, together=0):
  """A function running one train step, or with `forward` one pooled forward (blocking),
  and the vocabulary size. With `together` > 1: {"in turn", "threads"}, functions stepping
  that many students' states once each."""
  model_cfg = our_model_config(shape, dtype)
  build = models.build_pooled if forward else models.build_classifier
  model = build(model_cfg, pooling=shape["pooling"])
  vocab = model.backbone.config.vocab_size
  ids, mask, labels = inputs(shape, vocab)
  batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
  mesh = sharding.make_mesh({"data": 1}, devices=jax.devices()[:1])
  tx = train.make_optimizer(train.TrainSettings(lr=1e-4), 10**6)
  abstract, shardings = train.describe_state(model, tx, mesh, batch)
  backbone = models.pretrained_backbone_params(model_cfg, abstract["params"]["backbone"])
  state = train.init_state(model, tx, shardings, batch, 0, backbone)
  batch_sharding = sharding.batch_sharding(mesh)
  if forward:
    predict = train.make_predict_step(model, shardings["params"], batch_sharding)
    inputs_only = sharding.put_batch({"input_ids": ids, "attention_mask": mask},
                                     batch_sharding)

    def run_forward():
      jax.block_until_ready(predict(state["params"], inputs_only))
    return run_forward, vocab
  step = train.make_train_step(
      train.classification_objective(model, losses.get_loss("xent"), 10**6), tx, shardings,
      batch_sharding)
  placed = sharding.put_batch(batch, batch_sharding)
  if together > 1:
    states = [jax.tree.map(jnp.copy, state) for _ in range(together)]
    pool = concurrent.futures.ThreadPoolExecutor(together)

    def step_one(index):
      states[index], metrics = step(states[index], placed)
      jax.block_until_ready(metrics["loss"])

    return {"in turn": lambda: [step_one(i) for i in range(together)],
            "threads": lambda: list(train.each_student(step_one, range(together), pool))}, vocab
  holder = {"state": state}

  def run():
    holder["state"], metrics = step(holder["state"], placed)
    jax.block_until_ready(metrics["loss"])
  return run, vocab


# ---------------------------------------------------------------- PyTorch

def pytorch(shape, dtype, vocab, forward=False):
  import torch
  import transformers
  device = "cuda" if torch.cuda.is_available() else "cpu"
  # bfloat16: autocast over float32 weights, as ours keeps float32 master weights
  autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=dtype == "bfloat16")
  if shape["family"] == "registered":
    folder = models.checkpoint_folder({"name": shape["model"]})
    backbone = transformers.AutoModel.from_pretrained(str(folder))
  elif shape["family"] == "llama":
    backbone = transformers.Qwen2Model(transformers.Qwen2Config(
        vocab_size=shape["vocab"], hidden_size=shape["d_model"],
        num_hidden_layers=shape["n_layers"], num_attention_heads=shape["n_heads"],
        num_key_value_heads=shape["n_kv_heads"], intermediate_size=shape["d_mlp"],
        rope_theta=shape["rope_theta"], max_position_embeddings=shape["seq"],
        attention_dropout=0.0))
  else:
    backbone = transformers.GPT2Model(transformers.GPT2Config(
        vocab_size=shape["vocab"], n_positions=shape["seq"], n_embd=shape["d_model"],
        n_layer=shape["n_layers"], n_head=shape["n_heads"], resid_pdrop=0.0, embd_pdrop=0.0,
        attn_pdrop=0.0))
  backbone = backbone.train()
  for module in backbone.modules():  # no dropout, as ours
    if isinstance(module, torch.nn.Dropout):
      module.p = 0.0
  head = torch.nn.Linear(backbone.config.hidden_size, 2)
  torch.nn.init.zeros_(head.weight)
  torch.nn.init.zeros_(head.bias)
  backbone, head = backbone.to(device), head.to(device)
  params = list(backbone.parameters()) + list(head.parameters())
  optimizer = torch.optim.Adam(params, lr=1e-4)
  ids, mask, labels = (torch.tensor(a, device=device) for a in inputs(shape, vocab))
  ids, mask = ids.long(), mask.long()

  def pooled_state():
    with autocast:
      hidden = backbone(input_ids=ids, attention_mask=mask).last_hidden_state
    hidden = hidden.float()
    if shape["pooling"] == "mean":
      weights = mask[..., None].float()
      return (hidden * weights).sum(1) / weights.sum(1)
    last = (mask * torch.arange(mask.shape[1], device=device)).argmax(1)  # last real token
    return hidden[torch.arange(len(last), device=device), last]

  def finish():  # CUDA runs asynchronously: a step ends when the device is done
    if device == "cuda":
      torch.cuda.synchronize()

  if forward:
    backbone.eval()

    @torch.no_grad()
    def run_forward():
      pooled_state()
      finish()
    return run_forward

  def run():
    loss = torch.nn.functional.cross_entropy(head(pooled_state()).float(), labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    finish()
  return run


# ---------------------------------------------------------------- timing

def timed(run, steps):
  start = time.perf_counter()
  for _ in range(steps):
    run()
  return (time.perf_counter() - start) / steps


def worker(side, shape, dtype, forward, connection):
  """Builds one side's step in this process, then times `steps` steps per request."""
  about = {}
  if side == "ours":
    run, _ = ours(shape, dtype, forward)
    about = {"device": jax.devices()[0].device_kind, "flops": step_flops(shape, dtype)}
  else:
    vocab = shape.get("vocab") or models.build_backbone(
        {"name": "all-MiniLM-L6-v2"}).config.vocab_size
    run = pytorch(shape, dtype, vocab, forward)
  timed(run, 2)  # compile / warm up
  connection.send(about)
  while (steps := connection.recv()) is not None:
    connection.send(timed(run, steps))


def compare(name, shape, dtype, steps, rounds, forward=False, peak_given=0.0):
  context = multiprocessing.get_context("spawn")
  pipes, processes, about = {}, [], {}
  # An accelerator's image may hold no torch: then ours alone, with its MFU.
  sides = ("ours", "pytorch") if importlib.util.find_spec("torch") else ("ours",)
  for side in sides:
    parent, child = context.Pipe()
    process = context.Process(target=worker, args=(side, shape, dtype, forward, child))
    process.start()
    pipes[side] = parent
    processes.append(process)
    about.update(parent.recv())  # built and warm before the other side starts: no overlap
  times = {side: [] for side in sides}
  for _ in range(rounds):
    for side in sides:
      pipes[side].send(steps)
      times[side].append(pipes[side].recv())
  for side, process in zip(pipes, processes):
    pipes[side].send(None)
    process.join()
  tokens = shape["batch"] * shape["seq"]
  median = {k: statistics.median(v) for k, v in times.items()}
  ratio = median["pytorch"] / median["ours"] if "pytorch" in median else None
  print(f"{name:<8} {'forward' if forward else 'step'}, batch {shape['batch']} x "
        f"{shape['seq']} {dtype}: "
        + ", ".join(f"{side} {seconds:.3f} s/step ({tokens / seconds:,.0f} tokens/s)"
                    for side, seconds in median.items())
        + (f"; ours/pytorch throughput {ratio:.2f}x" if ratio else "; no torch here"),
        flush=True)
  peak = peak_tflops(peak_given, about["device"])
  if peak and not forward:
    flops = about["flops"]
    print(f"{name:<8} MFU on {about['device']} at {peak:g} TFLOP/s peak, "
          f"{flops / 1e12:.3g} TFLOP a step: "
          + ", ".join(f"{side} {flops / median[side] / (peak * 1e12):.1%}" for side in median),
          flush=True)
  return ratio


def compare_together(name, shape, dtype, steps, rounds, together):
  """Ours only, one process: `together` students' steps called in turn against from threads."""
  runs, _ = ours(shape, dtype, together=together)
  for run in runs.values():
    timed(run, 2)  # compile / warm up
  times = {kind: [] for kind in runs}
  for _ in range(rounds):
    for kind, run in runs.items():
      times[kind].append(timed(run, steps) / together)
  median = {k: statistics.median(v) for k, v in times.items()}
  print(f"{name:<8} {together} students, batch {shape['batch']} x {shape['seq']} {dtype}: "
        + ", ".join(f"{k} {v:.3f} s a student step" for k, v in median.items())
        + f"; threads/in turn throughput {median['in turn'] / median['threads']:.2f}x",
        flush=True)


def parse_custom(text):
  shape = dict(SHAPES["gpt2"])
  for item in filter(None, text.split(",")):
    key, _, value = item.partition("=")
    if key not in shape:
      sys.exit(f"--custom: unknown key {key!r}; keys: {', '.join(shape)}")
    shape[key] = type(shape[key])(value)
  return shape


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--shapes", default="gpt2,minilm")
  parser.add_argument("--custom", default="", help="a GPT-2 shape: key=value,...")
  parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--forward", action="store_true",
                      help="time the pooled forward (no gradient) instead of a train step")
  parser.add_argument("--peak-tflops", type=float, default=0.0,
                      help="the device's dense bfloat16 peak for MFU (default: known GPUs/TPUs)")
  parser.add_argument("--together", type=int, default=0,
                      help="ours only: N students' steps in turn against from N threads")
  args = parser.parse_args(argv)
  chosen = {name: SHAPES[name] for name in filter(None, args.shapes.split(","))}
  if args.custom:
    chosen = {"custom": parse_custom(args.custom)}
  print(f"jax {jax.__version__}; medians of {args.rounds} "
        f"alternating rounds of {args.steps} steps")
  for name, shape in chosen.items():
    if args.together > 1:
      compare_together(name, shape, args.dtype, args.steps, args.rounds, args.together)
    else:
      compare(name, shape, args.dtype, args.steps, args.rounds, args.forward,
              args.peak_tflops)


if __name__ == "__main__":
  main()
