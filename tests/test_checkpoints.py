"""Loading Hugging Face checkpoints: placement on the mesh, and one-line errors."""

import json

import flax.linen as nn
import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from w2s_jax import models, sharding  # noqa: E402
from w2s_jax.errors import CheckpointError, ConfigError  # noqa: E402
from w2s_jax.models import hf  # noqa: E402


@pytest.fixture
def llama_folder(tmp_path):
  torch.manual_seed(0)
  config = transformers.LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128,
                                    num_hidden_layers=2, num_attention_heads=4,
                                    num_key_value_heads=2)
  transformers.LlamaForCausalLM(config).save_pretrained(tmp_path)
  return tmp_path


def target_for(folder, mesh):
  backbone = models.build_backbone({"checkpoint": str(folder)})
  ids = np.ones((8, 4), np.int32)
  boxed = jax.eval_shape(lambda: backbone.init(jax.random.key(0), ids, ids)["params"])
  shardings = sharding.tree_shardings(boxed, mesh)
  target = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                        nn.meta.unbox(boxed), shardings)
  return target, shardings


@pytest.mark.parametrize("mesh_cfg", [{"data": 1, "fsdp": 8}, {"data": 2, "fsdp": 2, "tensor": 2}])
def test_loaded_parameters_land_on_their_rule_shardings(llama_folder, mesh_cfg):
  mesh = sharding.make_mesh(mesh_cfg)
  target, shardings = target_for(llama_folder, mesh)
  params = hf.load_params(llama_folder, target)
  for (path, array), expected in zip(jax.tree_util.tree_leaves_with_path(params),
                                     jax.tree.leaves(shardings)):
    assert array.sharding.is_equivalent_to(expected, array.ndim), jax.tree_util.keystr(path)
    if array.ndim >= 2:  # every matrix is split: no device holds a whole one
      for shard in array.addressable_shards:
        assert shard.data.size < array.size, jax.tree_util.keystr(path)
  kernel = params["layers_0"]["gate"]["kernel"]  # ("embed", "mlp")
  fsdp = mesh.shape["fsdp"]
  assert kernel.addressable_shards[0].data.shape[0] == 64 // fsdp
  if mesh.shape["tensor"] > 1:
    assert kernel.addressable_shards[0].data.shape[1] == 128 // mesh.shape["tensor"]


def test_loaded_values_equal_the_checkpoint(llama_folder):
  mesh = sharding.make_mesh({"data": 1, "fsdp": 8})
  target, _ = target_for(llama_folder, mesh)
  params = hf.load_params(llama_folder, target)
  tensors = hf.SafetensorsFolder(llama_folder)
  np.testing.assert_array_equal(np.asarray(params["layers_1"]["down"]["kernel"]),
                                tensors.read("model.layers.1.mlp.down_proj.weight").T)


def test_unknown_model_name():
  with pytest.raises(ConfigError, match="unknown model 'gpt5'; registered: gpt2, gpt2-medium"):
    models.build_backbone({"name": "gpt5"})


def test_shape_mismatch_names_the_tensor(llama_folder):
  config = json.loads((llama_folder / "config.json").read_text())
  config["intermediate_size"] = 96
  (llama_folder / "config.json").write_text(json.dumps(config))
  mesh = sharding.make_mesh({"data": 8})
  target, _ = target_for(llama_folder, mesh)
  with pytest.raises(CheckpointError, match=r"layers_0/gate/kernel has shape \(64, 128\) in "
                     r"the weights but \(64, 96\) from config.json"):
    hf.load_params(llama_folder, target)


def test_missing_files(llama_folder, tmp_path_factory):
  with pytest.raises(CheckpointError, match="no such folder"):
    hf.resolve(str(llama_folder / "nope"))
  (llama_folder / "model.safetensors").unlink()
  with pytest.raises(CheckpointError, match="no model.safetensors or model.safetensors.index"):
    hf.SafetensorsFolder(llama_folder)
  (llama_folder / "config.json").unlink()
  with pytest.raises(CheckpointError, match="config.json is missing"):
    models.build_backbone({"checkpoint": str(llama_folder)})


