"""Train state, the pure train/eval steps (jitted with explicit shardings), and the loop.

The state is a plain pytree {"params", "opt", "step", "loss_state"}; loss_state is what a
loss keeps between steps (the recent predictions of a buffered confidence loss; usually
empty). Every jit names its in/out shardings; the train step donates the incoming state.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import math
import threading
from typing import Any, Callable, Iterable, Mapping, Sequence

import flax.linen as nn
import flax.traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm
from jax.sharding import NamedSharding, PartitionSpec as P
from jax.experimental import multihost_utils

from w2s_jax import losses, sharding
from w2s_jax.data import batching
from w2s_jax.errors import Interrupted, TrainingError

log = logging.getLogger(__name__)

# (params, batch, step, loss_state) -> (loss, (metrics, new loss_state))
Objective = Callable[[Any, Mapping[str, jax.Array], jax.Array, Any],
                     tuple[jax.Array, tuple[dict, Any]]]


def _path_names(path) -> tuple[str, ...]:
  return tuple(str(getattr(k, "key", getattr(k, "name", k))) for k in path
               if not isinstance(k, jax.tree_util.GetAttrKey))


def trainable_mask(params, trainable: Callable[[tuple[str, ...]], bool]):
  """A tree of bools over (possibly logically boxed) params: which ones train."""
  return jax.tree_util.tree_map_with_path(lambda p, _: trainable(_path_names(p)), params)


def learning_rate_schedule(train_cfg: Mapping, total_steps: int) -> optax.Schedule:
  """Cosine decay to 0 after an optional linear warmup."""
  lr, warmup = train_cfg["lr"], int(train_cfg.get("warmup_steps", 0))
  total_steps = max(total_steps, 1)
  if warmup > 0:
    return optax.warmup_cosine_decay_schedule(0.0, lr, min(warmup, total_steps), total_steps,
                                              end_value=0.0)
  return optax.cosine_decay_schedule(lr, total_steps, alpha=0.0)


def make_optimizer(train_cfg: Mapping, total_steps: int, *,
                   trainable: Callable[[tuple[str, ...]], bool] | None = None
                   ) -> optax.GradientTransformation:
  """Adam(W) on learning_rate_schedule. Parameters for which `trainable(path)` is False get
  no updates and no optimizer state."""
  schedule = learning_rate_schedule(train_cfg, total_steps)
  tx = optax.adamw(schedule, b1=train_cfg.get("b1", 0.9), b2=train_cfg.get("b2", 0.999),
                   weight_decay=train_cfg.get("weight_decay", 0.0))
  clip = train_cfg.get("max_grad_norm", 0.0)
  if clip:
    tx = optax.chain(optax.clip_by_global_norm(clip), tx)
  if trainable is not None:
    tx = optax.multi_transform(
        {"train": tx, "frozen": optax.set_to_zero()},
        lambda params: jax.tree.map(lambda t: "train" if t else "frozen",
                                    trainable_mask(params, trainable)))
  return tx


def describe_state(model: nn.Module, tx: optax.GradientTransformation, mesh, sample_batch,
                   rules=sharding.RULES, loss_state=None):
  """(abstract state, state shardings) without allocating anything.

  The abstract state holds ShapeDtypeStructs that carry their sharding, which makes it a
  restore target that lands every tensor directly on its devices. `loss_state` (small
  arrays) is replicated.
  """
  def boxed_state():
    params = model.init(jax.random.key(0), sample_batch["input_ids"],
                        sample_batch["attention_mask"])["params"]
    return {"params": params, "opt": tx.init(params), "step": jnp.zeros((), jnp.int32),
            "loss_state": loss_state or {}}

  boxed = jax.eval_shape(boxed_state)
  shardings = sharding.tree_shardings(boxed, mesh, rules)
  abstract = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                          nn.meta.unbox(boxed), shardings)
  return abstract, shardings


def init_state(model: nn.Module, tx: optax.GradientTransformation, shardings, sample_batch,
               seed: int, backbone_params=None, loss_state=None):
  """The state, initialised directly on its shardings (nothing is materialised whole).

  `backbone_params` (e.g. restored pretrained weights) take the place of the backbone's
  initialisation; only the parameters they lack (the head, LoRA adapters) are initialised,
  so a large backbone never exists twice. The state owns the given arrays from here on: the
  train step donates its input, so do not reuse them.
  """
  flat_shardings = flax.traverse_util.flatten_dict(shardings["params"], sep="/")
  loaded = flax.traverse_util.flatten_dict(backbone_params or {}, sep="/")
  loaded = {f"backbone/{path}": value for path, value in loaded.items()}
  unknown = sorted(set(loaded) - set(flat_shardings))
  if unknown:
    raise ValueError(f"loaded backbone has parameters the model lacks: {unknown[:3]}")
  fresh_paths = [p for p in flat_shardings if p not in loaded]

  def init_fresh(rng):  # XLA drops the initialisers of everything not returned
    params = nn.meta.unbox(model.init(rng, sample_batch["input_ids"],
                                      sample_batch["attention_mask"])["params"])
    flat = flax.traverse_util.flatten_dict(params, sep="/")
    return {p: flat[p] for p in fresh_paths}

  replicated = shardings["step"]  # a scalar: replicated on the mesh
  fresh = jax.jit(init_fresh, in_shardings=(replicated,),
                  out_shardings={p: flat_shardings[p] for p in fresh_paths},
                  compiler_options=initialiser_compiler_options(
                      replicated.mesh.devices.flat[0].platform))(
                      jax.random.key(seed))
  placed = {p: jax.device_put(v, flat_shardings[p]) for p, v in loaded.items()}
  params = flax.traverse_util.unflatten_dict({**fresh, **placed}, sep="/")
  opt = jax.jit(tx.init, in_shardings=(shardings["params"],),
                out_shardings=shardings["opt"])(params)
  step = jax.device_put(jnp.zeros((), jnp.int32), shardings["step"])
  loss_state = jax.device_put(loss_state or {}, shardings["loss_state"])
  return {"params": params, "opt": opt, "step": step, "loss_state": loss_state}


def initialiser_compiler_options(platform: str) -> dict:
  """On a CPU, LLVM -O2 for a model's initialiser: its per-parameter threefry loops compile
  2-3x faster than at the default -O3 (4-7 s -> 2-3 s for a small model), to the same values
  bit for bit (checked on every family, LoRA included); the program runs once."""
  return {"xla_backend_optimization_level": 2} if platform == "cpu" else {}


def create_state(model: nn.Module, tx: optax.GradientTransformation, mesh, sample_batch,
                 seed: int, rules=sharding.RULES, backbone_params=None, loss_state=None):
  """describe_state + init_state: returns (state, state_shardings)."""
  _, shardings = describe_state(model, tx, mesh, sample_batch, rules, loss_state)
  return (init_state(model, tx, shardings, sample_batch, seed, backbone_params, loss_state),
          shardings)


def initial_loss_state(loss: losses.Loss | Callable) -> dict:
  """What a loss keeps between steps: the last buffer_size predictions (NaN: none yet)."""
  buffer_size = getattr(loss, "buffer_size", 0)
  return {"recent": jnp.full((buffer_size,), jnp.nan, jnp.float32)} if buffer_size else {}


def _step_fraction(step, total_steps: int):
  # Behind a barrier, so XLA cannot fold this division into a loss's own (step_frac /
  # warmup_frac), which it does in some programs and not others.
  return jax.lax.optimization_barrier(step.astype(jnp.float32) / max(total_steps, 1))


def _chosen_loss(index, loss_fns: Sequence[Callable], logits, labels):
  """loss_fns[index](logits, labels), always inside a conditional (one loss: two copies of it,
  an index XLA cannot fold). XLA optimises a conditional's branch on its own, so a loss rounds
  the same in a program holding only it as among the students' losses trained together."""
  branches = list(loss_fns) if len(loss_fns) > 1 else [loss_fns[0]] * 2
  return jax.lax.switch(index, branches, logits, labels)


