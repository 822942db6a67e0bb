"""A weak-to-strong experiment: the weak model, the ceiling, and one student per method.

  weak:    the weak role trained on ground truth of A (supervisors.weak)
  ceiling: the strong role trained on ground truth (ceiling.split)
  student: the strong role trained on a supervisor's labels of B with a loss, one per item
           of student.losses ("<loss>" on the weak model, or "<loss>@<supervisor>")

Every model is a cached phase (phases.py) and every supervisor resolves to its labels
(supervision.py), so students that share a supervisor share its phases. Results go to
`<workdir>/results/<config hash>/results.json`, beside the resolved config, once everything
is computed.
"""

from __future__ import annotations

import os
import pathlib
import tempfile
import time
from typing import Any, Mapping

import jax
import numpy as np

from w2s_jax import checkpoints, config as config_lib, data, metrics, models, phases, sharding
from w2s_jax import supervision
from w2s_jax.errors import ConfigError


def check_batch_sizes(cfg, mesh, roles) -> None:
  """Every (micro-)batch of the roles' training and pretraining, and every evaluation batch,
  is split evenly over the data-parallel devices."""
  ways = sharding.data_parallel_size(mesh)
  sizes = {"eval_batch_size": (cfg["eval_batch_size"], 1)}
  for role in roles:
    sections = [("train", cfg[role]["train"])]
    if phases.pretraining(cfg, role):
      sections.append(("pretrain", cfg[role]["pretrain"]))
    for name, section in sections:
      sizes[f"{role}.{name}.batch_size"] = (section["batch_size"],
                                            section.get("grad_accum_steps", 1))
  for key, (size, accum) in sizes.items():
    if size % (ways * accum):
      accumulation = f" in {accum} micro-batches" if accum > 1 else ""
      raise ConfigError(f"{key}={size} does not split{accumulation} over the {ways} "
                        "data-parallel devices (mesh data x fsdp); use a multiple of "
                        f"{ways * accum}")


def model_name(cfg: Mapping, role: str) -> str:
  """A role's model as tables and figures name it: names.<role> when the config gives one
  (a sweep's size), else its checkpoint or architecture."""
  given = cfg.get("names", {}).get(role)
  if given:
    return given
  model = cfg[role]["model"]
  if models.is_checkpoint(model):
    name = model.get("name") or pathlib.Path(model["checkpoint"]).name
    name += f"-L{model['n_layers']}" if model.get("n_layers") else ""
    return name + ("" if model.get("pretrained", True) else "-random")
  name = f"{model['arch']}-{model['n_layers']}L-d{model['d_model']}"
  return name + ("-pretrained" if phases.pretraining(cfg, role) else "")


def _supervisor_summary(supervisor, splits, test_labels, scored) -> dict:
  """How good a supervisor's labels of B are, and its own test accuracy where it has one."""
  p_b = supervisor.labels("B")
  labelled = np.isfinite(p_b)
  summary = {"labelled_B": int(labelled.sum()), "n_B": int(len(p_b)),
             "label_accuracy_B": metrics.accuracy(p_b[labelled], splits["B"]["label"][labelled])
             if labelled.any() else None}
  test_p = supervisor.test_p() if hasattr(supervisor, "test_p") else None
  if test_p is not None:
    summary["test"] = metrics.summarize(test_p[scored], test_labels)
  return summary


def check_workdir(workdir: pathlib.Path) -> None:
  """The workdir must be a folder we can write in: say so now, not after hours of training."""
  try:
    (workdir / "phases").mkdir(parents=True, exist_ok=True)
    tempfile.TemporaryFile(dir=workdir / "phases").close()
  except OSError as e:
    raise ConfigError(f"workdir {workdir} is not usable ({e.strerror or type(e).__name__}); "
                      "choose another with --config.workdir") from None


