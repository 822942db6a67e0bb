"""Training: settings, state, steps, students trained together, the loop, and run_training,
the one entry point every phase trains through.

  settings.py  TrainSettings: a train/pretrain section parsed and checked once
  state.py     the train state, described and initialised on its shardings
  optim.py     the optimizer and its schedule
  steps.py     objectives; train and predict steps jitted with explicit shardings
  students.py  several students with one compiled step
  learned_weights.py  a student of a learned weighting of several supervisors (RAVEN)
  loop.py      fit (logging, validation, checkpoints, stop requests)
  run.py       run_training
"""

from w2s_jax.train.learned_weights import Weighting, learned_weights_objective
from w2s_jax.train.loop import StopRequest, fit
from w2s_jax.train.optim import learning_rate_schedule, make_optimizer
from w2s_jax.train.run import Trained, run_training
from w2s_jax.train.settings import NOT_IN_KEY, TrainSettings
from w2s_jax.train.state import (
                                 create_state,
                                 describe_state,
                                 init_state,
                                 initial_loss_state,
                                 initialiser_compiler_options,
                                 trainable_mask,
)
from w2s_jax.train.steps import (
                                 Objective,
                                 classification_objective,
                                 language_model_objective,
                                 make_predict_step,
                                 make_predictor,
                                 make_train_step,
                                 map_students,
                                 predict,
                                 stacked_shardings,
                                 train_step_fn,
)
from w2s_jax.train.students import (
                                 StudentGroup,
                                 each_student,
                                 make_students_step,
                                 make_vectorised_train_step,
                                 students_in_parallel,
                                 students_objective,
)

__all__ = [
    "NOT_IN_KEY", "Objective", "StopRequest", "StudentGroup", "Trained", "TrainSettings",
    "Weighting", "classification_objective", "create_state", "describe_state",
    "each_student", "fit", "init_state", "initial_loss_state", "initialiser_compiler_options",
    "language_model_objective", "learned_weights_objective", "learning_rate_schedule",
    "make_optimizer", "make_predict_step", "make_predictor", "make_students_step",
    "make_train_step", "make_vectorised_train_step", "map_students", "predict",
    "run_training", "stacked_shardings", "students_in_parallel", "students_objective",
    "train_step_fn", "trainable_mask",
]
