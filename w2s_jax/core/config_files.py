"""Experiment configs from Python files (`path.py` or `path.py:arg`, whose get_config returns
an ml_collections ConfigDict), and dotted-key overrides of them."""

from __future__ import annotations

import importlib
import importlib.util
import pathlib
from typing import Any, Mapping

from ml_collections import config_dict

from w2s_jax.errors import ConfigError


def load_file(spec: str) -> config_dict.ConfigDict:
  """The ConfigDict of "path.py" or "path.py:arg"; a missing or broken file is a ConfigError
  in one line."""
  path, _, arg = spec.partition(":")
  shipped = ", ".join(sorted(p.name for p in pathlib.Path("configs").glob("*.py")
                             if p.stem != "__init__"))
  if not pathlib.Path(path).is_file():
    raise ConfigError(f"config file {path} does not exist" +
                      (f"; configs/ has {shipped}" if shipped else ""))
  try:
    module_spec = importlib.util.spec_from_file_location("_w2s_config", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(arg or None)
  except Exception as e:  # the user's file: any error, said in one line
    message = str(e).strip().splitlines()[0] if str(e).strip() else ""
    raise ConfigError(f"config {spec}: {type(e).__name__}: {message}") from None


def load(spec: str, overrides: Mapping[str, Any] | None = None) -> config_dict.ConfigDict:
  """A config from "path/to/file.py[:arg]" or a shipped config's name ("default",
  "text:sst2"), with dotted-key overrides ({"strong.train.lr": 1e-3})."""
  path, _, arg = spec.partition(":")
  if pathlib.Path(path).is_file():
    config = load_file(spec)
  else:
    try:
      module = importlib.import_module(f"configs.{pathlib.Path(path).stem}")
    except ModuleNotFoundError:
      raise ConfigError(f"config {spec!r} is neither a file nor a shipped config "
                        "(configs/<name>.py)") from None
    config = module.get_config(arg or None)
  for key, value in (overrides or {}).items():
    node = config
    *parents, leaf = key.split(".")
    for part in parents:
      if not hasattr(node, "keys") or part not in node:
        raise ConfigError(f"override {key}: no such key; --help lists them")
      node = node[part]
    if not hasattr(node, "keys") or leaf not in node:
      raise ConfigError(f"override {key}: no such key; --help lists them")
    try:
      node[leaf] = value
    except (TypeError, ValueError) as e:  # ConfigDict keeps each field's type
      message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
      raise ConfigError(f"override {key}={value!r}: {message}") from None
  return config


def unknown_key_message(argv, config) -> str | None:
  """Names the --config.<key> override whose key the config lacks, and the keys it could
  have meant."""
  for dotted in (a[len("--config."):].split("=", 1)[0] for a in argv
                 if a.startswith("--config.")):
    node = config
    for depth, key in enumerate(dotted.split(".")):
      if not hasattr(node, "keys") or key not in node:
        parent = ".".join(dotted.split(".")[:depth]) or "the config"
        choices = ", ".join(sorted(node.keys())) if hasattr(node, "keys") else "no sub-keys"
        return f"--config.{dotted}: {parent} has no key {key!r}; it has {choices}"
      node = node[key]
  return None


def keys(config, prefix: str = "") -> list[str]:
  """Every leaf of a config as "key = value", dotted."""
  lines = []
  for key in sorted(config.keys()):
    value = config[key]
    if hasattr(value, "keys"):
      lines += keys(value, f"{prefix}{key}.")
    else:
      lines.append(f"{prefix}{key} = {value!r}")
  return lines