def classification_objective(model: nn.Module, loss: losses.Loss | Callable,
                             total_steps: int) -> Objective:
  """Mean of the per-example loss against batch["labels"] (probability vectors). A loss with
  a buffer sees the recent predictions and leaves this batch's in the loss state."""
  loss = loss if isinstance(loss, losses.Loss) else losses.Loss(loss)

  def objective(params, batch, step, loss_state):
    logits = model.apply({"params": params}, batch["input_ids"], batch["attention_mask"])
    step_frac = _step_fraction(step, total_steps)
    if not loss.buffer_size:
      always_first = (step < 0).astype(jnp.int32)  # 0 at run time, unknown to the compiler
      only = functools.partial(loss.fn, step_frac=step_frac)
      per_example = _chosen_loss(always_first, [only], logits, batch["labels"])
      return per_example.mean(), ({}, loss_state)
    recent = loss_state["recent"]
    per_example = loss.fn(logits, batch["labels"], step_frac=step_frac, recent=recent)
    p_pos = jax.lax.stop_gradient(jax.nn.softmax(logits.astype(jnp.float32))[:, 1])
    recent = jnp.concatenate([recent, p_pos])[-loss.buffer_size:]
    return per_example.mean(), ({}, {"recent": recent})
  return objective


def students_objective(model: nn.Module, student_losses: Sequence[losses.Loss],
                       total_steps: int) -> Objective:
  """The classification objective of several students trained together, each with its own
  loss: loss_state["student"] picks it (where students are vmapped, every loss is computed
  and the student's selected, which costs little next to the model). Losses that keep a
  state of their own (a buffer) are not supported here."""
  if any(loss.buffer_size for loss in student_losses):
    raise ValueError("students trained together cannot keep a buffer of predictions")

  def objective(params, batch, step, loss_state):
    logits = model.apply({"params": params}, batch["input_ids"], batch["attention_mask"])
    step_frac = _step_fraction(step, total_steps)
    fns = [functools.partial(loss.fn, step_frac=step_frac) for loss in student_losses]
    per_example = _chosen_loss(loss_state["student"], fns, logits, batch["labels"])
    return per_example.mean(), ({}, loss_state)
  return objective