def test_missing_shard_of_an_index(tmp_path):
  torch.manual_seed(0)
  config = transformers.GPT2Config(vocab_size=99, n_positions=16, n_embd=32, n_layer=2, n_head=4)
  transformers.GPT2Model(config).save_pretrained(tmp_path, max_shard_size="20KB")
  shards = sorted(tmp_path.glob("model-*.safetensors"))
  shards[-1].unlink()
  with pytest.raises(CheckpointError, match=f"shard {shards[-1].name} named in the index is "
                     "missing"):
    hf.SafetensorsFolder(tmp_path)


def test_hub_id_unreachable_offline(monkeypatch):
  monkeypatch.setenv("HF_HUB_OFFLINE", "1")
  hf.resolve.cache_clear()
  with pytest.raises(CheckpointError, match="not in the local Hugging Face cache and not "
                     "downloadable"):
    hf.resolve("no-such-org/no-such-model-w2s")


def test_checkpoint_with_lora_adapters_starts_as_the_checkpoint(llama_folder):
  from w2s_jax import train
  mesh = sharding.make_mesh({"data": 8})
  ids = np.tile(np.arange(1, 9, dtype=np.int32), (8, 1))
  batch = {"input_ids": ids, "attention_mask": np.ones_like(ids),
           "labels": np.full((8, 2), 0.5, np.float32)}
  outputs = []
  for extra in ({}, {"lora_rank": 4, "lora_targets": ("q", "v", "down")}):
    section = {"checkpoint": str(llama_folder), **extra}
    model = models.build_classifier(section, head_init_std=0.02)
    tx = train.make_optimizer(train.TrainSettings(lr=1e-3), 10)
    abstract, shardings = train.describe_state(model, tx, mesh, batch)
    backbone = models.pretrained_backbone_params(section, abstract["params"]["backbone"])
    state = train.init_state(model, tx, shardings, batch, 0, backbone)
    adapters = [p for p in flax_paths(state["params"]) if "lora_" in p]
    assert len(adapters) == (0 if not extra else 2 * 3 * 2)  # a and b, 3 targets, 2 layers
    outputs.append(np.asarray(model.apply({"params": state["params"]}, ids, batch[
        "attention_mask"])))
  np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-5)


def flax_paths(tree):
  return ["/".join(str(getattr(k, "key", k)) for k in path)
          for path, _ in jax.tree_util.tree_leaves_with_path(tree)]


def test_a_newest_checkpoint_that_does_not_read_falls_back_to_the_one_before(tmp_path,
                                                                             caplog):
  """What a kill while a checkpoint was written leaves: its array files cut short. The
  loop resumes from the checkpoint before it, which is the state saved then."""
  from w2s_jax import checkpoints, train
  from w2s_jax.data import batching
  mesh = sharding.make_mesh({"data": 1}, devices=jax.devices()[:1])
  ids = np.tile(np.arange(1, 9, dtype=np.int32), (8, 1))
  batch = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
  model = models.build_classifier(
      {"arch": "gpt2", "vocab_size": 16, "d_model": 8, "n_layers": 1, "n_heads": 2,
       "d_mlp": 16, "n_positions": 16}, head_init_std=0.02)
  tx = train.make_optimizer(train.TrainSettings(lr=1e-3), 10)
  abstract, shardings = train.describe_state(model, tx, mesh, batch)
  state = train.init_state(model, tx, shardings, batch, 0)
  iterator = batching.train_batches({**batch, "labels": np.zeros((8, 2), np.float32)},
                                    batch_size=8, num_epochs=4, seed=0)
  saved = checkpoints.TrainCheckpoints(tmp_path, abstract, every_steps=2)
  for step in (2, 4):
    state = {**state, "step": state["step"] + 2}
    saved.save(step, state, iterator, {"step": step})
  saved.close()
  for part in (tmp_path / "4" / "state").rglob("*"):
    if part.is_file() and part.stat().st_size > 64:
      part.write_bytes(part.read_bytes()[:16])
  resumed = checkpoints.TrainCheckpoints(tmp_path, abstract)
  restored, record, _ = resumed.restore(iterator)
  resumed.close()
  assert record["step"] == 2 and int(restored["step"]) == 2
  assert f"checkpoint {tmp_path / '4'} is unreadable" in caplog.text
  assert "resuming from step 2 instead" in caplog.text
  assert sorted(p.name for p in tmp_path.iterdir() if p.name.isdigit()) == ["2"]
