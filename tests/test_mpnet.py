"""MPNet (all-mpnet-base-v2's family) against transformers' MPNetModel, through our converter:
random small configs of odd sizes, padding, a real token whose id is the padding id, layers
under scan, one output position, and the real checkpoint."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax.traverse_util import flatten_dict, unflatten_dict

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tests.test_parity import load_ours, save  # noqa: E402
from w2s_jax import models  # noqa: E402
from w2s_jax.models import mpnet  # noqa: E402

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
  ours = np.asarray(module.apply({"params": params}, jnp.asarray(ids), jnp.asarray(mask)))
  real = mask.astype(bool)
  np.testing.assert_allclose(ours[real], expected[real], atol=TOL, rtol=0)
  pooled = np.asarray(models.pool(jnp.asarray(ours), jnp.asarray(mask), "mean"))
  np.testing.assert_allclose(pooled, mean_pooled(expected, mask), atol=TOL, rtol=0)


def test_one_output_position_matches_the_full_forward(odd_model):
  _, folder = odd_model
  ids, mask = odd_batch()
  module, params = load_ours(folder)
  index = jnp.asarray([36, 19, 4])
  full = module.apply({"params": params}, jnp.asarray(ids), jnp.asarray(mask))
  one = module.apply({"params": params}, jnp.asarray(ids), jnp.asarray(mask), index)
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
  grads = jax.grad(lambda p: jnp.sum(module.apply({"params": p}, jnp.asarray(ids),
                                                  jnp.asarray(mask)) ** 2))(params)
  assert float(jnp.abs(grads["relative_bias"]["embedding"]).max()) > 0


def test_lora_adapters_on_every_projection_start_at_the_checkpoint(odd_model):
  model, folder = odd_model
  ids, mask = odd_batch()
  module, loaded = load_ours(folder, lora_rank=4)
  fresh = flatten_dict(nn.meta.unbox(module.init(jax.random.key(0), ids, mask)["params"]))
  adapters = sorted({path[-2] for path in fresh if path[-1].startswith("lora_")})
  assert adapters == ["k", "mlp_in", "mlp_out", "o", "q", "v"]
  params = unflatten_dict({**fresh, **flatten_dict(loaded)})  # B starts at zero
  ours = module.apply({"params": params}, jnp.asarray(ids), jnp.asarray(mask))
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
