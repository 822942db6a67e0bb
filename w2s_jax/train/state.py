"""The train state, a plain pytree {"params", "opt", "step", "loss_state"}, described and
initialised directly on its shardings.

loss_state is what a loss keeps between steps (the recent predictions of a buffered
confidence loss; usually empty)."""

from __future__ import annotations

from typing import Callable

import flax.linen as nn
import flax.traverse_util
import jax
import jax.numpy as jnp
import optax

from w2s_jax import losses, sharding
from w2s_jax.models import model_inputs


def _path_names(path) -> tuple[str, ...]:
  return tuple(str(getattr(k, "key", getattr(k, "name", k))) for k in path
               if not isinstance(k, jax.tree_util.GetAttrKey))


def trainable_mask(params, trainable: Callable[[tuple[str, ...]], bool]):
  """A tree of bools over (possibly logically boxed) params: which ones train."""
  return jax.tree_util.tree_map_with_path(lambda p, _: trainable(_path_names(p)), params)


def describe_state(model: nn.Module, tx: optax.GradientTransformation, mesh, sample_batch,
                   rules=sharding.RULES, loss_state=None):
  """(abstract state, state shardings) without allocating anything.

  The abstract state holds ShapeDtypeStructs that carry their sharding, which makes it a
  restore target that lands every tensor directly on its devices. `loss_state` (small
  arrays) is replicated.
  """
  def boxed_state():
    params = model.init(jax.random.key(0), *model_inputs(model, sample_batch))["params"]
    return {"params": params, "opt": tx.init(params), "step": jnp.zeros((), jnp.int32),
            "loss_state": loss_state or {}}

  boxed = jax.eval_shape(boxed_state)
  shardings = sharding.tree_shardings(boxed, mesh, rules)
  abstract = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                          nn.meta.unbox(boxed), shardings)
  return abstract, shardings


def init_state(model: nn.Module, tx: optax.GradientTransformation, shardings, sample_batch,
               seed: int, backbone_params=None, loss_state=None):
  """The state, initialised directly on its shardings (nothing is materialised whole).

  `backbone_params` (e.g. restored pretrained weights) take the place of the backbone's
  initialisation; only the parameters they lack (the head, LoRA adapters) are initialised,
  so a large backbone never exists twice. The state owns the given arrays from here on: the
  train step donates its input, so do not reuse them.
  """
  flat_shardings = flax.traverse_util.flatten_dict(shardings["params"], sep="/")
  loaded = flax.traverse_util.flatten_dict(backbone_params or {}, sep="/")
  loaded = {f"backbone/{path}": value for path, value in loaded.items()}
  unknown = sorted(set(loaded) - set(flat_shardings))
  if unknown:
    raise ValueError(f"loaded backbone has parameters the model lacks: {unknown[:3]}")
  fresh_paths = [p for p in flat_shardings if p not in loaded]

  def init_fresh(rng):  # XLA drops the initialisers of everything not returned
    params = nn.meta.unbox(model.init(rng, *model_inputs(model, sample_batch))["params"])
    flat = flax.traverse_util.flatten_dict(params, sep="/")
    return {p: flat[p] for p in fresh_paths}

  replicated = shardings["step"]  # a scalar: replicated on the mesh
  fresh = jax.jit(init_fresh, in_shardings=(replicated,),
                  out_shardings={p: flat_shardings[p] for p in fresh_paths},
                  compiler_options=initialiser_compiler_options(
                      replicated.mesh.devices.flat[0].platform))(
                      jax.random.key(seed))
  placed = {p: jax.device_put(v, flat_shardings[p]) for p, v in loaded.items()}
  params = flax.traverse_util.unflatten_dict({**fresh, **placed}, sep="/")
  opt = jax.jit(tx.init, in_shardings=(shardings["params"],),
                out_shardings=shardings["opt"])(params)
  step = jax.device_put(jnp.zeros((), jnp.int32), shardings["step"])
  loss_state = jax.device_put(loss_state or {}, shardings["loss_state"])
  return {"params": params, "opt": opt, "step": step, "loss_state": loss_state}


def initialiser_compiler_options(platform: str) -> dict:
  """On a CPU, LLVM -O2 for a model's initialiser: its per-parameter threefry loops compile
  2-3x faster than at the default -O3 (4-7 s -> 2-3 s for a small model), to the same values
  bit for bit (checked on every family, LoRA included); the program runs once."""
  return {"xla_backend_optimization_level": 2} if platform == "cpu" else {}


def create_state(model: nn.Module, tx: optax.GradientTransformation, mesh, sample_batch,
                 seed: int, rules=sharding.RULES, backbone_params=None, loss_state=None):
  """describe_state + init_state: returns (state, state_shardings)."""
  _, shardings = describe_state(model, tx, mesh, sample_batch, rules, loss_state)
  return (init_state(model, tx, shardings, sample_batch, seed, backbone_params, loss_state),
          shardings)


def initial_loss_state(loss: losses.Loss | Callable) -> dict:
  """What a loss keeps between steps: the last buffer_size predictions (NaN: none yet)."""
  buffer_size = getattr(loss, "buffer_size", 0)
  return {"recent": jnp.full((buffer_size,), jnp.nan, jnp.float32)} if buffer_size else {}
