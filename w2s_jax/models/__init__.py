"""Model families and the classifier/LM wrappers built from a model config section.

A section is either a custom architecture, {"arch": "gpt2", "d_model": ..., ...} (weights
initialised or pretrained in the job), or a checkpoint, {"name": <registry name>,
"checkpoint": <optional folder / hub id overriding the registry's>, "pretrained": bool,
"dtype", "param_dtype", "remat"}.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any, Mapping, Sequence

from w2s_jax.errors import ConfigError
from w2s_jax.models import hf, registry
from w2s_jax.models.bert import Bert, BertConfig
from w2s_jax.models.classifier import (
  PAIR_INPUTS,
  TOKEN_INPUTS,
  Classifier,
  FeatureHead,
  LanguageModel,
  PairwiseClassifier,
  Pooled,
  model_inputs,
  pool,
)
from w2s_jax.models.gpt2 import GPT2, GPT2Config
from w2s_jax.models.llama import Llama, LlamaConfig
from w2s_jax.models.mpnet import MPNet, MPNetConfig

ARCHITECTURES = {"gpt2": (GPT2, GPT2Config), "llama": (Llama, LlamaConfig),
                 "bert": (Bert, BertConfig), "mpnet": (MPNet, MPNetConfig)}
# n_layers on a checkpoint keeps only its first layers: a truncated model (0: all of them).
OVERRIDABLE = ("dtype", "param_dtype", "remat", "remat_policy", "scan_layers", "n_layers",
               "lora_rank", "lora_alpha", "lora_targets")
CHECKPOINT_KEYS = ("name", "checkpoint", "pretrained", *OVERRIDABLE)


FEATURE_HEAD = "head"  # model.arch of a head over an embedding task's features


def is_checkpoint(model_cfg: Mapping[str, Any]) -> bool:
  return "arch" not in model_cfg


def is_feature_head(model_cfg: Mapping[str, Any]) -> bool:
  """A head (linear, or an MLP with model.hidden > 0) over the features that the embedding
  task's file model.features holds: no backbone."""
  return model_cfg.get("arch") == FEATURE_HEAD


def build_feature_head(model_cfg: Mapping[str, Any], *, head_init_std=0.0) -> FeatureHead:
  return FeatureHead(hidden=int(model_cfg.get("hidden", 0)), head_init_std=head_init_std)


def checkpoint_folder(model_cfg: Mapping[str, Any]):
  """The local folder of a checkpoint section (resolved through the registry and hub)."""
  checkpoint = model_cfg.get("checkpoint") or registry.get(model_cfg.get("name", "")).checkpoint
  return hf.resolve(checkpoint)


def local_checkpoint_folder(model_cfg: Mapping[str, Any]) -> pathlib.Path | None:
  """The folder of a checkpoint section that lives on this machine under its own path or in
  an installed package (the files whose content its phases depend on); None for a hub id,
  whose snapshots the hub versions."""
  checkpoint = model_cfg.get("checkpoint") or registry.get(model_cfg.get("name", "")).checkpoint
  if (checkpoint.startswith(("pkg:", "parts:"))
      or pathlib.Path(checkpoint).expanduser().is_dir()):
    return hf.resolve(checkpoint)
  return None


def _config_fields(fields: Mapping[str, Any]) -> dict:
  """Config-dict values as the frozen family configs take them (lists become tuples)."""
  return {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}


def _overrides(model_cfg):
  given = {k: model_cfg[k] for k in OVERRIDABLE if k in model_cfg}
  if not given.get("n_layers"):
    given.pop("n_layers", None)
  return _config_fields(given)


def is_trainable(path: Sequence[str], *, linear_probe: bool, lora: bool) -> bool:
  """Whether a classifier parameter (given by its key path) trains: everything in full
  fine-tuning; the head alone in a linear probe; the head and the adapters under LoRA."""
  if linear_probe or lora:
    return path[0] == "head" or (lora and path[-1].startswith("lora_"))
  return True


