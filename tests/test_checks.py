"""Tests of `perceptrons.checks`: input errors name the expected shape."""

from __future__ import annotations

import pytest
import torch

from perceptrons.checks import check_tensor, format_shape


def test_format_shape() -> None:
    assert format_shape(("batch", 64)) == "(batch, 64)"
    assert format_shape((None, 3)) == "(*, 3)"
    assert format_shape(()) == "()"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_valid_tensor_is_returned(dtype: torch.dtype) -> None:
    x = torch.zeros(3, 64, dtype=dtype)
    assert check_tensor(x, "x", ("batch", 64)) is x
    assert check_tensor(x, "x", (None, 64)) is x


@pytest.mark.parametrize(
    ("x", "error", "needle"),
    [
        (torch.zeros(3, 65), ValueError, "x: expected shape (batch, 64), got (3, 65)"),
        (torch.zeros(64), ValueError, "x: expected shape (batch, 64), got (64,)"),
        (torch.zeros(1, 3, 64), ValueError, "x: expected shape (batch, 64), got (1, 3, 64)"),
        (torch.zeros(3, 64, dtype=torch.int64), TypeError, "floating tensor of shape (batch, 64)"),
        ([[0.0] * 64], TypeError, "x: expected a tensor of shape (batch, 64), got list"),
    ],
)
def test_errors_name_the_expected_shape(x: object, error: type, needle: str) -> None:
    with pytest.raises(error) as info:
        check_tensor(x, "x", ("batch", 64))
    assert needle in str(info.value)


def test_non_floating_allowed_when_requested() -> None:
    x = torch.zeros(2, 3, dtype=torch.int64)
    assert check_tensor(x, "ids", ("batch", "n"), floating=False) is x


def test_finite() -> None:
    x = torch.tensor([[0.0, float("nan")]])
    check_tensor(x, "x", ("batch", 2))  # not checked by default
    with pytest.raises(
        ValueError, match=r"x: expected finite values in a tensor of shape \(b, 2\)"
    ):
        check_tensor(x, "x", ("b", 2), finite=True)
    with pytest.raises(ValueError, match="finite"):
        check_tensor(torch.tensor([float("inf")]), "x", (1,), finite=True)


def test_check_int_and_check_number_name_the_argument_and_bound():
    import math

    import pytest

    from perceptrons.checks import check_int, check_number

    assert check_int("n", 3) == 3
    assert check_int("d", 0, low=0) == 0
    for bad in (0, 2.0, True, "3"):
        with pytest.raises(ValueError, match=r"^n: expected an int >= 1, got"):
            check_int("n", bad)
    assert check_number("x", 2) == 2.0 and isinstance(check_number("x", 2), float)
    assert check_number("x", 0.0, low=0.0) == 0.0
    with pytest.raises(ValueError, match=r"^x: expected a finite number > 0, got 0.0"):
        check_number("x", 0.0, low=0.0, strict=True)
    for bad in (math.nan, math.inf, True, "1"):
        with pytest.raises(ValueError, match=r"^x: expected a finite number, got"):
            check_number("x", bad)
