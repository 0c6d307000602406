"""Training: :class:`TrainConfig`, the :class:`Trainer` and its parts (:mod:`graphcf.train.parts`)."""
from graphcf.train.config import TRAINING_ONLY_FIELDS, TrainConfig
from graphcf.train.parts import Checkpointer, EarlyStopping, LRSchedule, TimeBudget, atomic_save, lr_decay_epochs
from graphcf.train.trainer import ModelFitError, Trainer, TrainResult

__all__ = ["TrainConfig", "TRAINING_ONLY_FIELDS", "Trainer", "TrainResult", "ModelFitError", "EarlyStopping",
           "LRSchedule", "TimeBudget", "Checkpointer", "atomic_save", "lr_decay_epochs"]
