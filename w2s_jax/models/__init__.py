"""Model families and the classifier/LM wrappers built from a model config."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from w2s_jax.errors import ConfigError
from w2s_jax.models.classifier import Classifier, LanguageModel, pool
from w2s_jax.models.gpt2 import GPT2, GPT2Config

ARCHITECTURES = {"gpt2": (GPT2, GPT2Config)}


def build_backbone(model_cfg: Mapping[str, Any]):
  """A backbone module from a flat model config: {"arch": ..., <architecture fields>}."""
  fields = dict(model_cfg)
  arch = fields.pop("arch", None)
  if arch not in ARCHITECTURES:
    raise ConfigError(f"model.arch={arch!r} is unknown; choose from {', '.join(ARCHITECTURES)}")
  module, config_cls = ARCHITECTURES[arch]
  allowed = {f.name for f in dataclasses.fields(config_cls)}
  unknown = sorted(set(fields) - allowed)
  if unknown:
    raise ConfigError(f"model fields {unknown} are not {arch} options; allowed: {sorted(allowed)}")
  return module(config_cls(**fields))


def build_classifier(model_cfg: Mapping[str, Any], *, pooling="last", head_init_std=0.0,
                     linear_probe=False) -> Classifier:
  return Classifier(build_backbone(model_cfg), pooling=pooling, head_init_std=head_init_std,
                    linear_probe=linear_probe)


def build_language_model(model_cfg: Mapping[str, Any]) -> LanguageModel:
  return LanguageModel(build_backbone(model_cfg))


__all__ = ["ARCHITECTURES", "Classifier", "GPT2", "GPT2Config", "LanguageModel",
           "build_backbone", "build_classifier", "build_language_model", "pool"]