def use_compilation_cache(workdir: pathlib.Path) -> None:
  """Keeps compiled XLA programs in <workdir>/jax_cache, unless the environment names a cache
  (JAX_COMPILATION_CACHE_DIR): every phase builds its own jitted step, so students, seeds
  and reruns of the same shapes would otherwise compile again (a tiny run: 38 s -> 10 s).

  XLA's own caches stay off (unless JAX_PERSISTENT_CACHE_ENABLE_XLA_CACHES names some): JAX
  passes their folder, inside the cache's, to the compiler, which puts the path into every
  program's cache key, so a workdir moved, copied or mounted elsewhere found none of its
  programs."""
  if jax.config.jax_compilation_cache_dir is None:
    jax.config.update("jax_compilation_cache_dir", str(workdir / "jax_cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  if "JAX_PERSISTENT_CACHE_ENABLE_XLA_CACHES" not in os.environ:
    jax.config.update("jax_persistent_cache_enable_xla_caches", "none")


def _students_together(ctx, methods, supervisors) -> dict:
  """student.vectorize: the students not yet cached that share a supervisor, trained with one
  compiled step per supervisor; {name: (logits, record)} for phases.model_phase."""
  groups = {}
  for name, (loss, supervisor) in methods.items():
    key = phases.model_key(ctx.cfg, "strong", "B", supervisors[supervisor].key, loss, 0)
    if (phases.can_train_together(ctx.cfg, "strong", loss)
        and not phases.is_finished(ctx, "strong", key)):
      groups.setdefault(supervisor, []).append((name, loss))
  trained = {}
  for supervisor, members in groups.items():
    if len(members) > 1:
      names, loss_names = zip(*members)
      trained.update(phases.train_together(ctx, list(names), "strong", "B",
                                           supervisors[supervisor], list(loss_names),
                                           phases.training_seed(ctx.cfg["seed"], 0)))
  return trained


def run(cfg: Mapping[str, Any]) -> dict:
  """Runs (or reuses) every phase for a resolved config dict; writes and returns results."""
  config_lib.validate(cfg)
  start = time.time()
  if jax.process_index() == 0:
    check_workdir(pathlib.Path(cfg["workdir"]))
  use_compilation_cache(pathlib.Path(cfg["workdir"]))
  ctx = phases.Context(cfg=cfg, workdir=pathlib.Path(cfg["workdir"]),
                       mesh=sharding.make_mesh(cfg["mesh"]),
                       splits=data.load_splits(cfg["task"], cfg["seed"]))
  check_batch_sizes(cfg, ctx.mesh, config_lib.roles(cfg))
  methods = config_lib.student_methods(cfg)
  supervisors = {name: supervision.resolve(ctx, name)
                 for name in dict.fromkeys(["weak", *(s for _, s in methods.values())])}
  for supervisor in supervisors.values():
    supervisor.key  # files are hashed (and must exist) before anything trains

  for role in config_lib.roles(cfg):
    if phases.pretraining(cfg, role):
      phases.pretrain_phase(ctx, role)
  weak_dir = supervisors["weak"].phase_dir()
  ceiling_dir = phases.model_phase(ctx, "ceiling", "strong", cfg["ceiling"]["split"],
                                   supervision.resolve(ctx, "gt"))
  together = _students_together(ctx, methods, supervisors) if cfg["student"].get(
      "vectorize", False) else {}
  student_dirs = {name: phases.model_phase(ctx, f"student:{name}", "strong", "B",
                                           supervisors[supervisor], loss,
                                           trained=together.get(name))
                  for name, (loss, supervisor) in methods.items()}

  # Score every model on the same documents: those none of them had to drop.
  test_p = {name: phases.predictions(d)["test"]
            for name, d in [("weak", weak_dir), ("ceiling", ceiling_dir),
                            *student_dirs.items()]}
  scored = np.all([np.isfinite(p) for p in test_p.values()], axis=0)
  test_p = {name: p[scored] for name, p in test_p.items()}
  test_labels = ctx.splits["test"]["label"][scored]
  weak_p, ceiling_p = test_p["weak"], test_p["ceiling"]
  weak_m = metrics.summarize(weak_p, test_labels)
  ceiling_m = metrics.summarize(ceiling_p, test_labels)
  supervisor_info = {name: {"kind": supervision.spec(cfg, name)["kind"],
                            **_supervisor_summary(s, ctx.splits, test_labels, scored)}
                     for name, s in supervisors.items()}
  students = {}
  for name, (loss, supervisor) in methods.items():
    p = test_p[name]
    m = {"loss": loss, "supervisor": supervisor, **metrics.summarize(p, test_labels)}
    m["agreement_with_weak"] = metrics.agreement(p, weak_p)
    m.update(metrics.pgr_report(p, weak_p, ceiling_p, test_labels, seed=cfg["seed"]))
    m["pgr_auroc"] = (metrics.pgr(m["auroc"], weak_m["auroc"], ceiling_m["auroc"])
                      if m["pgr"] is not None else None)
    students[name] = m

  config_hash = config_lib.results_hash(cfg)
  results = {
      "config_hash": config_hash, "seed": cfg["seed"], "task": cfg["task"]["name"],
      "names": {role: model_name(cfg, role) for role in ("weak", "strong")},
      "weak": weak_m, "ceiling": ceiling_m, "students": students,
      "supervisors": supervisor_info,
      "weak_label_accuracy": supervisor_info["weak"]["label_accuracy_B"],
      "n": {**{split: int(len(arrays["label"])) for split, arrays in ctx.splits.items()},
            "test_scored": int(scored.sum()),
            "B_weak_labelled": supervisor_info["weak"]["labelled_B"]},
      "phases": ctx.phases, "wall_s": time.time() - start,
  }
  if jax.process_index() == 0:
    out = config_lib.results_folder(cfg)
    checkpoints.write_json(out / "config.json", cfg)
    checkpoints.write_json(out / "results.json", {**results, "results_file":
                                                  str(out / "results.json")})
    results["results_file"] = str(out / "results.json")
    from w2s_jax import figures  # matplotlib: 0.5 s to import, needed only here
    figures.training_curves(results, out / "curves.png")
  return results
