"""`Callback` hooks of `fit`, and the two built-in callbacks: evaluation and early stopping."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import nn

from perceptrons.train.state import TrainState

__all__ = ["Callback", "EarlyStopping", "Evaluator"]


class Callback:
    """Base class of `fit` callbacks; every hook is a no-op.

    Callbacks run in the order given to `fit`. Their state must be JSON-able; it is saved in
    checkpoints and restored (before `on_fit_start`) when a run resumes.
    """

    def on_fit_start(self, state: TrainState) -> None:
        """Called once per `fit` call, after a resumed run's state has been restored."""

    def on_step_end(self, state: TrainState) -> None:
        """Called after each optimiser step; ``state.step`` counts the completed steps."""

    def on_fit_end(self, state: TrainState) -> None:
        """Called once when the run ends (step budget reached or ``should_stop``)."""

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state saved in checkpoints."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the state returned by `state_dict`."""


class Evaluator(Callback):
    """Evaluate the model every ``every`` steps and at the end of the run.

    The metrics are logged as a record ``{"step", "epoch", "split", "time", **metrics}`` and
    stored in ``state.eval_metrics["<split>/<name>"]``.

    Args:
        fn: ``fn(model) -> {name: float}``, called under `torch.no_grad` with the model in eval
            mode (its previous train/eval mode is restored afterwards).
        every: Steps between evaluations.
        split: Name of the evaluated split, e.g. ``"val"`` or ``"test"``.
    """

    def __init__(
        self, fn: Callable[[nn.Module], dict[str, float]], every: int, split: str = "val"
    ) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every: must be an int >= 1, got {every!r}")
        self.fn = fn
        self.every = every
        self.split = split
        self.last_step: int | None = None

    def evaluate(self, state: TrainState) -> dict[str, float]:
        """Run ``fn`` now, log and store its metrics; return them."""
        model = state.model
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                raw = self.fn(model)
        finally:
            model.train(was_training)
        if not isinstance(raw, dict):
            raise TypeError(
                f"Evaluator({self.split!r}): fn must return a dict of floats, got "
                f"{type(raw).__name__}"
            )
        metrics = {str(k): float(v) for k, v in raw.items()}
        state.update_eval(self.split, metrics)
        state.log(
            {
                "step": state.step,
                "epoch": state.epoch,
                "split": self.split,
                "time": state.elapsed(),
                **metrics,
            }
        )
        self.last_step = state.step
        return metrics

    def on_step_end(self, state: TrainState) -> None:
        if state.step % self.every == 0:
            self.evaluate(state)

    def on_fit_end(self, state: TrainState) -> None:
        if self.last_step != state.step:
            self.evaluate(state)

    def state_dict(self) -> dict[str, Any]:
        return {"last_step": self.last_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last_step = state["last_step"]


class EarlyStopping(Callback):
    """Stop when an evaluation metric has not improved for ``patience`` evaluations.

    The metric is checked whenever ``state.eval_metrics`` has been updated since the last
    check (put it after its `Evaluator` to check on the same step).

    Args:
        metric: Key of ``state.eval_metrics``, e.g. ``"val/loss"``.
        mode: ``"min"`` if lower is better, ``"max"`` if higher is better.
        patience: Evaluations without improvement before stopping.
        min_delta: Improvement smaller than this does not count.

    Raises:
        KeyError: (during `fit`) an evaluation happened without ``metric``, or the run ended
            without it ever appearing.
    """

    def __init__(
        self,
        metric: str = "val/loss",
        mode: Literal["min", "max"] = "min",
        patience: int = 5,
        min_delta: float = 0.0,
    ) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode: must be 'min' or 'max', got {mode!r}")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience: must be an int >= 1, got {patience!r}")
        if not min_delta >= 0:
            raise ValueError(f"min_delta: must be >= 0, got {min_delta!r}")
        self.metric = metric
        self.mode = mode
        self.patience = patience
        self.min_delta = float(min_delta)
        self.best: float | None = None
        self.best_step: int | None = None
        self.wait = 0
        self.checked_step: int | None = None
        self.stopped_step: int | None = None

    def _missing(self, state: TrainState) -> KeyError:
        have = ", ".join(sorted(state.eval_metrics)) or "none"
        return KeyError(
            f"EarlyStopping: metric {self.metric!r} not found in the evaluation metrics "
            f"(have: {have}); add an Evaluator that computes it"
        )

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return not math.isnan(value)
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_step_end(self, state: TrainState) -> None:
        if state.eval_step is None or state.eval_step == self.checked_step:
            return
        self.checked_step = state.eval_step
        if self.metric not in state.eval_metrics:
            raise self._missing(state)
        value = state.eval_metrics[self.metric]
        if self._improved(value):
            self.best, self.best_step, self.wait = value, state.step, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_step = state.step
            state.should_stop = True

    def on_fit_end(self, state: TrainState) -> None:
        if self.metric not in state.eval_metrics:
            raise self._missing(state)

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_step": self.best_step,
            "wait": self.wait,
            "checked_step": self.checked_step,
            "stopped_step": self.stopped_step,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state["best"]
        self.best_step = state["best_step"]
        self.wait = state["wait"]
        self.checked_step = state["checked_step"]
        self.stopped_step = state["stopped_step"]