def language_model_objective(model: nn.Module) -> Objective:
  """Next-token cross-entropy over real (unmasked) positions."""
  def objective(params, batch, step, loss_state):
    del step
    logits = model.apply({"params": params}, batch["input_ids"], batch["attention_mask"])
    targets = batch["input_ids"][:, 1:]
    weights = (batch["attention_mask"][:, 1:] * batch["attention_mask"][:, :-1]).astype(
        jnp.float32)
    nll = optax.softmax_cross_entropy_with_integer_labels(logits[:, :-1], targets)
    return (nll * weights).sum() / jnp.maximum(weights.sum(), 1.0), ({}, loss_state)
  return objective


def make_train_step(objective: Objective, tx: optax.GradientTransformation, state_shardings,
                    batch_sharding, trainable: Callable[[tuple[str, ...]], bool] | None = None,
                    accum_steps: int = 1):
  """train_step_fn jitted with the state's and batch's shardings, donating the state."""
  replicated = sharding.replicated(batch_sharding.mesh)
  return jax.jit(train_step_fn(objective, tx, trainable, accum_steps),
                 in_shardings=(state_shardings, batch_sharding),
                 out_shardings=(state_shardings, replicated), donate_argnums=0)


def stacked_shardings(shardings):
  """The shardings of a state stacked over students: the new leading axis replicated, so each
  device holds its share of every student."""
  return jax.tree.map(lambda s: NamedSharding(s.mesh, P(None, *s.spec)), shardings,
                      is_leaf=lambda x: isinstance(x, NamedSharding))


def students_in_parallel(chunk: int, count: int) -> int:
  """How many students trained together one program computes at once: `chunk` when > 0;
  else all of them (vmapped) on an accelerator, and one at a time on a CPU, where the
  batched matmuls and embedding scatters of vmap ran at 0.75x the speed of separate ones
  (benchmarks/students.py). One at a time is make_students_step (each student its own call,
  the calls side by side); more, vmapped chunks of a stacked state
  (make_vectorised_train_step)."""
  if chunk > 0:
    return min(chunk, count)
  return 1 if jax.default_backend() == "cpu" else count


def map_students(fn, stacked, chunk: int | None):
  """fn over the leading (student) axis of `stacked`, `chunk` students vmapped at a time
  inside one program (None or 1: one after another)."""
  return jax.lax.map(fn, stacked, batch_size=None if chunk in (None, 1) else chunk)


def each_student(fn, items: Sequence) -> list:
  """[fn(item) for item in items], the calls made from one thread each (one process only).

  One student's program leaves part of a CPU idle (the offline default's student step: 10.2
  ms called in turn, 7.1 ms each four at a time; docs/performance.md), and calls made from
  one thread run one after another. Each call has inputs of its own, so what it computes is
  the same either way. Processes of a multi-process run keep one order: their programs meet
  in collectives."""
  if len(items) < 2 or jax.process_count() > 1:
    return [fn(item) for item in items]
  return list(_student_threads(len(items)).map(fn, items))


