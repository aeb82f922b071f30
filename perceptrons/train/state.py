"""The objects `fit` shares with its caller and callbacks: `Step`, `TrainState`, `FitResult`."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

import torch
from torch import Tensor, nn

from perceptrons.io import json_ready
from perceptrons.train.config import FitConfig

__all__ = ["FitResult", "Step", "TrainState"]


class Step(Protocol):
    """One training step's forward pass: how a study plugs into `fit`.

    Returns a dict of scalar tensors that contains ``"loss"`` (what is minimised); every
    other entry is logged as a train metric, averaged over the log window.
    """

    def __call__(self, model: nn.Module, batch: Any) -> dict[str, Tensor]:
        """Compute the loss (and metrics) of ``model`` on ``batch``.

        Args:
            model: The model being trained (in train mode, on the run's device).
            batch: One batch from the data, already on the run's device.

        Returns:
            ``{"loss": scalar tensor with grad, "<metric>": scalar tensor, ...}``.
        """
        ...


@dataclass
class FitResult:
    """What `fit` returns.

    Attributes:
        steps: Completed optimiser steps (including those of earlier, resumed sessions).
        epochs: Completed passes over the data (fractional when the data has a length).
        history: All logged records (train and evaluation) of the run, oldest first; after a
            resume the earlier records are read back from ``metrics.jsonl``.
        stopped_early: Whether a callback stopped the run before its step budget.
        resumed_from: Step of the checkpoint this call resumed from (None: fresh start).
        wall_time: Seconds this call took.
        final: The last logged train ``loss`` and the latest evaluation metrics.
    """

    steps: int
    epochs: float
    history: list[dict[str, Any]]
    stopped_early: bool
    resumed_from: int | None
    wall_time: float
    final: dict[str, float] = field(default_factory=dict)


@dataclass(eq=False)
class TrainState:
    """The live state of a `fit` run, handed to every callback hook.

    Attributes:
        step: Number of completed optimiser steps.
        epoch: Completed passes over the data (fractional when the data has a length).
        model: The model being trained (on ``config.device``).
        optimizer: Its optimiser.
        scheduler: Its learning-rate scheduler.
        config: The run's `FitConfig`.
        history: Every record logged so far (train and evaluation), oldest first.
        eval_metrics: Latest evaluation metrics, keyed ``"<split>/<name>"``.
        eval_step: The step at which ``eval_metrics`` was last updated (None: never).
        should_stop: Set by a callback to end the run after the current step.
        start_time: `time.perf_counter` value at which the run (including earlier,
            interrupted sessions) would have started; records' ``time`` is measured from it.
        metrics_file: Open ``metrics.jsonl`` that `log` appends to (None: no ``out_dir``).
    """

    step: int
    epoch: float
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    config: FitConfig
    history: list[dict[str, Any]] = field(default_factory=list)
    eval_metrics: dict[str, float] = field(default_factory=dict)
    eval_step: int | None = None
    should_stop: bool = False
    start_time: float = field(default_factory=time.perf_counter)
    metrics_file: IO[str] | None = field(default=None, repr=False)

    def elapsed(self) -> float:
        """Seconds since the start of the run."""
        return time.perf_counter() - self.start_time

    def log(self, record: dict[str, Any]) -> dict[str, Any]:
        """Append a record to `history` and, with an ``out_dir``, to ``metrics.jsonl``.

        Args:
            record: JSON-able values (tensors and numpy scalars are converted; non-finite
                floats become null).

        Returns:
            The plain-JSON record that was stored.
        """
        plain = json_ready(record)
        self.history.append(plain)
        if self.metrics_file is not None:
            self.metrics_file.write(json.dumps(plain, allow_nan=False) + "\n")
            self.metrics_file.flush()
        return plain

    def update_eval(self, split: str, metrics: dict[str, float]) -> None:
        """Store ``metrics`` as ``eval_metrics["<split>/<name>"]`` and mark this step."""
        for name, value in metrics.items():
            self.eval_metrics[f"{split}/{name}"] = value
        self.eval_step = self.step
