"""Learned weights over weak supervisors (RAVEN): the weights' step, their schedule, and a
student that learns to trust the member that carries the signal."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tests.test_embeddings import config, write_task
from w2s_jax import api, data, losses, models, train
from w2s_jax.data import label_files
from w2s_jax.errors import ConfigError
from w2s_jax.train import learned_weights


def step_once(member_p, features, weighting, step, total_steps=10, weights=None,
              loss_name="xent"):
  """One train step of a linear head on `features` whose labels are the weighted members."""
  model = models.FeatureHead(head_init_std=0.1)
  params = model.init(jax.random.key(0), features)["params"]
  loss = losses.bind(loss_name)
  loss_state = learned_weights.initial_loss_state(member_p.shape[1], loss)
  if weights is not None:
    loss_state["ensemble_weights"] = jnp.asarray(weights, jnp.float32)
  tx = optax.sgd(0.1)
  step_fn = train.train_step_fn(
      train.learned_weights_objective(model, loss, weighting, total_steps), tx)
  state = {"params": params, "opt": tx.init(params), "step": jnp.asarray(step),
           "loss_state": loss_state}
  batch = {"features": features, "member_p": member_p,
           "labels": jnp.zeros((len(features), 2))}
  new_state, metrics = step_fn(state, batch)
  return np.asarray(new_state["loss_state"]["ensemble_weights"]), float(metrics["loss"])


def test_the_weights_stay_uniform_while_frozen_then_step_on_the_simplex():
  rng = np.random.default_rng(0)
  features = jnp.asarray(rng.normal(size=(16, 4)), jnp.float32)
  member_p = jnp.asarray(rng.uniform(size=(16, 3)), jnp.float32)
  weighting = train.Weighting(weight_lr=1.0, freeze_frac=0.5, easy_frac=0.0)
  frozen, _ = step_once(member_p, features, weighting, step=4)
  np.testing.assert_array_equal(frozen, np.full(3, 1 / 3, np.float32))
  stepped, _ = step_once(member_p, features, weighting, step=5)
  assert np.abs(stepped - 1 / 3).max() > 1e-3
  assert stepped.sum() == pytest.approx(1.0, abs=1e-6) and (stepped >= 1e-6).all()
  # a step far past the simplex's edge leaves a member at the floor (then renormalised),
  # never at zero, so it can still come back
  far = train.Weighting(weight_lr=1e4, freeze_frac=0.0, easy_frac=0.0)
  clamped, _ = step_once(member_p, features, far, step=0)
  assert 0 < clamped.min() < 1e-6 and clamped.sum() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("loss_name", ["logconf", "entropy", "product", "adaptconf"])
def test_every_loss_passes_a_gradient_to_the_weights(loss_name):
  """The losses detach what they take from the student, not the labels: weights learned
  with a confidence loss move as with xent."""
  rng = np.random.default_rng(0)
  features = jnp.asarray(rng.normal(size=(16, 4)), jnp.float32)
  member_p = jnp.asarray(rng.uniform(0.05, 0.95, size=(16, 3)), jnp.float32)
  weighting = train.Weighting(weight_lr=1.0, freeze_frac=0.0, easy_frac=0.0)
  stepped, _ = step_once(member_p, features, weighting, step=5, loss_name=loss_name)
  assert np.abs(stepped - 1 / 3).max() > 1e-4, stepped


def test_only_the_examples_members_agree_on_count_early():
  features = jnp.ones((4, 2), jnp.float32)
  # rows 0-1: both members say 1; rows 2-3: they disagree
  member_p = jnp.asarray([[0.9, 0.8], [0.7, 0.6], [0.9, 0.1], [0.2, 0.6]], jnp.float32)
  early = train.Weighting(weight_lr=0.0, freeze_frac=1.0, easy_frac=0.5)
  later = train.Weighting(weight_lr=0.0, freeze_frac=1.0, easy_frac=0.0)
  _, early_loss = step_once(member_p, features, early, step=0)
  _, later_loss = step_once(member_p, features, later, step=0)
  # the untrained head with these features predicts the same p for every row, so each loss
  # is the mean cross-entropy of its counted rows' labels against that one p
  model = models.FeatureHead(head_init_std=0.1)
  params = model.init(jax.random.key(0), features)["params"]
  logits = model.apply({"params": params}, features)
  p = np.asarray(member_p).mean(1)
  per_row = np.asarray(losses.xent(logits, jnp.stack([1 - p, p], -1)))
  assert early_loss == pytest.approx(per_row[:2].mean(), rel=1e-5)
  assert later_loss == pytest.approx(per_row.mean(), rel=1e-5)
  np.testing.assert_array_equal(np.asarray(learned_weights.members_agree(member_p)),
                                [True, True, False, False])


def with_members(cfg, tmp_path, **raven):
  """A raven and a uniform ensemble over the weak model and a file of coin-flip labels."""
  splits = data.load_splits(cfg["task"], cfg["seed"])
  pool = np.concatenate([splits[s]["id"] for s in ("A", "B")])
  coins = np.random.default_rng(1).integers(0, 2, len(pool)).astype(float)
  label_files.write(tmp_path / "coins.csv", pool, coins)
  cfg["supervisors"]["coins"] = {"kind": "file", "path": str(tmp_path / "coins.csv")}
  cfg["supervisors"]["pair"] = {"kind": "ensemble", "members": "weak,coins"}
  cfg["supervisors"]["raven"] = {"kind": "raven", "members": "weak,coins", **raven}
  return cfg


def test_a_student_learns_to_weight_the_member_with_the_signal(tmp_path):
  cfg = config(write_task(tmp_path / "task"), tmp_path / "runs", "xent@raven,xent@pair")
  cfg["strong"]["train"]["epochs"] = 6.0  # 38 steps, the weights learning in the last 19
  # The weights' gradient scales with the student's log-odds, which a linear head this short
  # keeps near 0 (|p - 0.5| ~ 0.06): a large step, as docs/methods.md says.
  results = api.run(with_members(cfg, tmp_path, weight_lr=20.0, freeze_frac=0.5,
                                 easy_frac=0.5))
  learned = results["students"]["xent@raven"]["ensemble_weights"]
  assert set(learned) == {"weak", "coins"} and sum(learned.values()) == pytest.approx(1.0)
  assert learned["weak"] > 0.9, learned
  # the easy start alone (coin flips disagree with the weak model on half the examples)
  # already trains on cleaner labels than the uniform mean
  students = results["students"]
  assert students["xent@raven"]["accuracy"] > students["xent@pair"]["accuracy"]
  members = results["supervisors"]["raven"]["members"]
  assert members["weak"]["test_accuracy"] > 0.6
  assert members["coins"]["test_accuracy"] is None  # a file predicts no test
  assert abs(members["coins"]["label_accuracy_B"] - 0.5) < 0.1
  assert "ensemble_weights" not in results["students"]["xent@pair"]


def test_without_steps_or_an_easy_start_it_is_the_uniform_ensemble(tmp_path):
  cfg = config(write_task(tmp_path / "task"), tmp_path / "runs", "xent@raven,xent@pair")
  results = api.run(with_members(cfg, tmp_path, weight_lr=0.0, easy_frac=0.0))
  assert results["students"]["xent@raven"]["ensemble_weights"] == {"weak": 0.5, "coins": 0.5}
  np.testing.assert_allclose(api.predictions(results, "student:xent@raven"),
                             api.predictions(results, "student:xent@pair"), atol=1e-5)


@pytest.mark.parametrize("fields,message", [
    ({"members": "weak"}, "a learned weighting needs at least 2 members"),
    ({"replicas": 3, "easy_frac": 1.5}, r"easy_frac=1.5 must be in \[0, 1\]"),
    ({"replicas": 3, "weight_lr": -1}, "weight_lr must be >= 0"),
    ({"replicas": 3, "temperature": 1}, r"\['temperature'\] are not raven fields"),
])
def test_a_bad_weighting_is_a_config_error(tmp_path, fields, message):
  from configs import tiny
  cfg = tiny.get_config().to_dict()
  cfg["supervisors"]["raven"] = {"kind": "raven", "members": "weak", **fields}
  cfg["student"]["losses"] = "xent@raven"
  cfg["workdir"] = str(tmp_path)
  with pytest.raises(ConfigError, match=message):
    api.run(cfg)