@functools.cache
def _student_threads(count: int) -> concurrent.futures.ThreadPoolExecutor:
  # kept for the process: starting and joining threads at every step cost ~0.8 ms of ~30
  return concurrent.futures.ThreadPoolExecutor(count, thread_name_prefix="student")


def make_students_step(objective: Objective, tx: optax.GradientTransformation,
                       state_shardings, batch_sharding,
                       trainable: Callable[[tuple[str, ...]], bool] | None = None,
                       accum_steps: int = 1):
  """Students each stepped by its own call of one compiled step, side by side (each_student):
  (states, batch) -> (states, metrics with a list over students), a tuple of states whose
  loss_state["student"] picks each one's loss in `objective` (students_objective). A loss
  runs in a conditional branch in every classifier step (_chosen_loss), so each student's
  parameters are those of training it alone bit for bit (vmapping or slicing stacked states
  instead changed XLA's fusions and their rounding, which a self-referential loss such as
  `product` carried forward to 1.5e-5 in p)."""
  step = make_train_step(objective, tx, state_shardings, batch_sharding, trainable,
                         accum_steps)

  def students_step(states, batch):
    stepped = each_student(lambda state: step(state, batch), states)
    metrics = {k: [one[k] for _, one in stepped] for k in stepped[0][1]}
    return tuple(state for state, _ in stepped), metrics
  return students_step


def make_vectorised_train_step(objective: Objective, tx: optax.GradientTransformation,
                               state_shardings, batch_sharding,
                               trainable: Callable[[tuple[str, ...]], bool] | None = None,
                               accum_steps: int = 1, chunk: int | None = None):
  """train_step_fn over students: states stacked on a leading axis, one batch shared by all;
  one compiled program and one dispatch per step for every student (see map_students)."""
  replicated = sharding.replicated(batch_sharding.mesh)
  single = train_step_fn(objective, tx, trainable, accum_steps)

  def step(states, batch):
    return map_students(lambda state: single(state, batch), states, chunk)
  stacked = stacked_shardings(state_shardings)
  return jax.jit(step, in_shardings=(stacked, batch_sharding),
                 out_shardings=(stacked, replicated), donate_argnums=0)


def train_step_fn(objective: Objective, tx: optax.GradientTransformation,
                  trainable: Callable[[tuple[str, ...]], bool] | None = None,
                  accum_steps: int = 1):
  """The pure step (state, batch) -> (state, metrics). Frozen parameters (trainable(path)
  False) pass through stop_gradient, so no gradient is ever computed for them (a LoRA step
  skips every weight gradient).

  With accum_steps > 1 the batch is cut into that many micro-batches, whose gradients are
  averaged before one optimizer update (for a mean loss: the full batch's gradient, at a
  micro-batch's memory). Micro-batch j takes rows j, j + k, j + 2k, ... so each device holds
  its share of every micro-batch and nothing moves between devices; a loss state (the
  buffer of recent predictions) is carried from one micro-batch to the next.
  """
  def gradients(params, batch, step, loss_state):
    def loss_of(params):
      if trainable is not None:
        params = jax.tree.map(lambda p, t: p if t else jax.lax.stop_gradient(p), params,
                              trainable_mask(params, trainable))
      return objective(params, batch, step, loss_state)
    (loss, (aux, loss_state)), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
    return loss, aux, loss_state, grads

  def accumulated(params, batch, step, loss_state):
    def micro_batches(x):
      return x.reshape(x.shape[0] // accum_steps, accum_steps, *x.shape[1:]).swapaxes(0, 1)

    def add(carry, micro):
      loss_sum, aux_sum, loss_state, grad_sum = carry
      loss, aux, loss_state, grads = gradients(params, micro, step, loss_state)
      return (loss_sum + loss, jax.tree.map(jnp.add, aux_sum, aux), loss_state,
              jax.tree.map(jnp.add, grad_sum, grads)), None

    micro = jax.tree.map(micro_batches, batch)
    first = jax.tree.map(lambda x: x[0], micro)
    shapes = jax.eval_shape(gradients, params, first, step, loss_state)
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), (shapes[0], shapes[1], shapes[3]))
    (loss, aux, loss_state, grads), _ = jax.lax.scan(
        add, (zeros[0], zeros[1], loss_state, zeros[2]), micro)
    scale = 1.0 / accum_steps
    return loss * scale, jax.tree.map(lambda a: a * scale, aux), loss_state, jax.tree.map(
        lambda g: g * scale, grads)

  def train_step(state, batch):
    compute = gradients if accum_steps == 1 else accumulated
    loss, aux, loss_state, grads = compute(state["params"], batch, state["step"],
                                           state["loss_state"])
    updates, opt = tx.update(grads, state["opt"], state["params"])
    new_state = {"params": optax.apply_updates(state["params"], updates), "opt": opt,
                 "step": state["step"] + 1, "loss_state": loss_state}
    return new_state, {"loss": loss, "grad_norm": optax.tree.norm(grads), **aux}

  return train_step