def tokenizer_for(model_cfg: Mapping[str, Any]):
  """The tokenizer of a checkpoint section, or of the checkpoint a custom section names in
  its "tokenizer" field."""
  if is_checkpoint(model_cfg):
    return hf.load_tokenizer(checkpoint_folder(model_cfg))
  name = model_cfg.get("tokenizer", "")
  if not name:
    raise ConfigError("a custom model on a text task needs model.tokenizer (a registered "
                      "model name or a checkpoint folder whose tokenizer to use)")
  checkpoint = registry.MODELS[name].checkpoint if name in registry.MODELS else name
  return hf.load_tokenizer(hf.resolve(checkpoint))


def max_positions(backbone) -> int:
  """The longest input the backbone's position embeddings allow."""
  config = backbone.config
  return getattr(config, "max_positions", None) or config.n_positions


def build_backbone(model_cfg: Mapping[str, Any]):
  """A backbone module from a model config section."""
  if is_checkpoint(model_cfg):
    unknown = sorted(set(model_cfg) - set(CHECKPOINT_KEYS))
    if unknown:
      raise ConfigError(f"model fields {unknown} do not apply to a checkpoint; allowed: "
                        f"{list(CHECKPOINT_KEYS)}")
    module, _ = hf.build_backbone(checkpoint_folder(model_cfg), **_overrides(model_cfg))
    return module
  fields = _config_fields(model_cfg)
  arch = fields.pop("arch")
  fields.pop("tokenizer", None)
  if arch not in ARCHITECTURES:
    raise ConfigError(f"model.arch={arch!r} is unknown; choose from {', '.join(ARCHITECTURES)}")
  module, config_cls = ARCHITECTURES[arch]
  allowed = {f.name for f in dataclasses.fields(config_cls)}
  unknown = sorted(set(fields) - allowed)
  if unknown:
    raise ConfigError(f"model fields {unknown} are not {arch} options; allowed: {sorted(allowed)}")
  return module(config_cls(**fields))


def pretrained_backbone_params(model_cfg: Mapping[str, Any], target):
  """Checkpoint weights placed like `target` (abstract backbone params with shardings), or
  None when the section trains from a fresh initialisation."""
  if not is_checkpoint(model_cfg) or not model_cfg.get("pretrained", True):
    return None
  return hf.load_params(checkpoint_folder(model_cfg), target, **_overrides(model_cfg))


def build_classifier(model_cfg: Mapping[str, Any], *, pooling="last", head_init_std=0.0,
                     pairwise: bool = False) -> Classifier | PairwiseClassifier:
  """The classifier of one text per document, or with `pairwise` the Bradley-Terry scorer of
  a document's two candidates."""
  kind = PairwiseClassifier if pairwise else Classifier
  return kind(build_backbone(model_cfg), pooling=pooling, head_init_std=head_init_std)


def build_pooled(model_cfg: Mapping[str, Any], *, pooling="last") -> Pooled:
  return Pooled(build_backbone(model_cfg), pooling=pooling)


def build_language_model(model_cfg: Mapping[str, Any]) -> LanguageModel:
  return LanguageModel(build_backbone(model_cfg))


__all__ = ["ARCHITECTURES", "Bert", "BertConfig", "Classifier", "GPT2", "GPT2Config",
           "LanguageModel", "Llama", "LlamaConfig", "MPNet", "MPNetConfig", "PAIR_INPUTS",
           "PairwiseClassifier", "Pooled", "build_backbone",
           "build_classifier", "build_language_model", "build_pooled", "checkpoint_folder",
           "FEATURE_HEAD", "FeatureHead", "TOKEN_INPUTS", "build_feature_head", "is_checkpoint",
           "is_feature_head", "is_trainable", "model_inputs",
           "max_positions", "pretrained_backbone_params", "pool", "registry", "tokenizer_for"]
