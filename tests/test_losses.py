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


def test_entropy_uses_the_students_soft_prediction_as_self_target():
  # a = .5 * min(.1 / .2, 1) = .25; target = .75 * .6 + .25 * .75 = .6375
  # loss = -(.6375 ln .75 + .3625 ln .25) = 0.685929
  out = losses.entropy(logits_for([0.75]), soft([0.6]), step_frac=0.1)
  np.testing.assert_allclose(out, [binary_xent(0.75, 0.6375)], atol=1e-5)
  np.testing.assert_allclose(binary_xent(0.75, 0.6375), 0.685929, atol=1e-6)
  grads = jax.grad(lambda z: losses.entropy(z, soft([0.6]), step_frac=0.1).sum())(
      logits_for([0.75]))
  np.testing.assert_allclose(grads[:, 1], [0.75 - 0.6375], atol=1e-5)  # self-target detached


def test_window_trains_only_where_the_student_is_unsure():
  # max p = .6, .9, .7: only the first is below .5 + .15
  out = losses.window(logits_for([0.6, 0.9, 0.3]), soft([0.8, 0.2, 0.5]), radius=0.15)
  np.testing.assert_allclose(out, [binary_xent(0.6, 0.8), 0.0, 0.0], atol=1e-5)
  np.testing.assert_allclose(binary_xent(0.6, 0.8), 0.591919, atol=1e-6)


def test_midweak_radius_is_the_median_weak_confidence():
  labels = np.asarray(soft([0.8, 0.2, 0.5, 0.9]))  # |w - .5| = .3, .3, 0, .4: median .3
  bound = losses.bind("window_midweak", {"window_midweak": {"base": "window",
                                                            "radius": "midweak"}}, labels)
  assert bound.fn.keywords == {"radius": pytest.approx(0.3)}
  with pytest.raises(ConfigError, match="radius='wide'; give a number or 'midweak'"):
    losses.bind("window", {"window": {"radius": "wide"}})


def test_kl_is_cross_entropy_minus_label_entropy():
  # .6 ln(.6/.75) + .4 ln(.4/.25) = 0.054115; a one-hot label gives -ln p
  out = losses.kl(logits_for([0.75, 0.75]), soft([0.6, 1.0]))
  np.testing.assert_allclose(out, [0.054115, -math.log(0.75)], atol=1e-5)


def test_adaptconf_weights_the_self_target_by_the_discrepancy():
  # Disagreeing (p = .75, w = .4): c_s = -ln .75, c_w = -ln .25, beta = sigmoid(-ln 9) = .1;
  # KL(w||p) = .4 ln(.4/.75) + .6 ln(.6/.25) = 0.273838; loss = .9 KL + .1 c_s = 0.275222.
  # Agreeing (p = .75, w = .6): beta = .5; loss = .5 * 0.054115 + .5 * 0.287682 = 0.170899.
  out = losses.adaptconf(logits_for([0.75, 0.75]), soft([0.4, 0.6]), temperature=0.5)
  np.testing.assert_allclose(out, [0.275222, 0.170899], atol=1e-5)


def test_logconf_balance_batch_centres_the_labels_and_hardens_half():
  # w = .8, .6: log-odds ln 4, ln 1.5 minus their mean -> +-0.490415 -> .620203, .379797;
  # half the batch hardened positive: p = .7, .9 -> hard = 0, 1; a = .5 at step_frac 1.
  out = losses.logconf(logits_for([0.7, 0.9]), soft([0.8, 0.6]), step_frac=1.0,
                       balance_batch=True)
  targets = [0.5 * 0.620203, 0.5 * 0.379797 + 0.5]
  np.testing.assert_allclose(out, [binary_xent(0.7, targets[0]), binary_xent(0.9, targets[1])],
                             atol=1e-5)


def test_logconf_threshold_pools_recent_predictions():
  # Alone, the batch's median (.75) hardens .9 positive. Pooled with recent predictions
  # .95, .97, .99 (and an empty NaN slot) the median is .95, so nothing is positive.
  logits, labels = logits_for([0.6, 0.9]), soft([0.5, 0.5])
  alone = losses.balanced_hard_predictions(logits, labels)
  pooled = losses.balanced_hard_predictions(logits, labels, jnp.array([0.95, 0.97, 0.99,
                                                                       jnp.nan]))
  np.testing.assert_array_equal(alone[:, 1], [0, 1])
  np.testing.assert_array_equal(pooled[:, 1], [0, 0])


def test_loss_variants_name_a_base_loss():
  cfg = {"logconf_buffered": {"base": "logconf", "a_max": 1.0, "buffer_size": 64}}
  bound = losses.bind("logconf_buffered", cfg)
  assert bound.buffer_size == 64 and bound.fn.func is losses.logconf
  assert bound.fn.keywords == {"a_max": 1.0}
  with pytest.raises(ConfigError, match="loss 'xent' has no hyperparameters \\['buffer_size'\\]"):
    losses.bind("xent", {"xent": {"buffer_size": 8}})
  with pytest.raises(ConfigError, match="unknown loss 'nope'"):
    losses.bind("nope", cfg)
