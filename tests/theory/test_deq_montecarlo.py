"""Tests of `perceptrons.theory.deq_montecarlo` and `perceptrons.theory.kernels.deq_depth_kernels`.

Finite DEQs against their kernels: shapes, the fixed-point property, agreement with the
registered ``"deq"`` model, determinism, the documented draw order, agreement with the analytic
kernels at large width (tolerance: 5 standard errors over the networks plus the O(1/n) bias of
a finite-width Gram), the Picard rate, and argument errors. All runs are seeded.
"""

from __future__ import annotations

import math

import pytest
import torch

from perceptrons.registry import create_model
from perceptrons.theory.deq_montecarlo import (
    DEQEquilibria,
    sample_deq_equilibria,
    sample_deq_iterate_grams,
    solve_deq_equilibria,
)
from perceptrons.theory.dual import dual_matrix, relu_dual
from perceptrons.theory.inputs import correlated_inputs, sphere_inputs
from perceptrons.theory.kernels import Erf, Tanh, deq_kernel
from perceptrons.theory.kernels.deq import deq_depth_kernels

SIGMA_W, SIGMA_U = 0.6, 1.0
STDS = {"weight_std": SIGMA_W, "input_std": SIGMA_U}


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def inputs(p: int = 3, d: int = 10, seed: int = 0) -> torch.Tensor:
    return sphere_inputs(p, d, generator=gen(seed))


def assert_close_to_kernel(grams: torch.Tensor, target: torch.Tensor, width: int) -> None:
    """Mean over networks within 5 standard errors plus the O(1/n) bias of the target."""
    mean = grams.mean(0)
    se = grams.std(0) / math.sqrt(grams.shape[0])
    tolerance = 5 * se + 3 * target.abs().max() / width
    assert bool(((mean - target).abs() <= tolerance).all()), (mean - target, tolerance)


# ----------------------------------------------------------------------------- equilibria
def test_sample_shapes_dtypes_and_residual_below_tol() -> None:
    x = inputs(3, 10)
    sol = sample_deq_equilibria(x, 64, 5, generator=gen(1), tol=1e-10, **STDS)
    assert isinstance(sol, DEQEquilibria)
    assert sol.hidden.shape == (5, 3, 64) and sol.hidden.dtype == torch.float64
    assert sol.residuals.shape == (sol.num_iterations, 5)
    assert sol.converged.dtype == torch.bool and bool(sol.converged.all())
    assert (sol.num_networks, sol.width) == (5, 64)
    assert bool((sol.residuals[-1] <= 1e-10).all())
    assert sol.grams().shape == (5, 3, 3)
    assert torch.equal(sol.grams(), sol.hidden @ sol.hidden.transpose(1, 2) / 64)
    # about log(1e-10) / log(sigma_w / sqrt 2) ~ 27 iterations at sigma_w = 0.6, any width
    assert 20 <= sol.num_iterations <= 40
    single = sample_deq_equilibria(
        x, 64, 2, generator=gen(1), dtype=torch.float32, tol=1e-5, **STDS
    )
    assert single.hidden.dtype == torch.float32 and bool(single.converged.all())


def test_solution_is_a_fixed_point_of_the_given_weights() -> None:
    g = gen(2)
    m, n, d = 3, 50, 4
    w = torch.randn(m, n, n, generator=g, dtype=torch.float64) * SIGMA_W / math.sqrt(n)
    u = torch.randn(m, n, d, generator=g, dtype=torch.float64) / math.sqrt(d)
    b = torch.randn(m, n, generator=g, dtype=torch.float64) * 0.1
    x = torch.randn(5, d, generator=g, dtype=torch.float64)
    sol = solve_deq_equilibria(w, u, x, bias=b, tol=1e-12, max_iter=500)
    h = sol.hidden.transpose(1, 2)  # (m, n, p)
    mapped = torch.relu(w @ h + u @ x.T + b[..., None])
    residual = torch.linalg.vector_norm(mapped - h, dim=(1, 2)) / torch.linalg.vector_norm(
        mapped, dim=(1, 2)
    )
    assert bool((residual < 1e-11).all())
    assert bool(sol.converged.all())


def test_solver_reproduces_the_registered_deq_model() -> None:
    for bias_std in (0.0, 0.3):
        model = create_model(
            "deq",
            seed=3,
            in_features=6,
            width=40,
            bias_std=bias_std,
            tol=1e-12,
            max_iter=500,
            **STDS,
        ).double()
        x = torch.randn(4, 6, generator=gen(4), dtype=torch.float64)
        layer = model.deq
        with torch.no_grad():
            reference = model.equilibrium(x)
            sol = solve_deq_equilibria(
                layer.recurrent.weight[None],
                layer.input.weight[None],
                x,
                bias=layer.input.bias[None],
                tol=1e-12,
                max_iter=500,
            )
        assert float((sol.hidden[0] - reference).abs().max()) < 1e-10


