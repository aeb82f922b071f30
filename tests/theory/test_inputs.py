"""Tests of `perceptrons.theory.inputs`: probe inputs with known norms and Gram matrices."""

from __future__ import annotations

import math

import pytest
import torch

from perceptrons.theory.inputs import correlated_inputs, orthonormal_inputs, sphere_inputs


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("rho", [-1.0, -0.3, 0.0, 0.5, 0.9, 1.0])
def test_correlated_inputs_have_the_prescribed_gram(rho: float) -> None:
    x = correlated_inputs(rho, 10)
    assert x.shape == (2, 10) and x.dtype == torch.float64
    gram = x @ x.T / 10
    expected = torch.tensor([[1.0, rho], [rho, 1.0]], dtype=torch.float64)
    assert torch.allclose(gram, expected, atol=1e-15)
    assert bool((x[:, 2:] == 0).all())
    assert correlated_inputs(rho, 2, dtype=torch.float32).dtype == torch.float32


def test_sphere_inputs_have_unit_mean_square_and_are_seeded() -> None:
    x = sphere_inputs(7, 12, generator=gen(0))
    assert x.shape == (7, 12) and x.dtype == torch.float64
    assert torch.allclose((x * x).sum(1) / 12, torch.ones(7, dtype=torch.float64), atol=1e-14)
    assert torch.equal(x, sphere_inputs(7, 12, generator=gen(0)))
    assert not torch.equal(x, sphere_inputs(7, 12, generator=gen(1)))
    # the direction is the Gaussian draw's
    g = torch.randn(7, 12, generator=gen(0), dtype=torch.float64)
    assert torch.allclose(x, g / g.norm(dim=1, keepdim=True) * math.sqrt(12))


def test_orthonormal_inputs_have_identity_gram_and_gaussian_looking_coordinates() -> None:
    x = orthonormal_inputs(3, 4096, generator=gen(2))
    assert x.shape == (3, 4096) and x.dtype == torch.float64
    assert torch.allclose(x @ x.T / 4096, torch.eye(3, dtype=torch.float64), atol=1e-12)
    # coordinates: mean ~ 0, variance 1, E[relu(x)^2] ~ 1/2 (what a sparse input would miss)
    assert abs(float(x.mean())) < 0.05
    assert float(torch.relu(x).pow(2).mean()) == pytest.approx(0.5, abs=0.03)
    assert torch.equal(x, orthonormal_inputs(3, 4096, generator=gen(2)))
    single = orthonormal_inputs(2, 64, generator=gen(3), dtype=torch.float32)
    assert single.dtype == torch.float32
    assert torch.allclose(single @ single.T / 64, torch.eye(2), atol=1e-5)


def test_input_arguments_are_validated() -> None:
    with pytest.raises(ValueError, match="rho"):
        correlated_inputs(1.5, 4)
    with pytest.raises(ValueError, match="rho"):
        correlated_inputs(math.nan, 4)
    with pytest.raises(ValueError, match="dim"):
        correlated_inputs(0.5, 1)
    with pytest.raises(ValueError, match="dtype"):
        correlated_inputs(0.5, 4, dtype=torch.int64)
    with pytest.raises(ValueError, match="num_inputs"):
        sphere_inputs(0, 4, generator=gen(0))
    with pytest.raises(TypeError, match="generator"):
        sphere_inputs(2, 4, generator=0)
    with pytest.raises(ValueError, match="num_inputs: at most dim = 3"):
        orthonormal_inputs(4, 3, generator=gen(0))
    with pytest.raises(ValueError, match="dim"):
        orthonormal_inputs(1, 0, generator=gen(0))