def make_predict_step(model: nn.Module, param_shardings, batch_sharding,
                      students_chunk: int = 0):
  """(params, batch) -> logits [batch, classes], float32. With students_chunk != 0 the
  params are stacked over students and the logits are [students, batch, classes]."""
  def predict_step(params, batch):
    logits = model.apply({"params": params}, batch["input_ids"], batch["attention_mask"])
    return logits.astype(jnp.float32)
  if students_chunk == 0:
    return jax.jit(predict_step, in_shardings=(param_shardings, batch_sharding),
                   out_shardings=batch_sharding)
  return jax.jit(lambda params, batch: map_students(lambda p: predict_step(p, batch), params,
                                                    students_chunk),
                 in_shardings=(stacked_shardings(param_shardings), batch_sharding),
                 out_shardings=stacked_shardings(batch_sharding))


def predict(predict_step, params, arrays: Mapping[str, np.ndarray], batch_size: int,
            batch_sharding) -> np.ndarray:
  """Logits for every row of `arrays`, in order, gathered to the host."""
  inputs = {k: arrays[k] for k in ("input_ids", "attention_mask")}
  out = None
  for batch, real in batching.eval_batches(inputs, batch_size):
    logits = predict_step(params, sharding.put_batch(batch, batch_sharding))
    logits = np.asarray(multihost_utils.process_allgather(logits, tiled=True)
                        if jax.process_count() > 1 else logits)
    if out is None:
      out = np.empty((*logits.shape[:-2], len(inputs["input_ids"]), logits.shape[-1]),
                     np.float32)
    out[..., real, :] = logits[..., : len(real), :]
  return out if out is not None else np.zeros((0, 2), np.float32)


# SIGINT/SIGTERM ask the running loop to checkpoint and stop at the next step boundary
# (main installs the handlers); where no loop runs, the signal interrupts at once.
_stop_requested = threading.Event()
_loops_running = 0


def request_stop() -> bool:
  """Asks the running training loop to save a checkpoint and stop after its current step;
  False when there is none (or a stop was already asked for): interrupt directly then."""
  if _loops_running == 0 or _stop_requested.is_set():
    return False
  _stop_requested.set()
  return True