def test_sampling_draws_w_then_u_per_chunk_in_float32() -> None:
    x, n, d, m = inputs(2, 5), 16, 5, 3
    sol = sample_deq_equilibria(x, n, m, generator=gen(5), chunk_size=m, **STDS)
    g = gen(5)
    w = torch.randn(m, n, n, generator=g, dtype=torch.float32).double() * (SIGMA_W / math.sqrt(n))
    u = torch.randn(m, n, d, generator=g, dtype=torch.float32).double() * (SIGMA_U / math.sqrt(d))
    assert torch.equal(sol.hidden, solve_deq_equilibria(w, u, x).hidden)


def test_sampling_is_deterministic_and_chunks_pad_residuals_with_nan() -> None:
    x = inputs(2, 10)
    a = sample_deq_equilibria(x, 32, 5, generator=gen(6), chunk_size=2, **STDS)
    b = sample_deq_equilibria(x, 32, 5, generator=gen(6), chunk_size=2, **STDS)
    c = sample_deq_equilibria(x, 32, 5, generator=gen(7), chunk_size=2, **STDS)
    assert torch.equal(a.hidden, b.hidden) and not torch.equal(a.hidden, c.hidden)
    assert a.hidden.shape == (5, 2, 32)
    finite = torch.isfinite(a.residuals)  # (T, M): a prefix of every column is finite
    lengths = finite.sum(0)
    for j in range(5):
        assert bool(finite[: lengths[j], j].all()) and not bool(finite[lengths[j] :, j].any())
    assert bool(a.converged.all())


def test_equilibrium_gram_agrees_with_the_deq_kernel_at_large_width() -> None:
    x = correlated_inputs(0.5, 10)
    width = 1000
    sol = sample_deq_equilibria(x, width, 12, generator=gen(8), **STDS)
    target, _ = deq_kernel(x, output="hidden", **STDS)
    assert_close_to_kernel(sol.grams(), target, width)
    # the same law is not that of another sigma_w
    other, _ = deq_kernel(x, output="hidden", weight_std=0.9, input_std=SIGMA_U)
    assert float((sol.grams().mean(0) - other).abs().max()) > 0.1


def test_tanh_equilibria_agree_with_the_tanh_deq_kernel() -> None:
    x = correlated_inputs(0.3, 10)
    sol = sample_deq_equilibria(x, 800, 12, generator=gen(9), activation=torch.tanh, **STDS)
    target, _ = deq_kernel(x, output="hidden", activation=Tanh(num_nodes=60), **STDS)
    assert_close_to_kernel(sol.grams(), target, 800)


def test_picard_rate_is_sigma_w_over_sqrt_two() -> None:
    sol = sample_deq_equilibria(inputs(2, 10), 800, 4, generator=gen(10), **STDS)
    median = sol.residuals.median(dim=1).values
    keep = (median < 1e-2) & (median > 1e-12)
    steps = torch.log(median[keep])
    rate = math.exp(float((steps[-1] - steps[0]) / (keep.sum() - 1)))
    assert rate == pytest.approx(SIGMA_W / math.sqrt(2), rel=0.05)


# ----------------------------------------------------------------------------- iterates
def test_iterate_grams_shapes_and_tied_limit_is_the_equilibrium() -> None:
    x = inputs(3, 10)
    tied = sample_deq_iterate_grams(x, 48, 4, 60, generator=gen(11), **STDS)
    untied = sample_deq_iterate_grams(x, 48, 4, 5, generator=gen(11), tied=False, **STDS)
    assert tied.shape == (60, 4, 3, 3) and untied.shape == (5, 4, 3, 3)
    assert tied.dtype == torch.float64
    assert torch.allclose(tied, tied.transpose(-1, -2))
    # the tied iterates use the equilibrium sampler's draws (W then U): their limit is h*
    sol = sample_deq_equilibria(x, 48, 4, generator=gen(11), tol=1e-13, max_iter=100, **STDS)
    assert float((tied[-1] - sol.grams()).abs().max()) < 1e-10
    again = sample_deq_iterate_grams(x, 48, 4, 5, generator=gen(11), tied=False, **STDS)
    assert torch.equal(untied, again)


def test_tied_and_untied_iterates_agree_with_the_finite_depth_kernels() -> None:
    x, width, num_iter = inputs(3, 10), 1000, 4
    finite = deq_depth_kernels(x, num_iter, output="hidden", **STDS)
    for seed, tied in ((12, True), (13, False)):
        grams = sample_deq_iterate_grams(
            x, width, 12, num_iter, generator=gen(seed), tied=tied, **STDS
        )
        for ell in range(num_iter):
            assert_close_to_kernel(grams[ell], finite[ell], width)


