"""`fit`: the one training loop of the project, with exact resume from checkpoints.

A study plugs in only a `Step`, ``step(model, batch) -> {"loss": scalar, ...}``; `fit` owns the
optimiser, the schedule, clipping, logging, evaluation callbacks, progress and checkpoints.

Order of events in one step ``t -> t + 1``::

    batch = next(data) -> zero_grad -> out = step(model, batch on device) -> check out["loss"]
    -> backward, [clip], optimizer.step(), scheduler.step()
    -> [train record every log_every] -> callbacks' on_step_end -> [checkpoint]

Everything a later step depends on (weights, optimiser and scheduler state, data position,
callback state, torch/numpy/python RNG states, the open log window) is in the checkpoint,
which makes a killed and resumed run bit-identical to an uninterrupted one on CPU.

The optimiser is ``make_optimizer(model, config.optimizer)``: with
``OptimizerConfig.embedding_optimizer`` set, a `CombinedOptimizer` of the dense optimiser and
SparseAdam/Adagrad over the model's sparse embedding tables, scheduled and checkpointed as one
optimiser; clipping (`clip_grad_norm`) counts and scales sparse gradients too. Progress: a
rich bar on a terminal, else a line on stderr every ``progress_every`` steps (`open_progress`).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from perceptrons.config import MISSING, differences
from perceptrons.io import load_json
from perceptrons.train.callbacks import Callback
from perceptrons.train.checkpoint import (
    capture_rng_state,
    clean_checkpoint_dir,
    delete_checkpoint,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
    truncate_metrics,
)
from perceptrons.train.config import FitConfig
from perceptrons.train.optim import clip_grad_norm, make_optimizer, make_scheduler
from perceptrons.train.progress import (
    ProgressBar,
    ProgressLines,
    batch_rows,
    default_progress_every,
    open_progress,
)
from perceptrons.train.state import FitResult, Step, TrainState

__all__ = ["RESUMABLE_FIELDS", "fit"]

RESUMABLE_FIELDS = frozenset(
    {
        "max_steps",
        "max_epochs",
        "progress",
        "progress_every",
        "log_every",
        "keep_checkpoints",
        "checkpoint_every",
    }
)
"""`FitConfig` fields that may differ when a run resumes: they extend or present the run. Any
other difference from the checkpoint's config makes `fit` refuse to resume."""


