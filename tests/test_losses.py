"""Each loss against values worked out by hand from its formula."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from w2s_jax import losses
from w2s_jax.errors import ConfigError


def logits_for(p_pos):
  """Two-class logits whose softmax gives p(y=1) = p_pos."""
  p_pos = np.asarray(p_pos, np.float64)
  return jnp.asarray(np.stack([np.zeros_like(p_pos), np.log(p_pos / (1 - p_pos))], -1),
                     jnp.float32)


def soft(w_pos):
  w_pos = np.asarray(w_pos, np.float32)
  return jnp.asarray(np.stack([1 - w_pos, w_pos], -1))


def binary_xent(p, t):
  return -(t * math.log(p) + (1 - t) * math.log(1 - p))


def test_xent_soft_labels():
  # p = 0.75, w = 0.6: -0.6 ln 0.75 - 0.4 ln 0.25 = 0.727127
  out = losses.xent(logits_for([0.75]), soft([0.6]), step_frac=0.3)
  np.testing.assert_allclose(out, [0.727127], atol=1e-5)


def test_product_target_is_normalised_product():
  # p = [.25, .75], w = [.4, .6]: target ∝ [.1, .45] = [2/11, 9/11]
  out = losses.product(logits_for([0.75]), soft([0.6]), step_frac=0.0)
  expected = -(2 / 11) * math.log(0.25) - (9 / 11) * math.log(0.75)  # 0.487429
  np.testing.assert_allclose(out, [expected], atol=1e-5)
  np.testing.assert_allclose(expected, 0.487429, atol=1e-6)


def test_product_exponents():
  # alpha=2, beta=0: target ∝ w^2 = [.16, .36] -> [4/13, 9/13]
  out = losses.product(logits_for([0.75]), soft([0.6]), alpha=2.0, beta=0.0)
  expected = -(4 / 13) * math.log(0.25) - (9 / 13) * math.log(0.75)
  np.testing.assert_allclose(out, [expected], atol=1e-5)


@pytest.mark.parametrize("step_frac,a", [(0.0, 0.0), (0.05, 0.125), (0.1, 0.25), (0.2, 0.5),
                                         (0.7, 0.5), (1.0, 0.5)])
def test_confidence_warmup_ramp(step_frac, a):
  # a = a_max * min(step_frac / warmup_frac, 1) with a_max = .5, warmup_frac = .2
  np.testing.assert_allclose(losses.confidence_weight(step_frac, 0.5, 0.2), a, atol=1e-7)


def test_hardening_is_balanced_to_the_weak_label_rate():
  # Every student probability is above 0.5, but the weak labels average 0.25, so only the
  # top quarter of the batch (one example of four) is hardened to positive.
  hard = losses.balanced_hard_predictions(logits_for([0.6, 0.9, 0.7, 0.8]),
                                          soft([0.1, 0.2, 0.3, 0.4]))
  np.testing.assert_array_equal(hard[:, 1], [0, 1, 0, 0])
  # Weak labels averaging 0.75: three of four hardened positive.
  hard = losses.balanced_hard_predictions(logits_for([0.6, 0.9, 0.7, 0.8]),
                                          soft([0.9, 0.8, 0.7, 0.6]))
  np.testing.assert_array_equal(hard[:, 1], [0, 1, 1, 1])


def test_logconf_matches_hand_computation():
  p = [0.6, 0.9, 0.7, 0.8]
  w = [0.1, 0.2, 0.3, 0.4]
  hard = [0, 1, 0, 0]
  a = 0.25  # step_frac .1 of a .2 warmup, a_max .5
  expected = [binary_xent(pi, (1 - a) * wi + a * hi) for pi, wi, hi in zip(p, w, hard)]
  # e.g. example 2: target = .75 * .2 + .25 = .4; -.4 ln .9 - .6 ln .1 = 1.423695
  np.testing.assert_allclose(expected[1], 1.423695, atol=1e-6)
  out = losses.logconf(logits_for(p), soft(w), step_frac=0.1, a_max=0.5, warmup_frac=0.2)
  np.testing.assert_allclose(out, expected, atol=1e-5)


def test_logconf_equals_xent_before_warmup_starts():
  logits, labels = logits_for([0.6, 0.9, 0.7, 0.8]), soft([0.1, 0.2, 0.3, 0.4])
  np.testing.assert_allclose(losses.logconf(logits, labels, step_frac=0.0),
                             losses.xent(logits, labels), atol=1e-6)


def test_logconf_self_target_is_detached():
  # d/dlogits of CE with a fixed target t is softmax(logits) - t: the hardened part of the
  # target must not be differentiated through.
  p, w = [0.6, 0.9, 0.7, 0.8], [0.1, 0.2, 0.3, 0.4]
  grads = jax.grad(lambda z: losses.logconf(z, soft(w), step_frac=0.5).sum())(logits_for(p))
  target = 0.5 * np.asarray(w) + 0.5 * np.asarray([0, 1, 0, 0])
  np.testing.assert_allclose(grads[:, 1], np.asarray(p) - target, atol=1e-5)


def test_legacy_schedule_jumps_after_warmup():
  logits, labels = logits_for([0.6, 0.9, 0.7, 0.8]), soft([0.1, 0.2, 0.3, 0.4])
  hard = np.asarray([0, 1, 0, 0])
  for step_frac, a in [(0.1, 0.05), (0.11, 0.5)]:
    expected = [binary_xent(pi, (1 - a) * wi + a * hi)
                for pi, wi, hi in zip([0.6, 0.9, 0.7, 0.8], [0.1, 0.2, 0.3, 0.4], hard)]
    np.testing.assert_allclose(losses.logconf_legacy(logits, labels, step_frac=step_frac),
                               expected, atol=1e-5)


def test_losses_are_selected_by_name_with_hparams():
  fn = losses.get_loss("logconf", {"a_max": 1.0, "warmup_frac": 0.5})
  logits, labels = logits_for([0.6, 0.9, 0.7, 0.8]), soft([0.1, 0.2, 0.3, 0.4])
  np.testing.assert_allclose(fn(logits, labels, step_frac=0.25),
                             losses.logconf(logits, labels, step_frac=0.25, a_max=1.0,
                                            warmup_frac=0.5))


def test_unknown_loss_and_hparam_are_config_errors():
  with pytest.raises(ConfigError, match="unknown loss 'bogus'; choose from xent, logconf"):
    losses.get_loss("bogus")
  with pytest.raises(ConfigError, match="no hyperparameters \\['gamma'\\]"):
    losses.get_loss("product", {"gamma": 2.0})
