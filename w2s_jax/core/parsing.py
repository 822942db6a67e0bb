"""The small parsers config values need, written once."""

from __future__ import annotations


def names(text) -> list[str]:
  """The items of a comma-separated list ("xent, logconf," -> ["xent", "logconf"])."""
  return [n.strip() for n in str(text).split(",") if n.strip()]
