"""Tests of `DenseLinear`: init statistics, NTK vs standard, nn.Linear parity, generators."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from perceptrons.layers import DenseLinear


def empirical_std_tolerance(std: float, n: int, sigmas: float = 6.0) -> float:
    """Tolerance on a sample std of ``n`` Gaussian draws: SE(std) ~ std / sqrt(2 n)."""
    return sigmas * std / math.sqrt(2 * n)


@pytest.mark.parametrize("weight_std", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("bias_std", [0.0, 0.3])
def test_standard_init_statistics(weight_std: float, bias_std: float) -> None:
    layer = DenseLinear(
        256,
        512,
        weight_std=weight_std,
        bias_std=bias_std,
        generator=torch.Generator().manual_seed(0),
    )
    expected = weight_std / math.sqrt(256)
    n = layer.weight.numel()
    assert layer.weight.mean().abs() < 6 * expected / math.sqrt(n)
    assert abs(layer.weight.std().item() - expected) < empirical_std_tolerance(expected, n)
    if bias_std == 0:
        assert torch.count_nonzero(layer.bias) == 0
    else:
        assert abs(layer.bias.std().item() - bias_std) < empirical_std_tolerance(bias_std, 512)


def test_ntk_init_is_standard_normal() -> None:
    layer = DenseLinear(
        256, 512, weight_std=2.0, bias_std=0.5, parameterization="ntk",
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    n = layer.weight.numel()
    assert abs(layer.weight.std().item() - 1.0) < empirical_std_tolerance(1.0, n)
    assert abs(layer.bias.std().item() - 1.0) < empirical_std_tolerance(1.0, 512)
    assert layer.weight_scale == pytest.approx(2.0 / 16.0)
    assert layer.bias_scale == 0.5


def test_preactivation_variance_matches_weight_std_times_second_moment() -> None:
    """Var over units of z = W x + b is sigma_w^2 |x|^2 / d + sigma_b^2, for each input."""
    d, units = 64, 8192
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(5, d, generator=generator) * torch.linspace(0.5, 2.0, 5)[:, None]
    for parameterization in ("standard", "ntk"):
        layer = DenseLinear(
            d, units, weight_std=1.5, bias_std=0.2, parameterization=parameterization,
            generator=generator,
        )  # fmt: skip
        with torch.no_grad():
            z = layer(x)
        expected = 1.5**2 * x.pow(2).mean(-1) + 0.2**2
        empirical = z.var(dim=-1)
        tolerance = 6 * expected * math.sqrt(2 / (units - 1))  # SE of a Gaussian sample variance
        assert torch.all((empirical - expected).abs() < tolerance), (empirical, expected)


def test_default_init_matches_nn_linear_bitwise() -> None:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        reference = nn.Linear(7, 5)
        torch.manual_seed(0)
        ours = DenseLinear(7, 5)
    assert torch.equal(ours.weight, reference.weight)
    assert torch.equal(ours.bias, reference.bias)
    x = torch.randn(3, 7)
    assert torch.equal(ours(x), reference(x))


def equal_draws(ntk: DenseLinear) -> DenseLinear:
    """A standard layer holding the same draws as ``ntk`` (W_std = sigma_w W_ntk / sqrt(d))."""
    standard = DenseLinear(
        ntk.in_features, ntk.out_features, bias=ntk.bias is not None,
        weight_std=ntk.weight_std, bias_std=ntk.bias_std, dtype=ntk.weight.dtype,
    )  # fmt: skip
    with torch.no_grad():
        standard.weight.copy_(ntk.weight * ntk.weight_scale)
        if ntk.bias is not None:
            standard.bias.copy_(ntk.bias * ntk.bias_std)
    return standard


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ntk_and_standard_agree_at_equal_draws(bias: bool, dtype: torch.dtype) -> None:
    generator = torch.Generator().manual_seed(2)
    ntk = DenseLinear(
        32, 16, bias=bias, weight_std=1.7, bias_std=0.4, parameterization="ntk",
        dtype=dtype, generator=generator,
    )  # fmt: skip
    standard = equal_draws(ntk)
    x = torch.randn(4, 3, 32, dtype=dtype, generator=generator)
    y_ntk, y_standard = ntk(x), standard(x)
    assert y_ntk.shape == (4, 3, 16) and y_ntk.dtype == dtype
    torch.testing.assert_close(y_ntk, y_standard)


@pytest.mark.parametrize("bias", [True, False])
def test_gradient_ratio_between_parameterisations(bias: bool) -> None:
    """At equal draws, dL/dW_ntk = (sigma_w / sqrt(d)) dL/dW_std and dL/db_ntk = sigma_b dL/db."""
    generator = torch.Generator().manual_seed(3)
    ntk = DenseLinear(
        100, 8, bias=bias, weight_std=1.3, bias_std=0.5, parameterization="ntk",
        dtype=torch.float64, generator=generator,
    )  # fmt: skip
    standard = equal_draws(ntk)
    x = torch.randn(6, 100, dtype=torch.float64, generator=generator)
    target = torch.randn(6, 8, dtype=torch.float64, generator=generator)
    for layer in (ntk, standard):
        (layer(x) - target).pow(2).sum().backward()
    torch.testing.assert_close(ntk.weight.grad, standard.weight.grad * (1.3 / 10.0))
    if bias:
        torch.testing.assert_close(ntk.bias.grad, standard.bias.grad * 0.5)


def test_ntk_weight_std_none_means_one() -> None:
    layer = DenseLinear(16, 4, parameterization="ntk")
    assert layer.weight_scale == pytest.approx(0.25)


def test_generator_determinism_and_no_global_rng_use() -> None:
    state = torch.random.get_rng_state()
    first = DenseLinear(
        8, 4, weight_std=1.0, bias_std=1.0, generator=torch.Generator().manual_seed(5)
    )
    second = DenseLinear(
        8, 4, weight_std=1.0, bias_std=1.0, generator=torch.Generator().manual_seed(5)
    )
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(first.weight, second.weight) and torch.equal(first.bias, second.bias)
    first.reset_parameters(torch.Generator().manual_seed(6))
    assert not torch.equal(first.weight, second.weight)
    first.reset_parameters(torch.Generator().manual_seed(5))
    assert torch.equal(first.weight, second.weight)


def test_no_bias_dtype_and_repr() -> None:
    layer = DenseLinear(3, 2, bias=False, dtype=torch.float64)
    assert layer.bias is None
    assert [p.dtype for p in layer.parameters()] == [torch.float64]
    assert layer(torch.zeros(3, dtype=torch.float64)).shape == (2,)
    assert "parameterization='standard'" in repr(layer)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"in_features": 0}, "in_features: expected an int >= 1, got 0"),
        ({"out_features": -1}, "out_features: expected an int >= 1, got -1"),
        ({"in_features": 2.0}, "in_features: expected an int >= 1"),
        ({"weight_std": -1.0}, "weight_std: expected a finite number >= 0"),
        ({"weight_std": float("nan")}, "weight_std: expected a finite number >= 0"),
        ({"weight_std": 1.0, "bias_std": float("inf")}, "bias_std: expected a finite number"),
        ({"parameterization": "mup"}, "parameterization: expected one of"),
        ({"bias_std": 0.1}, "bias_std: weight_std=None selects nn.Linear's default"),
    ],
)
def test_bad_arguments(kwargs: dict, needle: str) -> None:
    args = {"in_features": 4, "out_features": 3, **kwargs}
    with pytest.raises(ValueError) as info:
        DenseLinear(args.pop("in_features"), args.pop("out_features"), **args)
    assert needle in str(info.value)