# ---------------------------------------------------------------------- helpers
def _to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor of a (nested tuple/list/dict) batch to ``device``."""
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(_to_device(v, device) for v in batch))
    if isinstance(batch, list | tuple):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def _num_batches(data: Iterable[Any]) -> int | None:
    try:
        return len(data)  # type: ignore[arg-type]
    except TypeError:
        return None


def _has_position(data: Any) -> bool:
    return callable(getattr(data, "state_dict", None)) and callable(
        getattr(data, "load_state_dict", None)
    )


def _window_means(window: dict[str, list[Tensor]]) -> dict[str, float]:
    """Mean of each metric over the window (on the host, in float64)."""
    cpu = torch.device("cpu")
    means = [torch.stack(v).to(device=cpu, dtype=torch.float64).mean() for v in window.values()]
    return dict(zip(window, torch.stack(means).tolist(), strict=True))


def _check_output(out: Any, step_number: int) -> Tensor:
    if not isinstance(out, dict) or "loss" not in out:
        got = sorted(out) if isinstance(out, dict) else type(out).__name__
        raise ValueError(
            f"step {step_number}: the Step must return a dict with a scalar 'loss', got {got}"
        )
    loss = out["loss"]
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        shape = tuple(loss.shape) if isinstance(loss, Tensor) else type(loss).__name__
        raise ValueError(f"step {step_number}: 'loss' must be a scalar tensor, got {shape}")
    if not loss.requires_grad:
        raise ValueError(f"step {step_number}: 'loss' does not require grad (detached?)")
    return loss


def _scalar(name: str, value: Any, step_number: int) -> Tensor:
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"step {step_number}: metric {name!r} must be a scalar, got shape "
                f"{tuple(value.shape)}"
            )
        value = value.detach()
        return value.reshape(()) if value.ndim else value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return torch.tensor(float(value))
    raise ValueError(
        f"step {step_number}: metric {name!r} must be a scalar tensor, got {type(value).__name__}"
    )


def _check_resumable(path: Path, config: FitConfig) -> None:
    """Raise unless checkpoint ``path`` was written under ``config`` up to `RESUMABLE_FIELDS`.

    Reads only the checkpoint's ``state.json``; nothing is written.
    """
    meta = load_json(path / "state.json")
    stored = meta.get("state", {}).get("config") if isinstance(meta, dict) else None
    if not isinstance(stored, dict):
        raise ValueError(f"{path / 'state.json'}: checkpoint has no FitConfig to compare with")
    changed = {
        k: v
        for k, v in differences(stored, config.to_dict()).items()
        if k.split(".")[0] not in RESUMABLE_FIELDS and not _added_at_default(config, k, v)
    }
    if changed:
        lines = "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
        raise ValueError(
            f"{path}: cannot resume, the FitConfig differs from the checkpoint's ({lines}); "
            "only " + ", ".join(sorted(RESUMABLE_FIELDS)) + " may change. To start fresh, "
            "pass resume=False (deletes this out_dir's checkpoints and log) or another out_dir"
        )


def _added_at_default(config: FitConfig, path: str, pair: tuple[Any, Any]) -> bool:
    """Whether the difference ``pair`` at ``path`` is a field the checkpoint's (older) config
    did not have, set to its default here: a run written before the field existed resumes."""
    old, new = pair
    if old != MISSING:
        return False
    *parents, name = path.split(".")
    owner: Any = config
    try:
        for part in parents:
            owner = getattr(owner, part)
        default = type(owner)().to_dict()[name]
    except (AttributeError, KeyError, TypeError, ValueError):
        return False
    return new == default


def _nonfinite_error(first: int, last: int) -> FloatingPointError:
    where = f"step {last}" if first == last else f"one of steps {first}..{last}"
    return FloatingPointError(f"non-finite loss at {where}")


# ---------------------------------------------------------------------- fit
def fit(
    model: nn.Module,
    step: Step,
    data: Iterable[Any],
    config: FitConfig,
    callbacks: Sequence[Callback] = (),
    *,
    out_dir: str | os.PathLike[str] | None = None,
    resume: bool = True,
) -> FitResult:
    """Train ``model`` by minimising ``step(model, batch)["loss"]`` over ``data``.

    Train records ``{"step", "epoch", "split": "train", "loss", "lr", "time", **metrics}``
    hold window averages over the last ``log_every`` steps and the learning rate of the last
    of them; ``time`` is seconds since the start of the run (across resumed sessions).

    Args:
        model: The model; moved to ``config.device`` and put in train mode.
        step: The `Step` that computes the loss (and metrics) of a batch.
        data: An iterable of batches (tensors or nested tuples/lists/dicts of tensors), started
            again with ``iter(data)`` when exhausted. ``len(data)`` (batches per epoch) is needed
            for ``max_epochs``; ``state_dict()``/``load_state_dict()`` (its position, JSON) for
            checkpoints, e.g. a `TensorLoader`.
        config: Steps or epochs, optimiser, schedule, clipping, logging, checkpointing, seed,
            device.
        callbacks: `Callback` objects, run in the given order (e.g. `Evaluator`, then
            `EarlyStopping`).
        out_dir: Where ``metrics.jsonl`` (one JSON record per line) and ``checkpoints/`` go
            (None: nothing is written).
        resume: Continue from the newest checkpoint in ``out_dir`` if there is one (the log is
            cut back to that step). The checkpoint's `FitConfig` must equal ``config`` except
            for `RESUMABLE_FIELDS` (a longer budget resumes exactly). False starts from
            scratch and deletes ``out_dir``'s earlier checkpoints and log.

    Returns:
        The `FitResult` (steps, epochs, history, early stop, resume step, time, final metrics).

    Raises:
        ValueError: missing or non-scalar ``loss``; data without a length for ``max_epochs``,
            without a position for checkpoints, or with no batches; checkpoints without
            ``out_dir``; a checkpoint written under another config (each differing field
            named by its dotted path, with old and new values; nothing in ``out_dir`` is
            changed) or with other callbacks.
        FloatingPointError: a non-finite loss (the step is named).
    """
    wall_start = time.perf_counter()
    if not isinstance(config, FitConfig):
        raise TypeError(f"config: expected a FitConfig, got {type(config).__name__}")
    callbacks = list(callbacks)
    for i, callback in enumerate(callbacks):
        if not isinstance(callback, Callback):
            raise TypeError(f"callbacks[{i}]: expected a Callback, got {type(callback).__name__}")
    num_batches = _num_batches(data)
    if num_batches == 0:
        raise ValueError("data: has no batches (len(data) == 0)")
    if config.max_steps is not None:
        total_steps = config.max_steps
    elif num_batches is None:
        raise ValueError(
            f"data: max_epochs={config.max_epochs} needs len(data) (batches per epoch), but "
            f"{type(data).__name__} has no len(); set max_steps instead"
        )
    else:
        total_steps = config.max_epochs * num_batches
    out = None if out_dir is None else Path(out_dir)
    if config.checkpoint_every is not None:
        if out is None:
            raise ValueError("checkpoint_every: checkpoints need an out_dir, got out_dir=None")
        if not _has_position(data):
            raise ValueError(
                "data: checkpoint_every needs data with state_dict()/load_state_dict() (its "
                f"position), but {type(data).__name__} has not; use a TensorLoader"
            )

    device = torch.device(config.device)
    model.to(device)
    model.train()
    optimizer = make_optimizer(model, config.optimizer)
    scheduler = make_scheduler(optimizer, config.schedule, total_steps)
    run = _Run(
        state=TrainState(
            step=0, epoch=0.0, model=model, optimizer=optimizer, scheduler=scheduler, config=config
        ),
        step_fn=step,
        data=data,
        callbacks=callbacks,
        total_steps=total_steps,
        num_batches=num_batches,
        device=device,
        ckpt_root=None if out is None else out / "checkpoints",
    )
    fork_devices: list[int] = []
    if device.type == "cuda":
        fork_devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=fork_devices), contextlib.ExitStack() as stack:
        found = None
        if run.ckpt_root is not None:
            if resume:
                found = latest_checkpoint(run.ckpt_root)
                if found is not None:
                    _check_resumable(found, config)  # before anything in out_dir changes
            clean_checkpoint_dir(run.ckpt_root)
            if not resume:
                for _, old in list_checkpoints(run.ckpt_root):
                    delete_checkpoint(old)
        resumed_from, resumed_final = None, False
        if found is not None:
            resumed_final = run.restore(found)
            resumed_from = run.state.step
        else:
            # The one manual_seed of library code: a fresh run must be reproducible from
            # config.seed (dropout, sampling inside the step). It runs inside fork_rng, so the
            # caller's global torch generator is restored when fit returns.
            torch.manual_seed(config.seed)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            run.state.history = truncate_metrics(out / "metrics.jsonl", run.state.step)
            run.state.metrics_file = stack.enter_context(open(out / "metrics.jsonl", "a"))
        every = config.progress_every or default_progress_every(total_steps, config.log_every)
        run.bar = stack.enter_context(
            open_progress(config.progress, total_steps, initial=run.state.step, every=every)
        )
        for callback in callbacks:
            callback.on_fit_start(run.state)
        run.train()
        for callback in callbacks:
            callback.on_fit_end(run.state)
        if config.checkpoint_every is not None:
            if not (resumed_final and resumed_from == run.state.step):
                run.save(final=True)
    state = run.state
    final = {}
    train_records = [r for r in state.history if r.get("split") == "train"]
    if train_records:
        final["loss"] = train_records[-1]["loss"]
    final.update(state.eval_metrics)
    return FitResult(
        steps=state.step,
        epochs=state.epoch,
        history=state.history,
        stopped_early=state.should_stop,
        resumed_from=resumed_from,
        wall_time=time.perf_counter() - wall_start,
        final=final,
    )


@dataclass(eq=False)
class _Run:
    """The pieces of one `fit` call, with the hot loop and checkpoint save/restore."""

    state: TrainState
    step_fn: Step
    data: Iterable[Any]
    callbacks: list[Callback]
    total_steps: int
    num_batches: int | None
    device: torch.device
    ckpt_root: Path | None
    bar: ProgressBar | ProgressLines = field(default_factory=lambda: ProgressBar(1, enabled=False))
    # Per-metric detached scalars of the steps since the last train record.
    window: dict[str, list[Tensor]] = field(default_factory=dict)
    last_lr: float | None = None

    def train(self) -> None:
        """Run steps until the budget is spent or a callback sets ``should_stop``."""
        state, window, bar = self.state, self.window, self.bar
        config = state.config
        model, optimizer, scheduler = state.model, state.optimizer, state.scheduler
        params = [p for p in model.parameters() if p.requires_grad]
        clip, log_every, ckpt_every = (
            config.grad_clip_norm,
            config.log_every,
            config.checkpoint_every,
        )
        check_each_step = self.device.type == "cpu"  # elsewhere: once per log, no sync per step
        count_rows = bar.counts_rows
        group = optimizer.param_groups[0]
        iterator = iter(self.data)
        while state.step < self.total_steps and not state.should_stop:
            n = state.step + 1
            try:
                batch = next(iterator)
            except StopIteration:
                iterator = iter(self.data)
                if self.num_batches is None:
                    state.epoch += 1
                try:
                    batch = next(iterator)
                except StopIteration:
                    raise ValueError(f"step {n}: data yielded no batches") from None
            optimizer.zero_grad(set_to_none=True)
            out = self.step_fn(model, _to_device(batch, self.device))
            loss = _check_output(out, n)
            if check_each_step and not math.isfinite(loss.item()):
                raise _nonfinite_error(n, n)
            loss.backward()
            if clip is not None:
                norm = clip_grad_norm(params, clip)  # sparse gradients too
                window.setdefault("grad_norm", []).append(norm.detach())
            self.last_lr = group["lr"]
            optimizer.step()
            scheduler.step()
            state.step = n
            if self.num_batches is not None:
                state.epoch = n / self.num_batches
            for name, value in out.items():
                window.setdefault(name, []).append(_scalar(name, value, n))
            if count_rows:
                bar.add_rows(batch_rows(batch))
            if n % log_every == 0:
                self.log_window()
            else:
                bar.update(n)
            for callback in self.callbacks:
                callback.on_step_end(state)
            if (
                ckpt_every is not None
                and n % ckpt_every == 0
                and n < self.total_steps
                and not state.should_stop
            ):
                self.save(final=False)
        if window:
            self.log_window()

    def log_window(self) -> None:
        """Log the window's train record and start a new window."""
        state = self.state
        means = _window_means(self.window)
        count = len(self.window["loss"])
        loss = means.pop("loss")
        if not math.isfinite(loss):
            raise _nonfinite_error(state.step - count + 1, state.step)
        lr = self.last_lr if self.last_lr is not None else state.optimizer.param_groups[0]["lr"]
        state.log(
            {
                "step": state.step,
                "epoch": state.epoch,
                "split": "train",
                "loss": loss,
                "lr": lr,
                "time": state.elapsed(),
                **means,
            }
        )
        self.window.clear()
        self.bar.update(state.step, loss)

    def save(self, *, final: bool) -> Path:
        """Write a checkpoint of everything a later step depends on."""
        state = self.state
        assert self.ckpt_root is not None
        rng_tensors, rng_plain = capture_rng_state()
        tensors = dict(rng_tensors)
        for name, values in self.window.items():
            if len({v.dtype for v in values}) > 1:
                values = [v.to(torch.float64) for v in values]
            tensors[f"window/{name}"] = torch.stack(values).cpu()
        extra = {
            "epoch": state.epoch,
            "should_stop": state.should_stop,
            "eval_metrics": state.eval_metrics,
            "eval_step": state.eval_step,
            "elapsed": state.elapsed(),
            "last_lr": self.last_lr,
            "final": final,
            "window": list(self.window),
            "data": self.data.state_dict() if _has_position(self.data) else None,
            "callbacks": [
                {"type": type(c).__name__, "state": c.state_dict()} for c in self.callbacks
            ],
            "rng": rng_plain,
            "config": state.config.to_dict(),
        }
        return save_checkpoint(
            self.ckpt_root,
            state.step,
            model=state.model,
            optimizer=state.optimizer,
            scheduler=state.scheduler,
            state=extra,
            tensors=tensors,
            keep=state.config.keep_checkpoints,
        )

    def restore(self, path: Path) -> bool:
        """Restore everything from checkpoint ``path``; return whether it was a final one."""
        state = self.state
        ckpt = load_checkpoint(
            path, model=state.model, optimizer=state.optimizer, scheduler=state.scheduler
        )
        extra = ckpt.state
        saved = [c["type"] for c in extra["callbacks"]]
        given = [type(c).__name__ for c in self.callbacks]
        if saved != given:
            raise ValueError(
                f"{path}: checkpoint was written with callbacks {saved}, fit got {given}; "
                "resume with the same callbacks or pass resume=False"
            )
        if extra["data"] is not None:
            if not _has_position(self.data):
                raise ValueError(
                    f"{path}: resuming needs data with load_state_dict() to restore its "
                    f"position, but {type(self.data).__name__} has not"
                )
            self.data.load_state_dict(extra["data"])
        for callback, entry in zip(self.callbacks, extra["callbacks"], strict=True):
            callback.load_state_dict(entry["state"])
        restore_rng_state(ckpt.tensors, extra["rng"])
        state.step = ckpt.step
        state.epoch = float(extra["epoch"])
        state.should_stop = bool(extra["should_stop"])
        state.eval_metrics = dict(extra["eval_metrics"])
        state.eval_step = extra["eval_step"]
        state.start_time = time.perf_counter() - float(extra["elapsed"])
        self.last_lr = extra["last_lr"]
        for name in extra["window"]:
            self.window[name] = list(ckpt.tensors[f"window/{name}"].to(self.device).unbind(0))
        return bool(extra["final"])
