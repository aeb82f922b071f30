"""Helpers every study shares: seeded generators, batched prediction, figure saving, summaries.

Dimension legend: ``b`` batch (rows), ``...`` the model's own input and output dimensions.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from perceptrons.io import atomic_write

__all__ = [
    "FIGURE_DPI",
    "accuracy",
    "format_mean_std",
    "generator",
    "mean_std",
    "mse",
    "num_parameters",
    "predict",
    "save_figure",
]

FIGURE_DPI = 110
"""Resolution of every study figure."""


def generator(seed: int, stream: int | None = None) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (``stream`` given: ``1000 * seed +
    stream``, one independent stream per use of the same seed).

    Streams ``0 <= stream < 1000`` of different seeds never coincide; a streamed seed can
    coincide with an unstreamed one (``generator(0, 3)`` is ``generator(3)``), so a study uses
    one form or the other for its draws.
    """
    return torch.Generator().manual_seed(seed if stream is None else 1000 * seed + stream)


def _rows(inputs: Any) -> int:
    if isinstance(inputs, torch.Tensor):
        return inputs.shape[0]
    if isinstance(inputs, dict) and inputs:
        return _rows(next(iter(inputs.values())))
    if isinstance(inputs, tuple | list) and inputs:
        return _rows(inputs[0])
    raise TypeError(f"inputs: expected a tensor or a dict/tuple of tensors, got {inputs!r}")


def _slice(inputs: Any, start: int, stop: int, device: torch.device) -> Any:
    if isinstance(inputs, torch.Tensor):
        return inputs[start:stop].to(device)
    if isinstance(inputs, dict):
        return {k: _slice(v, start, stop, device) for k, v in inputs.items()}
    return type(inputs)(_slice(v, start, stop, device) for v in inputs)


def predict(model: nn.Module, inputs: Any, *, batch_size: int = 4096) -> Any:
    """Outputs of ``model`` on every row of ``inputs``, in chunks, without gradients.

    Args:
        model: Any module; its outputs are collected on the CPU.
        inputs: A tensor ``(b, ...)`` or a dict / tuple of such tensors (e.g. CTR rows), moved
            chunk by chunk to the device of the model's first parameter.
        batch_size: Rows per forward pass.

    Returns:
        The outputs concatenated along the first dimension: a tensor ``(b, ...)``, or a dict of
        them when the model returns a dict.
    """
    params = next(model.parameters(), None)
    device = params.device if params is not None else torch.device("cpu")
    n = _rows(inputs)
    parts: list[Any] = []
    with torch.no_grad():
        for start in range(0, n, batch_size):
            out = model(_slice(inputs, start, start + batch_size, device))
            parts.append(
                {k: v.cpu() for k, v in out.items()} if isinstance(out, dict) else out.cpu()
            )
    if not parts:
        raise ValueError("inputs: has no rows")
    if isinstance(parts[0], dict):
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
    return torch.cat(parts)


def accuracy(model: nn.Module, x: Any, y: torch.Tensor, *, batch_size: int = 4096) -> float:
    """Fraction of rows whose arg-max output equals the label ``y`` ``(b,)``."""
    return float((predict(model, x, batch_size=batch_size).argmax(-1) == y).float().mean())


def mse(model: nn.Module, x: Any, y: torch.Tensor, *, batch_size: int = 4096) -> float:
    """Mean squared error of the outputs against targets ``y`` of the same shape."""
    return float((predict(model, x, batch_size=batch_size) - y).pow(2).mean())


def num_parameters(model: nn.Module) -> int:
    """Number of scalar parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``; 0 for a single value)."""
    n = len(values)
    if n == 0:
        raise ValueError("values: empty")
    mean = sum(values) / n
    if n == 1:
        return float(mean), 0.0
    return float(mean), math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def format_mean_std(
    values: Sequence[float], digits: int = 4, *, std_digits: int | None = None, spec: str = "f"
) -> str:
    """A table cell: ``"mean ± std"`` (`mean_std`: sample std) for several values, ``"mean"``
    alone for one.

    Both numbers use the format ``f"{v:.{digits}{spec}}"``, the std with ``std_digits`` digits
    when given. ``spec="f"`` fixes the digits after the point, ``spec="g"`` the significant
    digits (for values spanning orders of magnitude)::

        format_mean_std([0.71, 0.73])                               # '0.7200 ± 0.0141'
        format_mean_std([0.5])                                      # '0.5000'
        format_mean_std([1.5e-3, 2.5e-3], std_digits=2, spec="g")  # '0.002 ± 0.00071'

    Args:
        values: The measurements (e.g. one per seed); NaNs propagate to ``"nan"``.
        digits: Precision of the mean (and of the std unless ``std_digits`` is given).
        std_digits: Precision of the std (default ``digits``).
        spec: A float presentation type of the format mini-language: ``"f"``, ``"g"`` or
            ``"e"``.

    Raises:
        ValueError: ``values`` is empty, or ``spec`` is not ``"f"``, ``"g"`` or ``"e"``.
    """
    if spec not in ("f", "g", "e"):
        raise ValueError(f"spec: expected 'f', 'g' or 'e', got {spec!r}")
    mean, std = mean_std(values)
    if len(values) == 1:
        return f"{mean:.{digits}{spec}}"
    return f"{mean:.{digits}{spec}} ± {std:.{digits if std_digits is None else std_digits}{spec}}"


def save_figure(fig: Any, path: str | os.PathLike[str], *, dpi: int = FIGURE_DPI) -> Path:
    """Write a matplotlib ``Figure`` as PNG atomically (`perceptrons.io.atomic_write`).

    Returns:
        ``path`` as a `Path`, for ``StudyResult.figures``.
    """
    path = Path(path)
    with atomic_write(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=dpi)
    return path
