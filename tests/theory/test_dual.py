"""Tests of the dual activations, the ReLU correlation map and the NNGP recursion."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from perceptrons.theory.dual import (
    ab_relu_dual,
    correlation_gap,
    dual_matrix,
    erf_dual,
    erf_prime_dual,
    gauss_hermite_dual,
    nngp_recursion,
    one_minus_j,
    relu_correlation_map,
    relu_dual,
    shaped_correlation_drift,
    shaped_relu_correlation_map,
    sign_dual,
    step_dual,
)

# (k11, k22, k12) covering positive, zero and negative correlation and unequal variances
KERNELS = [(1.0, 1.0, 0.0), (1.0, 1.0, 0.6), (2.0, 0.5, -0.7), (0.3, 1.7, 0.69), (1.5, 1.5, -1.5)]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_psd(k: int, batch: int = 4, seed: int = 0) -> torch.Tensor:
    x = torch.randn(batch, k, 3 * k, generator=gen(seed), dtype=torch.float64)
    return x @ x.transpose(-1, -2) / (3 * k)


def kernel_grid() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    k11 = torch.tensor([0.2, 1.0, 3.0], dtype=torch.float64).reshape(3, 1, 1)
    k22 = torch.tensor([0.5, 1.0, 2.5], dtype=torch.float64).reshape(1, 3, 1)
    rho = torch.linspace(-0.99, 0.99, 7, dtype=torch.float64).reshape(1, 1, 7)
    return k11, k22, rho * torch.sqrt(k11 * k22)


def erf_prime(x: torch.Tensor) -> torch.Tensor:
    return 2 / math.sqrt(math.pi) * torch.exp(-x * x)


# ------------------------------------------------------------------------ closed forms
@pytest.mark.parametrize(("dual", "fn"), [(erf_dual, torch.erf), (erf_prime_dual, erf_prime)])
def test_smooth_closed_forms_match_gauss_hermite(dual, fn) -> None:
    k11, k22, k12 = kernel_grid()
    closed = dual(k11, k22, k12)
    assert closed.shape == (3, 3, 7) and closed.dtype == torch.float64
    torch.testing.assert_close(closed, gauss_hermite_dual(fn, k11, k22, k12), rtol=0, atol=1e-6)


def test_gauss_hermite_is_exact_for_polynomials() -> None:
    k11, k22, k12 = kernel_grid()
    # E[u v] = k12, E[u^2 v^2] = k11 k22 + 2 k12^2 (Isserlis)
    linear = gauss_hermite_dual(lambda x: x, k11, k22, k12, num_nodes=4)
    torch.testing.assert_close(linear, k12.expand(3, 3, 7), rtol=1e-12, atol=1e-12)
    square = gauss_hermite_dual(torch.square, k11, k22, k12, num_nodes=6)
    torch.testing.assert_close(square, k11 * k22 + 2 * k12**2, rtol=1e-12, atol=1e-12)


def _monte_carlo(fn, k11: float, k22: float, k12: float, seed: int) -> tuple[float, float]:
    """Mean and standard error of fn(u) fn(v) over 10^6 samples of (u, v) ~ N(0, K)."""
    num_samples = 1_000_000
    z = torch.randn(2, num_samples, generator=gen(seed), dtype=torch.float64)
    rho = k12 / math.sqrt(k11 * k22)
    u = math.sqrt(k11) * z[0]
    v = math.sqrt(k22) * (rho * z[0] + math.sqrt(max(1 - rho * rho, 0.0)) * z[1])
    values = fn(u) * fn(v)
    return values.mean().item(), values.std().item() / math.sqrt(num_samples)


def _ab(x: torch.Tensor, a: float, b: float) -> torch.Tensor:
    return b * x.clamp_min(0) + a * x.clamp_max(0)


KINKS = {
    "relu": (relu_dual, torch.relu),
    "step": (step_dual, lambda x: (x > 0).double()),
    "sign": (sign_dual, torch.sign),
    "ab_relu": (
        functools.partial(ab_relu_dual, a=0.4, b=1.3),
        functools.partial(_ab, a=0.4, b=1.3),
    ),
    "ab_relu_negative": (
        functools.partial(ab_relu_dual, a=-0.5, b=1.0),
        functools.partial(_ab, a=-0.5, b=1.0),
    ),
}


@pytest.mark.parametrize("name", list(KINKS))
@pytest.mark.parametrize("kernel", KERNELS)
def test_kink_closed_forms_match_monte_carlo(name: str, kernel: tuple) -> None:
    dual, fn = KINKS[name]
    mean, standard_error = _monte_carlo(fn, *kernel, seed=KERNELS.index(kernel))
    closed = dual(*kernel).item()
    assert abs(closed - mean) < 5 * standard_error + 1e-12, (closed, mean, standard_error)


@pytest.mark.parametrize("name", ["relu", "ab_relu"])
def test_kink_closed_forms_roughly_match_gauss_hermite(name: str) -> None:
    dual, fn = KINKS[name]
    k11, k22, k12 = kernel_grid()
    quadrature = gauss_hermite_dual(fn, k11, k22, k12)
    torch.testing.assert_close(dual(k11, k22, k12), quadrature, rtol=0, atol=2e-2)


# ------------------------------------------------------------------------ invariants
@pytest.mark.parametrize(
    "dual",
    [relu_dual, step_dual, sign_dual, erf_dual, functools.partial(ab_relu_dual, a=-0.3, b=1.2)],
)
def test_dual_matrix_is_symmetric_psd(dual) -> None:
    kernel = random_psd(6)
    value = dual_matrix(kernel, dual)
    assert value.shape == (4, 6, 6) and value.dtype == torch.float64
    torch.testing.assert_close(value, value.transpose(-1, -2), rtol=0, atol=0)
    assert torch.linalg.eigvalsh(value).min() > -1e-12


def test_relu_diagonal_is_half_the_variance() -> None:
    kernel = random_psd(5, seed=3)
    diag = torch.diagonal(dual_matrix(kernel), dim1=-2, dim2=-1)
    torch.testing.assert_close(diag, torch.diagonal(kernel, dim1=-2, dim2=-1) / 2)
    torch.testing.assert_close(relu_dual(2.0, 2.0, 2.0), torch.tensor(1.0, dtype=torch.float64))


def test_correlation_map_values() -> None:
    values = relu_correlation_map(torch.tensor([1.0, 0.0, -1.0]))
    torch.testing.assert_close(values, torch.tensor([1.0, 1 / math.pi, 0.0], dtype=torch.float64))
    rho = torch.linspace(-1, 1, 201, dtype=torch.float64)
    torch.testing.assert_close(relu_dual(1.0, 1.0, rho), relu_correlation_map(rho) / 2)
    torch.testing.assert_close(relu_correlation_map(rho), rho + correlation_gap(rho) / math.pi)
    assert (relu_correlation_map(rho) >= rho).all()  # correlations only grow
    assert relu_correlation_map(1.5).item() == 1.0  # clipped


def test_gap_and_drift_invariants() -> None:
    rho = torch.linspace(-1, 1, 401, dtype=torch.float64)
    gap = correlation_gap(rho)
    assert (gap >= 0).all() and (gap.diff() <= 0).all()
    assert correlation_gap(1.0).item() == 0.0 and correlation_gap(-1.0).item() == math.pi
    for c2 in (1.0, 9.0):
        assert shaped_correlation_drift(1.0, c2).item() == 0.0
        assert shaped_correlation_drift(-1.0, c2).item() == pytest.approx(c2 / 2)


def test_shaped_correlation_map() -> None:
    rho = torch.linspace(-1, 1, 101, dtype=torch.float64)
    torch.testing.assert_close(shaped_relu_correlation_map(rho, 0.8, 0.8), rho)
    s_plus, s_minus = 1.0, 0.9
    normalised = ab_relu_dual(1.0, 1.0, rho, a=s_minus, b=s_plus) / ab_relu_dual(
        1.0, 1.0, 1.0, a=s_minus, b=s_plus
    )
    torch.testing.assert_close(shaped_relu_correlation_map(rho, s_plus, s_minus), normalised)
    # the plain ReLU (s_- = 0, kappa = 2) is J
    torch.testing.assert_close(
        shaped_relu_correlation_map(rho, 1.0, 0.0), relu_correlation_map(rho)
    )


def test_zero_variance_gives_zero() -> None:
    assert relu_dual(0.0, 1.0, 0.0).item() == 0.0
    assert ab_relu_dual(1.0, 0.0, 0.0, a=0.5, b=1.0).item() == 0.0


# ------------------------------------------------------------------------ NNGP recursion
def test_depth_example_antipodal_correlations() -> None:
    # 10 points on the unit circle, ReLU, sigma_w^2 = 2; depth = number of hidden layers and
    # the correlation is that of the output GP kernel K^(depth + 1) = J^depth(-1).
    angles = 2 * math.pi * torch.arange(10, dtype=torch.float64) / 10
    x = torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1) * math.sqrt(2)
    kernels = nngp_recursion(x, 50)
    assert kernels.shape == (51, 10, 10)
    torch.testing.assert_close(kernels[:, 0, 0], torch.ones(51, dtype=torch.float64) * 2)
    antipodal = kernels[:, 0, 5] / kernels[:, 0, 0]
    assert antipodal[0].item() == pytest.approx(-1.0)
    assert antipodal[2].item() == pytest.approx(1 / math.pi)
    assert round(antipodal[2].item(), 3) == 0.318
    assert round(antipodal[10].item(), 3) == 0.855
    assert round(antipodal[50].item(), 3) == 0.987


def test_nngp_recursion_with_bias_and_other_dual() -> None:
    x = torch.randn(2, 3, 4, generator=gen(), dtype=torch.float64)
    kernels = nngp_recursion(x, 2, weight_var=1.5, bias_var=0.1, dual=erf_dual)
    assert kernels.shape == (3, 2, 3, 3)
    first = 1.5 * x @ x.transpose(-1, -2) / 4 + 0.1
    torch.testing.assert_close(kernels[0], first)
    torch.testing.assert_close(kernels[1], 1.5 * dual_matrix(first, erf_dual) + 0.1)


# ------------------------------------------------------------------------ 1 - J near 1
def test_one_minus_j_matches_the_direct_formula() -> None:
    eps = torch.logspace(-3, math.log10(2.0), 200, dtype=torch.float64)
    direct = 1 - relu_correlation_map(1 - eps)
    torch.testing.assert_close(one_minus_j(eps), direct, rtol=1e-11, atol=0)
    torch.testing.assert_close(
        one_minus_j(torch.tensor([0.0, 2.0])), torch.tensor([0.0, 1.0]).double()
    )


def test_one_minus_j_is_accurate_near_one() -> None:
    mpmath = pytest.importorskip("mpmath", reason="mpmath gives the high-precision reference")
    mpmath.mp.dps = 50
    a = 2 * math.sqrt(2) / (3 * math.pi)
    for eps in (1e-14, 1e-10, 1e-7, 1e-4, 0.2, 0.24, 0.3):  # crosses theta = 0.5 (eps ~ 0.12)
        e = mpmath.mpf(eps)
        rho = 1 - e
        exact = e - (mpmath.sqrt(1 - rho**2) - rho * mpmath.acos(rho)) / mpmath.pi
        value = one_minus_j(eps).item()
        assert value == pytest.approx(float(exact), rel=1e-14), eps
        if eps < 1e-6:
            assert value == pytest.approx(eps - a * eps**1.5, rel=10 * eps)


# ------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: gauss_hermite_dual(torch.tanh, 1.0, 1.0, 0.0, num_nodes=0), r"^num_nodes: "),
        (lambda: dual_matrix(torch.ones(2, 3)), r"^kernel: expected shape \(\.\.\., k, k\)"),
        (lambda: dual_matrix(torch.ones(3)), r"^kernel: "),
        (lambda: nngp_recursion(torch.ones(3), 2), r"^x: expected shape \(\.\.\., k, d\)"),
        (lambda: nngp_recursion(torch.ones(2, 3), -1), r"^depth: expected an int >= 0"),
        (lambda: nngp_recursion(torch.ones(2, 3), 1, weight_var=-1.0), r"^weight_var: "),
        (lambda: nngp_recursion(torch.ones(2, 3), 1, bias_var=math.nan), r"^bias_var: "),
    ],
)
def test_bad_arguments_raise(call, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        call()


def test_float32_inputs_give_float64() -> None:
    out = relu_dual(torch.ones(3), torch.ones(3), torch.full((3,), 0.5))
    assert out.dtype == torch.float64
    assert one_minus_j(torch.tensor([1e-3])).dtype == torch.float64
