"""Input validation shared by layers and models: errors that name the expected shape.

Example::

    check_tensor(x, "x", ("batch", 64))
    # ValueError: x: expected shape (batch, 64), got (3, 65)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = ["check_int", "check_number", "check_tensor", "format_shape"]


def format_shape(shape: Sequence[int | str | None]) -> str:
    """``("batch", 64)`` -> ``"(batch, 64)"``; ``None`` or a string is a free dimension."""
    return "(" + ", ".join("*" if d is None else str(d) for d in shape) + ")"


def check_tensor(
    x: object,
    name: str,
    shape: Sequence[int | str | None],
    *,
    floating: bool = True,
    finite: bool = False,
) -> torch.Tensor:
    """Check that ``x`` is a tensor of the given shape; return it.

    Args:
        x: The value to check.
        name: Argument name used in messages.
        shape: Expected shape; an int must match exactly, a string or ``None`` matches any size.
        floating: Require a floating dtype.
        finite: Also require every entry to be finite (costs one pass over ``x``).

    Raises:
        TypeError: not a tensor, or not floating when required.
        ValueError: wrong rank or size, or non-finite values when ``finite``.
    """
    expected = format_shape(shape)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a tensor of shape {expected}, got {type(x).__name__}")
    if floating and not x.is_floating_point():
        raise TypeError(
            f"{name}: expected a floating tensor of shape {expected}, got dtype {x.dtype}"
        )
    if x.dim() != len(shape) or any(
        isinstance(d, int) and d != s for d, s in zip(shape, x.shape, strict=False)
    ):
        raise ValueError(f"{name}: expected shape {expected}, got {tuple(x.shape)}")
    if finite and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name}: expected finite values in a tensor of shape {expected}")
    return x


def check_int(name: str, value: object, low: int = 1) -> int:
    """Return ``value`` if it is an ``int`` (not a bool) ``>= low``, else raise ``ValueError``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
    return value


def check_number(
    name: str, value: object, *, low: float = -math.inf, strict: bool = False
) -> float:
    """Return ``value`` as a float if it is a finite real number ``>= low`` (``> low`` if strict).

    Raises:
        ValueError: not a finite int/float (bools rejected), or below the bound; the message
            names the argument and the bound.
    """
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = value > low if strict else value >= low
    if not ok:
        bound = "" if low == -math.inf else f" {'>' if strict else '>='} {low:g}"
        raise ValueError(f"{name}: expected a finite number{bound}, got {value!r}")
    return float(value)
