"""Progress of `fit`: a rich bar on a terminal, plain lines on stderr elsewhere, or nothing.

`open_progress` picks the display (`progress_mode`): the rich `ProgressBar` when stdout is a
terminal and ``CI`` is unset; otherwise (CI, pipes, files, long jobs under a scheduler)
`ProgressLines`, one line on stderr every ``every`` steps (shown here on two)::

    fit step 40/100 (40%) | loss 0.6931 | 12.3 steps/s, 50,381 rows/s | elapsed 0:00:03 |
    ETA 0:00:05

Rates and the ETA are averages over this session (a resumed run counts from its resume step);
rows are counted from the first tensor of each batch (its first dimension); the loss is the
latest logged one (a window mean, see `FitConfig.log_every`). Both cost nothing when disabled.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Mapping
from types import TracebackType
from typing import IO, Any, Literal

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from torch import Tensor

__all__ = [
    "ProgressBar",
    "ProgressLines",
    "batch_rows",
    "default_progress_every",
    "open_progress",
    "progress_enabled",
    "progress_mode",
]


def progress_enabled(requested: bool) -> bool:
    """Show a bar only if ``requested``, stdout is a terminal and ``CI`` is unset."""
    if not requested or os.environ.get("CI"):
        return False
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty())


def progress_mode(requested: bool) -> Literal["bar", "lines", "off"]:
    """``"bar"`` where `progress_enabled`, else ``"lines"`` if ``requested``, else ``"off"``."""
    if not requested:
        return "off"
    return "bar" if progress_enabled(True) else "lines"


def default_progress_every(total: int, log_every: int) -> int:
    """The smallest multiple of ``log_every`` that prints at most about 20 lines in ``total``
    steps (each line then falls on a logged step, with a fresh loss)."""
    per_line = max(1, math.ceil(total / 20))
    return log_every * math.ceil(per_line / log_every)


def batch_rows(batch: Any) -> int | None:
    """Rows of a batch: the first dimension of its first tensor (depth first through dicts,
    lists and tuples; 0-d tensors skipped); None without one."""
    if isinstance(batch, Tensor):
        return int(batch.shape[0]) if batch.ndim else None
    if isinstance(batch, Mapping):
        items = list(batch.values())
    elif isinstance(batch, list | tuple):
        items = list(batch)
    else:
        return None
    for item in items:
        rows = batch_rows(item)
        if rows is not None:
            return rows
    return None


class ProgressBar:
    """Steps done out of ``total`` and the latest logged loss; a no-op when disabled.

    Use as a context manager; call `update` after each step.

    Args:
        total: Number of steps of the run.
        initial: Steps already done (a resumed run).
        enabled: Whether to draw anything.
    """

    counts_rows = False
    """Whether `add_rows` is used (the bar shows no throughput)."""

    def __init__(self, total: int, *, initial: int = 0, enabled: bool = True) -> None:
        self.enabled = enabled
        self._progress: Progress | None = None
        self._task = None
        if enabled:
            self._progress = Progress(
                TextColumn("[bold]fit"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                transient=False,
            )
            self._task = self._progress.add_task("fit", total=total, completed=initial, loss="-")

    def update(self, step: int, loss: float | None = None) -> None:
        """Show ``step`` completed steps (and ``loss`` when given)."""
        if self._progress is None:
            return
        if loss is None:
            self._progress.update(self._task, completed=step)
        else:
            self._progress.update(self._task, completed=step, loss=f"{loss:.4g}")

    def add_rows(self, rows: int | None) -> None:
        """Ignored by the bar."""

    def __enter__(self) -> ProgressBar:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class ProgressLines:
    """Progress as plain lines on a stream: one every ``every`` steps and one at the end.

    Same interface as `ProgressBar`. A line is written when `update` reaches a multiple of
    ``every``; on a normal exit, a last line if anything changed since the last one (a run
    that ends between two multiples, or its final log record). The format is in the module
    docstring; ``rows/s`` is left out when no batch had rows.

    Args:
        total: Number of steps of the run.
        every: Steps between two lines.
        initial: Steps already done (a resumed run).
        stream: Where the lines go (default: ``sys.stderr`` at construction).
        clock: Seconds of a monotonic clock (tests pass a fake one).
    """

    counts_rows = True
    """Whether `fit` should call `add_rows` after each step."""

    def __init__(
        self,
        total: int,
        every: int,
        *,
        initial: int = 0,
        stream: IO[str] | None = None,
        clock: Any = time.perf_counter,
    ) -> None:
        if every < 1:
            raise ValueError(f"every: must be >= 1, got {every}")
        self.total, self.every, self.initial = total, every, initial
        self.stream = sys.stderr if stream is None else stream
        self._clock = clock
        self._start = clock()
        self._step = initial
        self._loss: float | None = None
        self._rows = 0
        self._printed: tuple[int, float | None] = (initial, None)

    def add_rows(self, rows: int | None) -> None:
        """Count ``rows`` more rows (the batch of the step just done; None: unknown)."""
        if rows:
            self._rows += rows

    def update(self, step: int, loss: float | None = None) -> None:
        """Record ``step`` completed steps (and the latest ``loss``); print a line when due."""
        self._step = step
        if loss is not None:
            self._loss = loss
        if step % self.every == 0 and step > self._printed[0]:
            self._print()

    def line(self) -> str:
        """The progress line of the current state (without the newline)."""
        step, total = self._step, self.total
        elapsed = max(self._clock() - self._start, 1e-9)
        done = step - self.initial
        parts = [f"fit step {step}/{total} ({100 * step // max(total, 1)}%)"]
        parts.append("loss -" if self._loss is None else f"loss {self._loss:.4g}")
        rate = f"{done / elapsed:.3g} steps/s"
        if self._rows:
            rate += f", {self._rows / elapsed:,.0f} rows/s"
        parts.append(rate)
        eta = (total - step) * elapsed / done if done > 0 else float("nan")
        parts.append(f"elapsed {_duration(elapsed)}")
        parts.append(f"ETA {_duration(eta)}")
        return " | ".join(parts)

    def _print(self) -> None:
        self.stream.write(self.line() + "\n")
        self.stream.flush()
        self._printed = (self._step, self._loss)

    def __enter__(self) -> ProgressLines:
        self._start = self._clock()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None and self._step > self.initial:
            if (self._step, self._loss) != self._printed:
                self._print()


def open_progress(
    requested: bool,
    total: int,
    *,
    initial: int = 0,
    every: int,
    stream: IO[str] | None = None,
) -> ProgressBar | ProgressLines:
    """The display `progress_mode` picks: a `ProgressBar`, `ProgressLines` (every ``every``
    steps to ``stream``, default stderr) or a disabled `ProgressBar`."""
    mode = progress_mode(requested)
    if mode == "lines":
        return ProgressLines(total, every, initial=initial, stream=stream)
    return ProgressBar(total, initial=initial, enabled=mode == "bar")
