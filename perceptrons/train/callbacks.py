"""`Callback` hooks of `fit`, and the built-in callbacks: evaluation, early stopping and
restoring the best evaluated weights."""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from perceptrons.io import load_tensors, save_tensors
from perceptrons.train.state import TrainState

__all__ = ["Callback", "EarlyStopping", "Evaluator", "RestoreBest"]


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


_WEIGHTS_FILE = re.compile(r"^(best|last)_step_\d{8,}\.safetensors$")


def _cpu_state(model: nn.Module) -> dict[str, Tensor]:
    """A CPU copy of ``model.state_dict()`` (parameters and buffers), detached."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


class RestoreBest(Callback):
    """Remember the weights at the best value of an evaluation metric; restore them at the end.

    Whenever ``state.eval_metrics`` has been updated since the last check, the value of
    ``metric`` is compared with the best so far; on an improvement (strictly better; the first
    non-NaN value always improves) a CPU copy of ``model.state_dict()`` is kept, with
    `best_value` and `best_step`. At `on_fit_end` (after the final evaluation of the
    `Evaluator`) the remembered weights are loaded into the model. Put it after the `Evaluator`
    that computes ``metric``, so that it sees each evaluation on the step it ran (an earlier
    position raises). When no evaluation gave a number (all NaN), the model keeps its last
    weights and `best_step` stays None.

    Checkpoints. Callback state is JSON (`fit` stores it in the checkpoint's ``state.json``),
    so the weights cannot go there: with ``checkpoint_every`` set they are written as
    safetensors files into ``directory`` when a checkpoint is saved, and the callback state
    names them: ``best_step_<step>.safetensors`` (the best weights so far) and, in the final
    checkpoint of a run whose best weights were restored, ``last_step_<step>.safetensors``
    (the weights of the last step, which the final checkpoint no longer holds). A run resumed
    from that final checkpoint with a longer budget (`fit`'s ``max_steps`` / ``max_epochs``)
    gets its last-step weights back in `on_fit_start`, so it continues exactly as an
    uninterrupted run would. Files not named by the newest ``keep_checkpoints + 1``
    checkpoints are deleted; files are written once per run and step (atomically, before the
    checkpoint that names them). Use one ``directory`` per run (e.g. ``out_dir /
    "restore_best"``).

    Args:
        metric: Key of ``state.eval_metrics``, e.g. ``"val/auc"``.
        mode: ``"max"`` if higher is better, ``"min"`` if lower is better.
        directory: Folder of the weights files of checkpoints; needed (and only used) when
            ``checkpoint_every`` is set.

    Attributes:
        best_value: The best value of ``metric`` so far (None: none yet).
        best_step: The step of the evaluation that gave it (None: none yet).
        restored_step: The step at which the best weights were put back (None: not restored,
            or the best was the last step).

    Raises:
        KeyError: (during `fit`) an evaluation happened without ``metric``, or the run ended
            without it ever appearing; the message names the metric and the ones there are.
        ValueError: (during `fit`) checkpoints without a ``directory``; an evaluation seen on a
            later step than it ran (the callback is before its `Evaluator`); a checkpoint
            written by a `RestoreBest` of another metric or mode.
    """

    def __init__(
        self,
        metric: str = "val/auc",
        mode: Literal["min", "max"] = "max",
        *,
        directory: str | os.PathLike[str] | None = None,
    ) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode: must be 'min' or 'max', got {mode!r}")
        self.metric = metric
        self.mode = mode
        self.directory = None if directory is None else Path(directory)
        self.best_value: float | None = None
        self.best_step: int | None = None
        self.checked_step: int | None = None
        self.restored_step: int | None = None
        self._best: dict[str, Tensor] | None = None
        self._last: dict[str, Tensor] | None = None  # weights of restored_step
        self._saved: list[list[str]] = []  # files named by the newest checkpoints, oldest first
        self._keep: int | None = None
        self._resumed = False

    # ------------------------------------------------------------------ evaluations
    def _missing(self, state: TrainState) -> KeyError:
        have = ", ".join(sorted(state.eval_metrics)) or "none"
        return KeyError(
            f"RestoreBest: metric {self.metric!r} not found in the evaluation metrics "
            f"(have: {have}); add an Evaluator that computes it"
        )

    def _improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best_value is None:
            return True
        return value > self.best_value if self.mode == "max" else value < self.best_value

    def _check(self, state: TrainState) -> None:
        if state.eval_step is None or state.eval_step == self.checked_step:
            return
        if state.eval_step != state.step:
            raise ValueError(
                f"RestoreBest: saw the evaluation of step {state.eval_step} at step "
                f"{state.step}, when the weights have changed; put RestoreBest after the "
                "Evaluator that computes its metric"
            )
        self.checked_step = state.eval_step
        if self.metric not in state.eval_metrics:
            raise self._missing(state)
        value = float(state.eval_metrics[self.metric])
        if self._improved(value):
            self.best_value, self.best_step = value, state.step
            self._best = _cpu_state(state.model)

    # ------------------------------------------------------------------ hooks
    def on_fit_start(self, state: TrainState) -> None:
        if state.config.checkpoint_every is not None and self.directory is None:
            raise ValueError(
                "RestoreBest: checkpoint_every is set, and the best weights cannot go into the "
                "JSON state of a checkpoint; pass RestoreBest(directory=...), a folder for "
                "them (e.g. out_dir / 'restore_best')"
            )
        self._keep = state.config.keep_checkpoints
        if self._resumed and self._last is not None and self.restored_step == state.step:
            # resumed from a final checkpoint, whose model holds the restored best weights:
            # a longer run continues from the last step's weights
            state.model.load_state_dict(self._last)
            self._last, self.restored_step = None, None
        self._resumed = False

    def on_step_end(self, state: TrainState) -> None:
        self._check(state)

    def on_fit_end(self, state: TrainState) -> None:
        self._check(state)
        if self.metric not in state.eval_metrics:
            raise self._missing(state)
        if self._best is None or self.best_step == state.step:
            return
        if self.restored_step != state.step:
            self._last = _cpu_state(state.model)
            self.restored_step = state.step
        state.model.load_state_dict(self._best)

    # ------------------------------------------------------------------ checkpoints
    def _write(self, name: str, tensors: dict[str, Tensor]) -> str:
        if self.directory is None:
            raise ValueError(
                "RestoreBest: saving its state needs a directory for the weights; pass "
                "RestoreBest(directory=...)"
            )
        if not any(name in files for files in self._saved):  # else: on disk, from this run
            save_tensors(self.directory / name, tensors)
        return name

    def _prune(self) -> None:
        if self.directory is None or not self.directory.is_dir():
            return
        named = {name for files in self._saved for name in files}
        for path in self.directory.iterdir():
            if _WEIGHTS_FILE.match(path.name) and path.name not in named:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    def state_dict(self) -> dict[str, Any]:
        """JSON state; writes the weights it names into ``directory`` (see the class)."""
        best_file = last_file = None
        if self._best is not None:
            best_file = self._write(f"best_step_{self.best_step:08d}.safetensors", self._best)
        if self._last is not None:
            last_file = self._write(f"last_step_{self.restored_step:08d}.safetensors", self._last)
        self._saved.append([f for f in (best_file, last_file) if f is not None])
        if self._keep is not None:
            del self._saved[: -(self._keep + 1)]
        self._prune()
        return {
            "metric": self.metric,
            "mode": self.mode,
            "best_value": self.best_value,
            "best_step": self.best_step,
            "checked_step": self.checked_step,
            "restored_step": self.restored_step,
            "best_file": best_file,
            "last_file": last_file,
            "saved": [list(files) for files in self._saved],
        }

    def _read(self, name: str | None) -> dict[str, Tensor] | None:
        if name is None:
            return None
        if self.directory is None:
            raise ValueError(
                f"RestoreBest: the checkpoint names the weights file {name!r}; pass "
                "RestoreBest(directory=...) with the folder it was written to"
            )
        return load_tensors(self.directory / name)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if (state["metric"], state["mode"]) != (self.metric, self.mode):
            raise ValueError(
                f"RestoreBest: the checkpoint tracked {state['metric']!r} ({state['mode']}), "
                f"this callback tracks {self.metric!r} ({self.mode})"
            )
        self.best_value = state["best_value"]
        self.best_step = state["best_step"]
        self.checked_step = state["checked_step"]
        self.restored_step = state["restored_step"]
        self._best = self._read(state["best_file"])
        self._last = self._read(state["last_file"])
        self._saved = [list(files) for files in state["saved"]]
        self._resumed = True