# ----------------------------------------------------------------------------- kernels
def test_depth_kernels_recursion_and_limit() -> None:
    x = inputs(4, 10)
    pre = deq_depth_kernels(x, 40, **STDS)
    hidden = deq_depth_kernels(x, 40, output="hidden", **STDS)
    assert pre.shape == hidden.shape == (40, 4, 4) and pre.dtype == torch.float64
    sigma = SIGMA_U**2 * (x @ x.T) / 10
    assert torch.allclose(pre[0], sigma)
    assert torch.allclose(hidden[0], dual_matrix(sigma, relu_dual))
    for ell in range(39):  # K^{l+1} = sigma_w^2 V(K^l) + Sigma^1
        assert torch.allclose(pre[ell + 1], SIGMA_W**2 * hidden[ell] + sigma, atol=0, rtol=1e-14)
    k_star, _ = deq_kernel(x, **STDS)
    v_star, _ = deq_kernel(x, output="hidden", **STDS)
    assert torch.allclose(pre[-1], k_star, atol=1e-12)
    assert torch.allclose(hidden[-1], v_star, atol=1e-12)
    # the relative squared error decays by (sigma_w^2 / 2)^2 per step (ReLU)
    err = ((hidden - v_star) ** 2).sum((1, 2)) / (v_star**2).sum()
    assert float(err[3] / err[2]) == pytest.approx((SIGMA_W**2 / 2) ** 2, rel=0.05)


def test_depth_kernels_with_erf_and_a_bias_converge_to_deq_kernel() -> None:
    x = inputs(3, 5)
    kwargs = {**STDS, "bias_std": 0.2, "activation": Erf()}
    depth = deq_depth_kernels(x, 60, **kwargs)
    k_star, _ = deq_kernel(x, **kwargs)
    assert torch.allclose(depth[-1], k_star, atol=1e-10)
    assert torch.allclose(depth[0], SIGMA_U**2 * (x @ x.T) / 5 + 0.04)


# ----------------------------------------------------------------------------- errors
def test_arguments_are_validated() -> None:
    x = inputs(2, 4)
    with pytest.raises(ValueError, match=r"x: expected shape \(p, d\)"):
        sample_deq_equilibria(torch.ones(4), 8, 2, generator=gen(0), **STDS)
    with pytest.raises(ValueError, match="width"):
        sample_deq_equilibria(x, 0, 2, generator=gen(0), **STDS)
    with pytest.raises(ValueError, match="num_networks"):
        sample_deq_equilibria(x, 8, 0, generator=gen(0), **STDS)
    with pytest.raises(ValueError, match="weight_std"):
        sample_deq_equilibria(x, 8, 2, generator=gen(0), weight_std=-1.0, input_std=1.0)
    with pytest.raises(ValueError, match="tol"):
        sample_deq_equilibria(x, 8, 2, generator=gen(0), tol=1.0, **STDS)
    with pytest.raises(ValueError, match="max_iter"):
        sample_deq_equilibria(x, 8, 2, generator=gen(0), max_iter=0, **STDS)
    with pytest.raises(ValueError, match="dtype"):
        sample_deq_equilibria(x, 8, 2, generator=gen(0), dtype=torch.float16, **STDS)
    with pytest.raises(ValueError, match="chunk_size"):
        sample_deq_equilibria(x, 8, 2, generator=gen(0), chunk_size=0, **STDS)
    with pytest.raises(TypeError, match="generator"):
        sample_deq_equilibria(x, 8, 2, generator=0, **STDS)
    with pytest.raises(TypeError, match="activation"):
        sample_deq_equilibria(x, 8, 2, generator=gen(0), activation="relu", **STDS)
    with pytest.raises(ValueError, match="x: expected finite"):
        sample_deq_equilibria(torch.full((2, 4), math.nan), 8, 2, generator=gen(0), **STDS)
    with pytest.raises(ValueError, match="num_iter"):
        sample_deq_iterate_grams(x, 8, 2, 0, generator=gen(0), **STDS)
    w, u = torch.zeros(2, 8, 8), torch.zeros(2, 8, 4)
    with pytest.raises(ValueError, match=r"weight: expected shape \(M, n, n\)"):
        solve_deq_equilibria(torch.zeros(2, 8, 7), u, x)
    with pytest.raises(ValueError, match=r"input_weight: expected shape \(2, 8, d\)"):
        solve_deq_equilibria(w, torch.zeros(3, 8, 4), x)
    with pytest.raises(ValueError, match=r"x: expected shape \(p, 4\)"):
        solve_deq_equilibria(w, u, torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"bias: expected shape \(2, 8\)"):
        solve_deq_equilibria(w, u, x, bias=torch.zeros(8))
    with pytest.raises(TypeError, match="weight"):
        solve_deq_equilibria(w.long(), u, x)
    with pytest.raises(ValueError, match="num_iter"):
        deq_depth_kernels(x, 0, **STDS)
    with pytest.raises(ValueError, match="output"):
        deq_depth_kernels(x, 2, output="both", **STDS)
    with pytest.raises(ValueError, match="weight_std"):
        deq_depth_kernels(x, 2, weight_std=0.0, input_std=1.0)
    with pytest.raises(TypeError, match="activation"):
        deq_depth_kernels(x, 2, activation=torch.relu, **STDS)