def fit(state, train_step, batches, total_steps: int, batch_sharding, *, log_every: int = 25,
        desc: str = "train", validate: Callable[[Any], float] | None = None,
        validate_every: int = 0, select_best: bool = False, patience: int = 0,
        checkpoints=None, max_loss_ratio: float = 0.0, remedy: str = "lower the learning rate",
        tracker=None):
  """Runs train_step over the batches (a resumable grain iterator when checkpointing).

  The loss is read back at step 1 and every `log_every` steps, so the host does not stall
  the device. A non-finite loss, or one above max_loss_ratio times the first (when > 0), is a
  TrainingError naming `desc`, the step and the `remedy`.

  With `validate` (params -> score, higher is better; NaN counts as worst) and
  validate_every > 0, the params are scored every validate_every steps and at the end:
  `select_best` returns the best-scoring params (EleutherAI's best checkpoint) and
  `patience` > 0 stops after that many scores in a row without improvement.

  With `checkpoints` (checkpoints.TrainCheckpoints), training resumes from the latest one
  when there is one (`state` may then be None) and saves as they are due; a stop request
  (request_stop) saves one and raises Interrupted. A `tracker` (tracking.Tracker) receives
  the logged scalars and is told of every step.

  Returns (state, log): log = {"history": [{step, loss, grad_norm}], "validation":
  [{step, score}], "best_step": step of the returned params' score or None, "stopped_at":
  the step of an early stop or None, "resumed_from": the step training resumed at or None}.
  """
  global _loops_running
  record = {"step": 0, "history": [], "validation": [], "best_score": None,
            "best_step": None, "since_best": 0, "stopped_at": None, "start_loss": None}
  best_params, resumed_from = None, None
  if checkpoints is not None and checkpoints.latest_step() is not None:
    state, record, best_params = checkpoints.restore(batches)
    resumed_from = record["step"]
    log.info("%s: resuming at step %d/%d from %s", desc, resumed_from, total_steps,
             checkpoints.directory)
  if state is None:
    raise ValueError("fit needs a state or a checkpoint to resume from")
  bar = tqdm.tqdm(total=total_steps, initial=record["step"], desc=desc, disable=None,
                  leave=False)
  _loops_running += 1
  try:
    for step, batch in enumerate(batches, start=record["step"] + 1):
      state, metrics = train_step(state, sharding.put_batch(batch, batch_sharding))
      record["step"] = step
      bar.update(1)
      if step == 1 or step % log_every == 0 or step == total_steps:
        # A scalar, or one value per student when students train together.
        loss, grad_norm = (np.asarray(metrics[k], np.float64).tolist()
                           for k in ("loss", "grad_norm"))
        worst = max(np.atleast_1d(loss), key=lambda v: (not math.isfinite(v), v))
        _check_loss(float(worst), record, step, total_steps, desc, max_loss_ratio, remedy)
        record["history"].append({"step": step, "loss": loss, "grad_norm": grad_norm})
        bar.set_postfix(loss=f"{float(np.mean(loss)):.4f}")
        if tracker is not None and not isinstance(loss, list):
          tracker.scalars(step, {"loss": loss, "grad_norm": grad_norm})
      if tracker is not None:
        last = record["history"][-1]["loss"] if record["history"] else None
        tracker.step(step, float(np.mean(last)) if last is not None else None)
      if validate is not None and validate_every and (step % validate_every == 0
                                                      or step == total_steps):
        score = float(validate(state["params"]))
        record["validation"].append({"step": step, "score": score})
        if tracker is not None:
          tracker.scalars(step, {"validation_auroc": score})
        if math.isfinite(score) and (record["best_score"] is None
                                     or score > record["best_score"]):
          record.update(best_score=score, best_step=step, since_best=0)
          if select_best:  # the step donates its input: keep a copy, not the buffers
            best_params = jax.tree.map(jnp.copy, state["params"])
        else:
          record["since_best"] += 1
          if patience and record["since_best"] >= patience:
            record["stopped_at"] = step
            break
      stop = _stop_requested.is_set()
      if checkpoints is not None and step < total_steps and (stop or checkpoints.due(step)):
        checkpoints.save(step, state, batches, record, best_params)
      if stop:
        saved = "checkpoint saved" if checkpoints is not None else "checkpointing is off"
        raise Interrupted(f"at step {step}/{total_steps} ({saved})")
  finally:
    _loops_running -= 1
    _stop_requested.clear()
    bar.close()
    if checkpoints is not None:
      checkpoints.close()
    if tracker is not None:
      tracker.close()
  if record["history"]:
    log.info("%s: %d steps, final loss %s", desc, record["history"][-1]["step"],
             np.round(record["history"][-1]["loss"], 4))
  if best_params is not None:
    state = {**state, "params": best_params}
    log.info("%s: best validation score %.4f at step %d", desc, record["best_score"],
             record["best_step"])
  return state, {"history": record["history"], "validation": record["validation"],
                 "best_step": record["best_step"] if select_best else None,
                 "stopped_at": record["stopped_at"], "resumed_from": resumed_from}


def _check_loss(loss, record, step, total_steps, desc, max_loss_ratio, remedy) -> None:
  """Stops a diverged run: a non-finite loss, or one far above where training started."""
  if not math.isfinite(loss):
    raise TrainingError(f"{desc}: loss is {loss} at step {step}/{total_steps}; {remedy} or "
                        "check the labels for NaN")
  if record["start_loss"] is None:
    record["start_loss"] = loss
  bound = max_loss_ratio * max(record["start_loss"], 1e-2)
  if max_loss_ratio and loss > bound:
    raise TrainingError(f"{desc}: loss {loss:.3g} at step {step}/{total_steps} is over "
                        f"{max_loss_ratio:g}x its start ({record['start_loss']:.3g}): training "
                        f"diverged; {remedy}")
