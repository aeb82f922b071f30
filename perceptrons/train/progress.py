"""A rich progress bar for `fit` that costs nothing when it is off."""

from __future__ import annotations

import os
import sys
from types import TracebackType

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["ProgressBar", "progress_enabled"]


def progress_enabled(requested: bool) -> bool:
    """Show a bar only if ``requested``, stdout is a terminal and ``CI`` is unset."""
    if not requested or os.environ.get("CI"):
        return False
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty())


class ProgressBar:
    """Steps done out of ``total`` and the latest logged loss; a no-op when disabled.

    Use as a context manager; call `update` after each step.

    Args:
        total: Number of steps of the run.
        initial: Steps already done (a resumed run).
        enabled: Whether to draw anything.
    """

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
