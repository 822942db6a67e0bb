"""Checks of single config values, each a ConfigError naming the key."""

from __future__ import annotations

import math
from typing import Any, Mapping

from w2s_jax.errors import ConfigError


def lookup(cfg: Mapping, path: str) -> Any:
  value: Any = cfg
  for key in path.split("."):
    value = value[key]
  return value


def check_positive(cfg: Mapping, path: str) -> None:
  positive(path, lookup(cfg, path))


def positive(path: str, value) -> None:
  """`value`, the config's `path`, must be a positive finite number."""
  if (not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0
      or not math.isfinite(value)):
    raise ConfigError(f"{path}={value!r} must be a positive number")


def check_finite(node: Any, path: str = "") -> None:
  """No NaN, infinity or None anywhere: such a value (lr=nan) would train to garbage, and
  no key of a config is meant to be left empty (ConfigDict lets any field be set to None)."""
  if isinstance(node, Mapping):
    for key, value in node.items():
      check_finite(value, f"{path}.{key}" if path else str(key))
  elif node is None:
    raise ConfigError(f"{path}=None needs a value")
  elif isinstance(node, float) and not math.isfinite(node):
    raise ConfigError(f"{path}={node!r} must be a finite number")


def check_choice(path: str, value, choices) -> None:
  if value not in choices:
    raise ConfigError(f"{path}={value!r} is unknown; choose from {', '.join(choices)}")
