"""The pure train step: it learns, and it is the same computation on 1 and 8 devices."""

import concurrent.futures
import functools
import threading

import flax.traverse_util
import jax
import numpy as np
import pytest

from w2s_jax import losses, models, sharding, train
from w2s_jax.errors import TrainingError

CFG = dict(arch="gpt2", vocab_size=40, n_positions=12, d_model=32, n_layers=2, n_heads=4,
           d_mlp=64)


def fixed_batch(n=16, length=12, seed=0):
  rng = np.random.default_rng(seed)
  ids = rng.integers(1, 40, size=(n, length)).astype(np.int32)
  lengths = rng.integers(4, length + 1, size=n)
  mask = (np.arange(length)[None] < lengths[:, None]).astype(np.int32)
  labels = (ids[:, 0] > 20).astype(np.int32)  # learnable from the first token
  return {"input_ids": ids, "attention_mask": mask,
          "labels": np.eye(2, dtype=np.float32)[labels]}


def run_steps(mesh, batch, n_steps, loss="xent", lr=1e-2):
  model = models.build_classifier(CFG, head_init_std=0.02)
  tx = train.make_optimizer(train.TrainSettings(lr=lr, warmup_steps=0), 100)
  state, shardings = train.create_state(model, tx, mesh, batch, seed=0)
  batch_sharding = sharding.batch_sharding(mesh)
  step = train.make_train_step(
      train.classification_objective(model, losses.get_loss(loss), 100), tx, shardings,
      batch_sharding)
  history = []
  for _ in range(n_steps):
    state, m = step(state, sharding.put_batch(batch, batch_sharding))
    history.append(float(m["loss"]))
  return state, history


def test_train_step_lowers_the_loss_on_a_fixed_batch():
  mesh = sharding.make_mesh({"data": 1}, devices=jax.devices()[:1])
  _, history = run_steps(mesh, fixed_batch(), 20)
  assert history[-1] < 0.5 * history[0]


def test_logconf_train_step_lowers_the_loss():
  mesh = sharding.make_mesh({"data": 1}, devices=jax.devices()[:1])
  _, history = run_steps(mesh, fixed_batch(), 20, loss="logconf")
  assert history[-1] < history[0]


@pytest.mark.parametrize("mesh_cfg", [{"data": 8}, {"data": 2, "fsdp": 4},
                                      {"data": 2, "fsdp": 2, "tensor": 2}])
def test_one_device_and_eight_devices_agree(mesh_cfg):
  # Summation order differs between layouts, so gradients agree to float32 rounding. Adam
  # divides by sqrt(v) + 1e-8, which turns rounding noise in directions whose true gradient
  # is zero (e.g. the all-ones direction of a LayerNorm output) into updates of ~0.01 * lr;
  # at lr 1e-3 (the default weak-model rate) that stays well inside 1e-5 over 3 steps.
  assert jax.device_count() == 8
  batch = fixed_batch()
  one = sharding.make_mesh({"data": 1}, devices=jax.devices()[:1])
  eight = sharding.make_mesh(mesh_cfg)
  state_1, loss_1 = run_steps(one, batch, 3, lr=1e-3)
  state_8, loss_8 = run_steps(eight, batch, 3, lr=1e-3)
  np.testing.assert_allclose(loss_1, loss_8, atol=1e-5)
  for a, b in zip(jax.tree.leaves(state_1["params"]), jax.tree.leaves(state_8["params"])):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)


