"""The device mesh, logical axis rules, and the NamedShardings of params and batches.

Mesh axes: "data" (pure data parallelism), "fsdp" (data parallel with parameters and optimizer
state sharded), "tensor" (tensor parallelism over heads/mlp/vocab). Parameters carry logical
axis names (see models/_layers.py); RULES map them onto mesh axes, GSPMD-style.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from w2s_jax.errors import ConfigError

MESH_AXES = ("data", "fsdp", "tensor")

RULES: tuple[tuple[str, Any], ...] = (
    ("batch", ("data", "fsdp")),
    ("embed", "fsdp"),
    ("vocab", "tensor"),
    ("heads", "tensor"),
    ("kv_heads", "tensor"),  # grouped-query attention's key/value heads
    ("mlp", "tensor"),
    ("kv", None),
    ("layers", None),  # the stacked axis of layers under nn.scan
    ("pos", None),
    ("norm", None),
    ("classes", None),
)


def mesh_shape(mesh_cfg: Mapping[str, int], n_devices: int) -> tuple[int, ...]:
  """Axis sizes from {"data": -1, "fsdp": 1, "tensor": 1}; one -1 takes the remaining devices."""
  unknown = sorted(set(mesh_cfg) - set(MESH_AXES))
  if unknown:
    raise ConfigError(f"mesh axes {unknown} are unknown; mesh axes are {', '.join(MESH_AXES)}")
  sizes = [int(mesh_cfg.get(axis, 1)) for axis in MESH_AXES]
  if sizes.count(-1) > 1 or any(s == 0 or s < -1 for s in sizes):
    raise ConfigError(f"mesh sizes {dict(zip(MESH_AXES, sizes))} must be positive, with at "
                      "most one -1 (the rest of the devices)")
  known = math.prod(s for s in sizes if s != -1)
  if -1 in sizes:
    if n_devices % known:
      raise ConfigError(f"mesh sizes {dict(zip(MESH_AXES, sizes))} do not divide the "
                        f"{n_devices} visible devices")
    sizes[sizes.index(-1)] = n_devices // known
  if math.prod(sizes) != n_devices:
    raise ConfigError(f"mesh {dict(zip(MESH_AXES, sizes))} needs {math.prod(sizes)} devices "
                      f"but {n_devices} are visible")
  return tuple(sizes)


def make_mesh(mesh_cfg: Mapping[str, int], devices: Sequence[jax.Device] | None = None) -> Mesh:
  devices = list(devices) if devices is not None else jax.devices()
  shape = mesh_shape(mesh_cfg, len(devices))
  # Auto axes: shardings come from logical rules and GSPMD propagation.
  return jax.make_mesh(shape, MESH_AXES, axis_types=(AxisType.Auto,) * len(MESH_AXES),
                       devices=devices)


def _fit(spec: P, shape: tuple[int, ...], mesh: Mesh) -> P:
  """Drops mesh axes from dimensions they do not divide (such a dimension is replicated)."""
  fitted = []
  for dim, axes in zip(shape, tuple(spec) + (None,) * (len(shape) - len(spec))):
    names = (axes,) if isinstance(axes, str) else tuple(axes or ())
    size = math.prod(mesh.shape[a] for a in names)
    fitted.append(axes if names and dim % size == 0 else None)
  return P(*fitted)


def tree_shardings(abstract_tree, mesh: Mesh, rules=RULES):
  """NamedShardings for a tree of (possibly logically boxed) ShapeDtypeStructs.

  Leaves without logical names (step counters, optimizer scalars) are replicated.
  """
  logical = nn.get_partition_spec(abstract_tree)
  shapes = nn.meta.unbox(abstract_tree)

  def to_sharding(spec, leaf):
    if not hasattr(leaf, "shape"):  # an empty node (optax's MaskedNode for frozen params)
      return leaf
    mesh_spec = nn.logical_to_mesh_axes(tuple(spec), rules) if spec else P()
    return NamedSharding(mesh, _fit(mesh_spec, tuple(leaf.shape), mesh))

  return jax.tree.map(to_sharding, logical, shapes, is_leaf=lambda x: isinstance(x, P))


def batch_axes(rules=RULES):
  return dict(rules).get("batch")


def batch_sharding(mesh: Mesh, rules=RULES) -> NamedSharding:
  """Leading (batch) dimension split over the data-parallel axes; the rest replicated."""
  return NamedSharding(mesh, P(batch_axes(rules)))


def data_parallel_size(mesh: Mesh, rules=RULES) -> int:
  axes = batch_axes(rules)
  names = (axes,) if isinstance(axes, str) else tuple(axes or ())
  return math.prod(mesh.shape[a] for a in names)


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def put_batch(batch: Mapping[str, np.ndarray], sharding: NamedSharding) -> dict:
  """Host numpy batch (this process's rows) -> global jax arrays on `sharding`."""
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in batch.items()}
