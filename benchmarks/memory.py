r"""Per-device memory and compile time of large classifiers' train steps, compiled (never run)
from their configs alone on 8 fake CPU devices.

  python benchmarks/memory.py                         # Qwen2.5-7B and Llama-3-70B shapes
  python benchmarks/memory.py --models=qwen7b --batch=8 --seq=512

For each model: the train step (bfloat16 compute, float32 master weights and Adam state,
layers under nn.scan with full rematerialisation) is compiled on one device (the unsharded
total) and on 8 devices with fsdp=8 and with fsdp=4 x tensor=2; XLA's memory analysis gives
the bytes of the step's arguments (parameters, optimizer state, batch) and temporaries per
device. Then the compile time of 12 against 48 scanned layers of the 7B shape.
"""

from __future__ import annotations

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import argparse  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402

from w2s_jax import losses, models, sharding, train  # noqa: E402

# From the models' Hugging Face config.json files.
SHAPES = {
    "qwen7b": dict(arch="llama", vocab_size=152064, d_model=3584, n_layers=28, n_heads=28,
                   n_kv_heads=4, d_mlp=18944, rope_theta=1e6, max_positions=32768,
                   attention_bias=True),
    "llama70b": dict(arch="llama", vocab_size=128256, d_model=8192, n_layers=80, n_heads=64,
                     n_kv_heads=8, d_mlp=28672, rope_theta=5e5, max_positions=8192),
}
RUN = dict(dtype="bfloat16", param_dtype="float32", scan_layers=True, remat=True,
           remat_policy="full")


def compile_step(model_cfg, mesh_cfg, batch, seq, devices):
  """(compiled train step, seconds to lower and compile)."""
  mesh = sharding.make_mesh(mesh_cfg, devices=devices)
  model = models.build_classifier(model_cfg)
  tx = train.make_optimizer(train.TrainSettings(lr=1e-5), 1000)
  sample = {"input_ids": np.zeros((batch, seq), np.int32),
            "attention_mask": np.ones((batch, seq), np.int32),
            "labels": np.zeros((batch, 2), np.float32)}
  start = time.perf_counter()
  abstract, shardings = train.describe_state(model, tx, mesh, sample)
  batch_sharding = sharding.batch_sharding(mesh)
  step = train.make_train_step(
      train.classification_objective(model, losses.get_loss("xent"), 1000), tx, shardings,
      batch_sharding)
  abstract_batch = {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=batch_sharding)
                    for k, v in sample.items()}
  compiled = step.lower(abstract, abstract_batch).compile()
  return compiled, time.perf_counter() - start, abstract


def gib(n: float) -> str:
  return f"{n / 2**30:8.2f} GiB"


def memory(name, shape, batch, seq):
  cfg = {**shape, **RUN}
  n_params = None
  rows = []
  for label, mesh_cfg, devices in [("1 device", {"data": 1}, jax.devices()[:1]),
                                   ("fsdp=8", {"fsdp": 8}, jax.devices()),
                                   ("fsdp=4 x tensor=2", {"fsdp": 4, "tensor": 2},
                                    jax.devices())]:
    compiled, seconds, abstract = compile_step(cfg, mesh_cfg, batch, seq, devices)
    stats = compiled.memory_analysis()
    if n_params is None:
      n_params = sum(np.prod(x.shape) for x in jax.tree.leaves(abstract["params"]))
    rows.append((label, stats.argument_size_in_bytes, stats.temp_size_in_bytes, seconds))
  total_args, total_temp = rows[0][1], rows[0][2]
  print(f"{name}: {n_params / 1e9:.2f}B parameters, batch {batch} x {seq}, bf16 compute, "
        "fp32 weights and Adam state, scan + remat")
  print(f"  {'mesh':<20}{'arguments':>13}{'temporaries':>14}{'per-device':>13}"
        f"{'(total+temp)/8 ratio':>22}{'compile':>10}")
  for label, args, temp, seconds in rows:
    ratio = ((args + temp) / ((total_args + total_temp) / 8) if label != "1 device" else 1.0)
    print(f"  {label:<20}{gib(args):>13}{gib(temp):>14}{gib(args + temp):>13}"
          f"{ratio:>22.2f}{seconds:>9.1f}s")


def compile_time_in_depth(shape, batch, seq):
  times = {}
  for n_layers in (12, 48):
    cfg = {**shape, **RUN, "n_layers": n_layers}
    _, seconds, _ = compile_step(cfg, {"fsdp": 8}, batch, seq, jax.devices())
    times[n_layers] = seconds
  print(f"compile time under scan, 7B shape, fsdp=8: 12 layers {times[12]:.1f}s, 48 layers "
        f"{times[48]:.1f}s, ratio {times[48] / times[12]:.2f}")


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--models", default="qwen7b,llama70b")
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--seq", type=int, default=512)
  parser.add_argument("--skip_depth", action="store_true")
  args = parser.parse_args(argv)
  for name in filter(None, args.models.split(",")):
    memory(name, SHAPES[name], args.batch, args.seq)
  if not args.skip_depth:
    compile_time_in_depth(SHAPES["qwen7b"], args.batch, args.seq)


if __name__ == "__main__":
  main()