def test_fsdp_shards_parameters_and_optimizer_state():
  mesh = sharding.make_mesh({"data": 1, "fsdp": 8})
  batch = fixed_batch()
  model = models.build_classifier(CFG)
  tx = train.make_optimizer(train.TrainSettings(lr=1e-3), 10)
  state, _ = train.create_state(model, tx, mesh, batch, seed=0)
  kernel = state["params"]["backbone"]["h_0"]["c_fc"]["kernel"]  # (embed, mlp)
  assert kernel.sharding.spec[0] == "fsdp"
  assert kernel.addressable_shards[0].data.shape == (32 // 8, 64)
  mu = state["opt"][0].mu["backbone"]["h_0"]["c_fc"]["kernel"]
  assert mu.sharding == kernel.sharding


def test_non_finite_loss_stops_training_with_one_line_error():
  mesh = sharding.make_mesh({"data": 1}, devices=jax.devices()[:1])
  batch = fixed_batch()
  batch["labels"] = np.full_like(batch["labels"], np.nan)
  model = models.build_classifier(CFG)
  tx = train.make_optimizer(train.TrainSettings(lr=1e-3), 4)
  state, shardings = train.create_state(model, tx, mesh, batch, seed=0)
  bs = sharding.batch_sharding(mesh)
  step = train.make_train_step(
      train.classification_objective(model, losses.get_loss("xent"), 4), tx, shardings, bs)
  with pytest.raises(TrainingError, match="loss is nan at step 1/4; lower the learning rate"):
    train.fit(state, step, [batch] * 4, 4, bs, log_every=2, desc="weak")


def test_mesh_shape_fills_the_rest_and_rejects_bad_sizes():
  from w2s_jax.errors import ConfigError
  assert sharding.mesh_shape({"data": -1, "fsdp": 2}, 8) == (4, 2, 1)
  with pytest.raises(ConfigError, match="needs 6 devices but 8 are visible"):
    sharding.mesh_shape({"data": 3, "fsdp": 2}, 8)
  with pytest.raises(ConfigError, match="mesh axes \\['model'\\] are unknown"):
    sharding.mesh_shape({"model": 2}, 8)


def frozen_run(mesh, batch, cfg, trainable, n_steps=10, lr=1e-2):
  model = models.build_classifier(cfg, head_init_std=0.02)
  tx = train.make_optimizer(train.TrainSettings(lr=lr), 100, trainable=trainable)
  state, shardings = train.create_state(model, tx, mesh, batch, seed=0)
  before = jax.tree.map(np.asarray, state["params"])
  bs = sharding.batch_sharding(mesh)
  step = train.make_train_step(train.classification_objective(model, losses.get_loss("xent"),
                                                              100), tx, shardings, bs, trainable)
  losses_seen = []
  for _ in range(n_steps):
    state, m = step(state, sharding.put_batch(batch, bs))
    losses_seen.append(float(m["loss"]))
  return model, before, jax.tree.map(np.asarray, state["params"]), state, losses_seen


def changed(before, after):
  return {jax.tree_util.keystr(p): not np.array_equal(a, b) for (p, a), b in
          zip(jax.tree_util.tree_leaves_with_path(before), jax.tree.leaves(after))}


def test_linear_probe_trains_the_head_only():
  mesh = sharding.make_mesh({"data": 8})
  trainable = functools.partial(models.is_trainable, linear_probe=True, lora=False)
  _, before, after, state, seen = frozen_run(mesh, fixed_batch(), CFG, trainable)
  moved = changed(before, after)
  assert all(moved[k] == k.startswith("['head']") for k in moved), moved
  assert seen[-1] < seen[0]
  opt_leaves = [x for x in jax.tree.leaves(state["opt"]) if x.ndim > 0]
  n_head = sum(x.size for x in jax.tree.leaves(after["head"]))
  assert sum(x.size for x in opt_leaves) == 2 * n_head  # Adam's mu and nu, head only


def test_lora_trains_adapters_and_head_and_starts_from_the_base_model():
  mesh = sharding.make_mesh({"data": 8})
  lora_cfg = {**CFG, "lora_rank": 4}
  trainable = functools.partial(models.is_trainable, linear_probe=False, lora=True)
  model, before, after, _, seen = frozen_run(mesh, fixed_batch(), lora_cfg, trainable)
  moved = changed(before, after)
  assert all(moved[k] == ("lora_" in k or k.startswith("['head']")) for k in moved), moved
  assert seen[-1] < seen[0]
  # With B = 0 the adapted model computes exactly what the base model does.
  plain = models.build_classifier(CFG, head_init_std=0.02)
  flat = flax.traverse_util.flatten_dict(before)
  base_only = flax.traverse_util.unflatten_dict(
      {p: v for p, v in flat.items() if not p[-1].startswith("lora_")})
  batch = fixed_batch()
  np.testing.assert_allclose(
      model.apply({"params": before}, batch["input_ids"], batch["attention_mask"]),
      plain.apply({"params": base_only}, batch["input_ids"], batch["attention_mask"]),
      atol=1e-6)


def test_buffered_loss_keeps_the_latest_predictions_in_the_state():
  mesh = sharding.make_mesh({"data": 1}, devices=jax.devices()[:1])
  model = models.build_classifier(CFG, head_init_std=0.02)
  tx = train.make_optimizer(train.TrainSettings(lr=1e-3), 10)
  loss = losses.bind("logconf_buffered", {"logconf_buffered": {"base": "logconf",
                                                               "buffer_size": 24}})
  batches = [fixed_batch(n=16, seed=s) for s in (0, 1)]
  state, shardings = train.create_state(model, tx, mesh, batches[0], seed=0,
                                        loss_state=train.initial_loss_state(loss))
  assert np.isnan(np.asarray(state["loss_state"]["recent"])).all()
  bs = sharding.batch_sharding(mesh)
  step = train.make_train_step(train.classification_objective(model, loss, 10), tx, shardings,
                               bs)
  seen = []
  for batch in batches:
    params = jax.tree.map(np.asarray, state["params"])
    seen.append(jax.nn.softmax(model.apply({"params": params}, batch["input_ids"],
                                           batch["attention_mask"]))[:, 1])
    state, _ = step(state, sharding.put_batch(batch, bs))
  expected = np.concatenate(seen)[-24:]  # 16 of the second batch, 8 of the first before
  np.testing.assert_allclose(np.asarray(state["loss_state"]["recent"]), expected, atol=1e-6)


def test_fit_keeps_the_best_validated_params_and_stops_early():
  mesh = sharding.make_mesh({"data": 1}, devices=jax.devices()[:1])
  batch = fixed_batch()
  model = models.build_classifier(CFG, head_init_std=0.02)
  tx = train.make_optimizer(train.TrainSettings(lr=1e-2), 20)
  state, shardings = train.create_state(model, tx, mesh, batch, seed=0)
  bs = sharding.batch_sharding(mesh)
  step = train.make_train_step(train.classification_objective(model, losses.get_loss("xent"),
                                                              20), tx, shardings, bs)
  scores = iter([0.5, 0.9, 0.7, 0.6, 0.95])  # best at the 2nd score, then two worse
  snapshots = {}

  def validate(params):
    snapshots[len(snapshots) + 1] = jax.tree.map(np.asarray, params)
    return next(scores)
  state, fit_log = train.fit(state, step, [batch] * 20, 20, bs, log_every=5, validate=validate,
                             validate_every=2, select_best=True, patience=2)
  assert [v["step"] for v in fit_log["validation"]] == [2, 4, 6, 8]
  assert fit_log["best_step"] == 4 and fit_log["stopped_at"] == 8
  for a, b in zip(jax.tree.leaves(state["params"]), jax.tree.leaves(snapshots[2])):
    np.testing.assert_array_equal(np.asarray(a), b)


@pytest.mark.parametrize("mesh_cfg", [{"data": 1}, {"data": 2, "fsdp": 2}])
def test_gradient_accumulation_equals_the_full_batch_step(mesh_cfg):
  devices = jax.devices()[:int(np.prod(list(mesh_cfg.values())))]
  mesh = sharding.make_mesh(mesh_cfg, devices=devices)
  batch = fixed_batch(n=16)
  model = models.build_classifier(CFG, head_init_std=0.02)
  tx = train.make_optimizer(train.TrainSettings(lr=1e-3), 10)
  objective = train.classification_objective(model, losses.get_loss("xent"), 10)
  bs = sharding.batch_sharding(mesh)
  results = []
  for accum in (1, 4):
    state, shardings = train.create_state(model, tx, mesh, batch, seed=0)
    step = train.make_train_step(objective, tx, shardings, bs, accum_steps=accum)
    for _ in range(2):
      state, metrics = step(state, sharding.put_batch(batch, bs))
    results.append((float(metrics["loss"]), jax.tree.map(np.asarray, state["params"])))
  (loss_full, full), (loss_accum, accumulated) = results
  np.testing.assert_allclose(loss_accum, loss_full, rtol=1e-6)
  # Summation order differs; Adam scales the rounding noise up (see the layouts test above).
  for a, b in zip(jax.tree.leaves(accumulated), jax.tree.leaves(full)):
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_bfloat16_compute_keeps_float32_master_weights():
  mesh = sharding.make_mesh({"data": 1}, devices=jax.devices()[:1])
  batch = fixed_batch()
  model = models.build_classifier({**CFG, "dtype": "bfloat16", "param_dtype": "float32"},
                                  head_init_std=0.02)
  tx = train.make_optimizer(train.TrainSettings(lr=1e-2), 100)
  state, shardings = train.create_state(model, tx, mesh, batch, seed=0)
  bs = sharding.batch_sharding(mesh)
  step = train.make_train_step(train.classification_objective(model, losses.get_loss("xent"),
                                                              100), tx, shardings, bs)
  placed = sharding.put_batch(batch, bs)
  hlo = step.lower(state, placed).as_text()
  assert "bf16" in hlo and "dot_general" in hlo  # the matmuls run in bfloat16
  before = jax.tree.map(np.asarray, state["params"])
  losses_seen = []
  for _ in range(10):
    state, metrics = step(state, placed)
    losses_seen.append(float(metrics["loss"]))
  assert {leaf.dtype for leaf in jax.tree.leaves(state["params"])} == {np.dtype("float32")}
  assert {leaf.dtype for leaf in jax.tree.leaves(state["opt"]) if leaf.ndim} == {
      np.dtype("float32")}
  # An update smaller than bfloat16 can hold still moves a float32 master weight.
  kernel = "backbone/h_0/c_fc/kernel".split("/")
  moved = np.asarray(flax.traverse_util.flatten_dict(state["params"])[tuple(kernel)]) != \
      flax.traverse_util.flatten_dict(before)[tuple(kernel)]
  assert moved.mean() > 0.5
  assert losses_seen[-1] < losses_seen[0]


def students_trained_alone(model, tx, mesh, batches, bound):
  bs = sharding.batch_sharding(mesh)
  alone = []
  for loss in bound:
    state, shardings = train.create_state(model, tx, mesh, batches[0], seed=0)
    step = train.make_train_step(train.classification_objective(model, loss, 10), tx,
                                 shardings, bs)
    for batch in batches:
      state, metrics = step(state, sharding.put_batch(batch, bs))
    alone.append((float(metrics["loss"]), state["params"]))
  return alone


def test_students_one_at_a_time_match_students_trained_alone_exactly():
  """The CPU path of students trained together: one compiled step choosing each student's
  loss, the same parameters bit for bit as training alone. (At this shape, stacking the
  states and slicing them changed XLA's fusions and the rounding of some Adam moments;
  `product` carries such differences forward through its own predictions; a loss compiled
  in beside the model instead of behind a switch rounded `logconf`'s schedule and threshold
  differently.)"""
  mesh = sharding.make_mesh({"data": 1}, devices=jax.devices()[:1])
  rng = np.random.default_rng(0)
  batches = []
  for _ in range(6):
    p_pos = rng.uniform(0.05, 0.95, 32).astype(np.float32)
    batches.append({"input_ids": rng.integers(0, 64, (32, 32)).astype(np.int32),
                    "attention_mask": np.ones((32, 32), np.int32),
                    "labels": np.stack([1 - p_pos, p_pos], -1)})
  bs = sharding.batch_sharding(mesh)
  model = models.build_classifier(dict(CFG, vocab_size=64, d_model=64, d_mlp=256,
                                       n_positions=64), head_init_std=0.0)
  tx = train.make_optimizer(train.TrainSettings(lr=3e-4), len(batches))
  bound = [losses.bind(name, None, batches[0]["labels"])
           for name in ("product", "logconf", "xent")]
  alone = students_trained_alone(model, tx, mesh, batches, bound[:2])  # the sensitive ones
  loss_state = {"student": jax.numpy.zeros((), jax.numpy.int32)}
  state, shardings = train.create_state(model, tx, mesh, batches[0], seed=0,
                                        loss_state=loss_state)
  states = tuple({**jax.tree.map(jax.numpy.copy, state),
                  "loss_state": {"student": jax.numpy.asarray(i, jax.numpy.int32)}}
                 for i in range(len(bound)))
  with concurrent.futures.ThreadPoolExecutor(len(bound)) as pool:
    step = train.make_students_step(train.students_objective(model, bound, 10), tx, shardings,
                                    bs, pool=pool)
    for batch in batches:
      states, metrics = step(states, sharding.put_batch(batch, bs))
  assert len(metrics["loss"]) == len(bound)
  for i, (loss, params) in enumerate(alone):
    assert float(metrics["loss"][i]) == loss
    for a, b in zip(jax.tree.leaves(states[i]["params"]), jax.tree.leaves(params)):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))



