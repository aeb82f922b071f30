"""Tests of the shaped activations `ShapedReLU` and `ShapedActivation`."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from perceptrons.layers import (
    MLP,
    SMOOTH_ACTIVATIONS,
    ShapedActivation,
    ShapedReLU,
    SmoothName,
    get_activation,
)

DTYPES = [torch.float32, torch.float64]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------ ShapedReLU
@pytest.mark.parametrize(
    ("c_plus", "c_minus", "rate", "s_plus", "s_minus"),
    [
        (0.0, -1.0, 1.0, 1.0, 0.0),  # the default is ReLU
        (0.0, -1.0, 100, 1.0, 0.9),
        (0.5, -2.0, 16, 1.125, 0.5),
        (0.0, 0.0, 7, 1.0, 1.0),
    ],
)
def test_slopes(c_plus: float, c_minus: float, rate: float, s_plus: float, s_minus: float) -> None:
    act = ShapedReLU(c_plus, c_minus, rate)
    assert (act.s_plus, act.s_minus) == pytest.approx((s_plus, s_minus), abs=1e-15)
    assert ShapedReLU.slopes(c_plus, c_minus, rate) == (act.s_plus, act.s_minus)
    assert act.scale == pytest.approx(math.sqrt(2 / (s_plus**2 + s_minus**2)))
    assert ShapedReLU(c_plus, c_minus, rate, normalize=False).scale == 1.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_is_the_two_slope_formula(dtype: torch.dtype) -> None:
    act = ShapedReLU(0.7, -3.0, 25)
    x = torch.linspace(-4, 4, 101, dtype=dtype).reshape(101, 1).expand(101, 3)
    expected = act.scale * (act.s_plus * x.clamp_min(0) + act.s_minus * x.clamp_max(0))
    y = act(x)
    assert y.shape == x.shape and y.dtype == dtype
    torch.testing.assert_close(y, expected)
    bare = ShapedReLU(0.7, -3.0, 25, normalize=False)(x)
    torch.testing.assert_close(bare, expected / act.scale)


def test_default_is_he_scaled_relu_and_zero_shaping_is_identity() -> None:
    x = torch.randn(50, generator=gen(), dtype=torch.float64)
    torch.testing.assert_close(ShapedReLU()(x), math.sqrt(2) * torch.relu(x), rtol=1e-15, atol=0)
    torch.testing.assert_close(ShapedReLU(0.0, 0.0, 3.0)(x), x, rtol=1e-15, atol=0)


@pytest.mark.parametrize(("c_plus", "c_minus", "rate"), [(0.0, -1.0, 1.0), (1.0, -3.0, 4.0)])
def test_normalised_second_moment_is_one(c_plus: float, c_minus: float, rate: float) -> None:
    # E[phi(g)^2] = 1 for g ~ N(0, 1); phi(g)^2 has variance E[phi^4] - 1 <= 3 * scale^4 * s^4.
    act = ShapedReLU(c_plus, c_minus, rate)
    num_samples = 400_000
    g = torch.randn(num_samples, generator=gen(1), dtype=torch.float64)
    values = act(g) ** 2
    standard_error = values.std().item() / math.sqrt(num_samples)
    assert abs(values.mean().item() - 1.0) < 5 * standard_error


def test_kappa_and_effective_c2() -> None:
    act = ShapedReLU(0.0, -1.0, 100)
    assert act.kappa == pytest.approx(2 * 0.1**2 / (1 + 0.81))
    assert act.effective_c2(100) == pytest.approx(100 * act.kappa)
    assert ShapedReLU(0.0, -1.0, 1e8).effective_c2(1e8) == pytest.approx(1.0, rel=1e-3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradients(dtype: torch.dtype) -> None:
    act = ShapedReLU(0.5, -2.0, 9)
    x = torch.tensor([-2.0, -0.5, 0.5, 3.0], dtype=dtype, requires_grad=True)
    act(x).sum().backward()
    slopes = [act.scale * act.s_minus] * 2 + [act.scale * act.s_plus] * 2
    torch.testing.assert_close(x.grad, torch.tensor(slopes, dtype=dtype))
    x64 = torch.randn(6, generator=gen(2), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(act, (x64,))


def test_factory_builds_fresh_modules_for_mlp() -> None:
    factory = ShapedReLU.factory(0.0, -1.0, 16)
    assert get_activation(factory) is factory
    assert factory() is not factory()
    net = MLP(5, (8, 8), 2, act_layer=factory, weight_std=1.0, bias=False, generator=gen())
    assert all(isinstance(layer.act, ShapedReLU) for layer in net.layers)
    assert net.layers[1].act.s_minus == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"rate": 0.0}, r"^rate: expected a finite number > 0, got 0.0"),
        ({"rate": -4}, r"^rate: expected a finite number > 0"),
        ({"c_plus": math.nan}, r"^c_plus: expected a finite number"),
        ({"c_minus": math.inf}, r"^c_minus: expected a finite number"),
        ({"c_minus": True}, r"^c_minus: expected a finite number"),
        ({"c_plus": -1.0, "c_minus": -1.0}, r"^c_plus, c_minus: s_plus = s_minus = 0"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        ShapedReLU(**kwargs)
    with pytest.raises(ValueError, match=needle):
        ShapedReLU.factory(**kwargs)


def test_zero_slopes_are_allowed_without_normalisation() -> None:
    act = ShapedReLU(-1.0, -1.0, normalize=False)
    assert torch.equal(act(torch.ones(3)), torch.zeros(3))


# ------------------------------------------------------------------------------ smooth
@pytest.mark.parametrize("fn", SMOOTH_ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_smooth_activations_are_normalised_at_zero(fn: SmoothName, dtype: torch.dtype) -> None:
    act = ShapedActivation(fn)
    x = torch.zeros(1, dtype=dtype, requires_grad=True)
    y = act(x)
    assert y.dtype == dtype and y.item() == 0.0
    y.sum().backward()
    assert x.grad.item() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("fn", SMOOTH_ACTIVATIONS)
def test_smooth_taylor_coefficients(fn: SmoothName) -> None:
    # phi(x) = x + sigma2 x^2 / 2 + sigma3 x^3 / 6 + O(x^4) with a = rate = 1
    act = ShapedActivation(fn)
    h = 1e-2
    x = torch.tensor([-h, h], dtype=torch.float64)
    y = act(x)
    third = (y[1] - y[0] - 2 * h) * 3 / h**3  # odd part: sigma3 + O(h^2)
    assert third.item() == pytest.approx(act.sigma3, abs=1e-3)
    assert act.sigma2 == 0.0


@pytest.mark.parametrize("fn", SMOOTH_ACTIVATIONS)
def test_shaped_smooth_tends_to_identity(fn: SmoothName) -> None:
    x = torch.linspace(-3, 3, 61, dtype=torch.float64)
    errors = [
        (ShapedActivation(fn, a=1.0, rate=n)(x) - x).abs().max().item() for n in (1, 1e2, 1e4)
    ]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-3  # |sigma3| x^3 / (6 s^2) with s = 100
    torch.testing.assert_close(
        ShapedActivation(fn, a=2.0, rate=9)(x), 6.0 * ShapedActivation(fn)(x / 6.0)
    )


def test_smooth_forward_and_factory() -> None:
    x = torch.linspace(-2, 2, 9)
    act = ShapedActivation("tanh", a=0.5, rate=4)
    assert act.s == 1.0
    torch.testing.assert_close(act(x), torch.tanh(x))
    erf = ShapedActivation("erf")
    torch.testing.assert_close(erf(x), torch.erf(x * math.sqrt(math.pi) / 2))
    factory = ShapedActivation.factory("sin", 1.0, 100)
    net = MLP(3, (4,), 1, act_layer=factory, generator=gen())
    assert isinstance(net.layers[0].act, ShapedActivation) and net.layers[0].act.fn == "sin"


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"fn": "gelu"}, r"^fn: .*sigma\(0\) = 0 and sigma'\(0\) = 1.*gelu'\(0\) = 1/2"),
        ({"fn": "sigmoid"}, r"^fn: .*sigmoid\(0\) = 1/2"),
        ({"fn": "relu"}, r"^fn: .*use ShapedReLU"),
        ({"fn": "cosh"}, r"^fn: .*valid names: tanh, sin, atan, erf; got 'cosh'$"),
        ({"fn": nn.Tanh}, r"^fn: "),
        ({"a": 0.0}, r"^a: expected a finite number > 0"),
        ({"rate": math.inf}, r"^rate: expected a finite number > 0"),
    ],
)
def test_smooth_bad_arguments_raise(kwargs: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        ShapedActivation(**kwargs)
