"""The one training loop of the project: `fit` a model with a `Step`, resumable exactly.

Layering: this package imports only `perceptrons.config` and `perceptrons.io` (plus torch,
numpy, rich and the standard library).
"""

from perceptrons.train.callbacks import Callback, EarlyStopping, Evaluator, RestoreBest
from perceptrons.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from perceptrons.train.config import FitConfig, OptimizerConfig, ScheduleConfig
from perceptrons.train.loop import fit
from perceptrons.train.optim import (
    CombinedOptimizer,
    RowSparseAdagrad,
    RowSparseAdam,
    RowwiseAdagrad,
    clip_grad_norm,
    make_optimizer,
    make_scheduler,
    sparse_embedding_parameters,
)
from perceptrons.train.state import FitResult, Step, TrainState

__all__ = [
    "Callback",
    "CombinedOptimizer",
    "EarlyStopping",
    "Evaluator",
    "FitConfig",
    "FitResult",
    "OptimizerConfig",
    "RestoreBest",
    "RowSparseAdagrad",
    "RowSparseAdam",
    "RowwiseAdagrad",
    "ScheduleConfig",
    "Step",
    "TrainState",
    "clip_grad_norm",
    "fit",
    "latest_checkpoint",
    "load_checkpoint",
    "make_optimizer",
    "make_scheduler",
    "save_checkpoint",
    "sparse_embedding_parameters",
]