def test_each_student_calls_side_by_side_and_keeps_the_order():
  """Students' steps on a CPU run at the same time, from a thread each (a step of a small
  model leaves cores idle); the results come back in the students' order."""
  meeting = threading.Barrier(3, timeout=10)  # broken unless all three calls run at once

  def call(i):
    meeting.wait()
    return i * i
  with concurrent.futures.ThreadPoolExecutor(3) as pool:
    assert train.each_student(call, [0, 1, 2], pool) == [0, 1, 4]

def test_vmapped_students_match_students_trained_alone():
  """The accelerator path (students vmapped)."""
  chunk = 2
  mesh = sharding.make_mesh({"data": 2, "fsdp": 2}, devices=jax.devices()[:4])
  batch = fixed_batch(n=16)
  bs = sharding.batch_sharding(mesh)
  model = models.build_classifier(CFG, head_init_std=0.02)
  tx = train.make_optimizer(train.TrainSettings(lr=1e-2), 10)
  names = ["xent", "kl"]
  bound = [losses.bind(name, None, batch["labels"]) for name in names]
  alone = students_trained_alone(model, tx, mesh, [batch] * 3, bound)

  loss_state = {"student": jax.numpy.zeros((), jax.numpy.int32)}
  state, shardings = train.create_state(model, tx, mesh, batch, seed=0, loss_state=loss_state)
  stacked = jax.tree.map(lambda x: jax.numpy.stack([x] * len(names)), state)
  stacked["loss_state"] = {"student": jax.numpy.arange(len(names), dtype=jax.numpy.int32)}
  # placed as the step returns it, so its second call reuses the first's program
  stacked = jax.device_put(stacked, train.stacked_shardings(shardings))
  step = train.make_vectorised_train_step(train.students_objective(model, bound, 10), tx,
                                          shardings, bs, chunk=chunk)
  for _ in range(3):
    stacked, metrics = step(stacked, sharding.put_batch(batch, bs))
  predict = train.make_predict_step(model, shardings["params"], bs, students_chunk=chunk)
  together_logits = train.predict(predict, stacked["params"], batch, 8, bs)
  single_predict = train.make_predict_step(model, shardings["params"], bs)
  for i, (loss, params) in enumerate(alone):
    assert float(metrics["loss"][i]) == pytest.approx(loss, abs=1e-6)
    for a, b in zip(jax.tree.leaves(stacked["params"]), jax.tree.leaves(params)):
      np.testing.assert_allclose(np.asarray(a[i]), np.asarray(b), atol=1e-5)
    np.testing.assert_allclose(together_logits[i],
                               train.predict(single_predict, params, batch, 8, bs), atol=1e-5)
