"""Cached phases: each computed once into `<workdir>/phases/<kind>-<hash>/`, keyed by exactly
what determines it (its supervisor's key included, so a chain weak -> student -> next student
reuses every earlier link), and reused by any run that names the same key.

  store.py        the folders, their locks, .partial work and records
  keys.py         what each phase's key holds
  context.py      what every phase of one run reads
  pretrain.py     a backbone pretrained as a language model
  classifier.py   a role's classifier fine-tuned on a supervisor's labels
  students.py     students trained together, a phase of its own
  features.py     a frozen backbone's pooled features of a split, computed once
  probe.py        probes that relabel or filter a supervisor's labels
"""

from w2s_jax.phases.classifier import (
                                     PREDICTIONS_FILE,
                                     Supervisor,
                                     model_phase,
                                     predictions,
                                     softmax,
)
from w2s_jax.phases.context import Context
from w2s_jax.phases.features import (
                                     FEATURES_FILE,
                                     features_phase,
                                     frozen_features,
                                     probe_activations,
)
from w2s_jax.phases.keys import (
                                     activations_key,
                                     data_key,
                                     features_key,
                                     model_config,
                                     model_key,
                                     pretrain_key,
                                     pretraining,
                                     role_key,
                                     training_seed,
)
from w2s_jax.phases.pretrain import backbone_params, pretrain_phase
from w2s_jax.phases.probe import probe_key, probe_labels, probe_phase
from w2s_jax.phases.store import (
                                     CACHE_VERSION,
                                     CHECKPOINTS_DIR,
                                     PHASE_FILE,
                                     cached,
                                     is_finished,
                                     phase_folder,
                                     record,
)
from w2s_jax.phases.students import can_train_together, student_phases

__all__ = [
    "CACHE_VERSION", "CHECKPOINTS_DIR", "Context", "FEATURES_FILE", "PHASE_FILE",
    "PREDICTIONS_FILE", "Supervisor", "activations_key", "features_key", "features_phase",
    "frozen_features", "probe_activations",
    "backbone_params", "cached", "can_train_together", "data_key", "is_finished",
    "model_config", "model_key", "model_phase", "phase_folder", "predictions",
    "pretrain_key", "pretrain_phase", "pretraining", "probe_key", "probe_labels",
    "probe_phase", "record", "role_key", "softmax", "student_phases", "training_seed",
]
