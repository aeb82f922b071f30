"""Tests of `perceptrons.testing.equivariance_error`: exact models pass, an MLP is caught."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from perceptrons.layers import LieInvariant, LieLinear, LieLR
from perceptrons.lie import sl3, so3, sp4
from perceptrons.testing import EquivarianceError, equivariance_error


def sl3_features(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def mlp(in_features: int, out_features: int, seed: int = 0) -> nn.Module:
    """A plain ReLU MLP on the flattened features, initialised from a seeded generator."""
    model = nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_features, 64),
        nn.ReLU(),
        nn.Linear(64, 64),
        nn.ReLU(),
        nn.Linear(64, out_features),
    )
    generator = torch.Generator().manual_seed(seed)
    for layer in model:
        if isinstance(layer, nn.Linear):
            nn.init.normal_(layer.weight, std=layer.in_features**-0.5, generator=generator)
            nn.init.normal_(layer.bias, std=0.1, generator=generator)
    return model


@pytest.mark.parametrize("algebra", [so3(), sl3(), sp4()], ids=lambda a: a.name)
def test_plain_mlp_is_detected(algebra) -> None:
    k = algebra.dim
    x = sl3_features(16, 2, k)
    invariant = equivariance_error(mlp(2 * k, 1), algebra, x, generator=torch.Generator())
    assert invariant.invariant
    assert 0.05 < invariant.max < 10, invariant
    equivariant_mlp = nn.Sequential(mlp(2 * k, k), nn.Unflatten(1, (1, k)))
    err = equivariance_error(equivariant_mlp, algebra, x, generator=torch.Generator())
    assert not err.invariant
    assert 0.05 < err.median and err.max < 10, err


def test_result_fields_and_reproducibility() -> None:
    model = LieLR(2, 3, algebra="sl3", generator=torch.Generator().manual_seed(0))
    x = sl3_features(4, 2, 8, 3)
    first = equivariance_error(model, sl3(), x, 7, torch.Generator().manual_seed(1))
    second = equivariance_error(model, "sl3", x, 7, torch.Generator().manual_seed(1))
    assert isinstance(first, EquivarianceError)
    assert first == second and len(first.errors) == 7
    assert float(first) == first.max == max(first.errors)
    assert min(first.errors) <= first.median <= first.max
    assert model.linear.weight.dtype == torch.float32  # the module itself is not converted


def test_explicit_invariant_axes_and_shared_group_element() -> None:
    algebra = sl3()
    x = sl3_features(5, 8, 3)  # K at axis 1, no channel axis
    model = nn.Sequential(nn.Unflatten(1, (1, 8)), LieLinear(1, 2, algebra=algebra))
    err = equivariance_error(
        model, algebra, x, 5, torch.Generator(), feature_axis=1, output_axis=2, per_sample=False
    )
    assert not err.invariant and err.max < 1e-12
    # An invariant output with K entries would be mistaken for an equivariant one: say so.
    invariant_model = nn.Sequential(
        LieInvariant(8, algebra=algebra), nn.Unflatten(1, (1, 8))
    )  # (b, 8, K) -> (b, 1, 8)
    y = sl3_features(5, 8, 8)
    assert equivariance_error(invariant_model, algebra, y, 3, torch.Generator()).max > 1e-3
    err = equivariance_error(invariant_model, algebra, y, 3, torch.Generator(), invariant=True)
    assert err.invariant and err.max < 1e-12


def test_non_module_callables_and_float32() -> None:
    algebra = sl3()
    x = sl3_features(3, 1, 8)
    err = equivariance_error(lambda t: algebra.killing(t, t), algebra, x, 5, torch.Generator())
    assert err.invariant and err.max < 1e-12
    err32 = equivariance_error(
        lambda t: 2 * t, algebra, x, 5, torch.Generator(), dtype=torch.float32
    )
    assert 0 < err32.max < 1e-6


def test_bad_arguments() -> None:
    algebra = sl3()
    model = LieLinear(1, 1, algebra=algebra)
    with pytest.raises(ValueError, match=r"\(\*, \*, 8\)"):
        equivariance_error(model, algebra, torch.zeros(2, 1, 3))
    with pytest.raises(ValueError, match="feature_axis"):
        equivariance_error(model, algebra, torch.zeros(2, 1, 8), feature_axis=3)
    with pytest.raises(ValueError, match="num_trials"):
        equivariance_error(model, algebra, torch.zeros(2, 1, 8), num_trials=0)
    with pytest.raises(TypeError, match="dtype"):
        equivariance_error(model, algebra, torch.zeros(2, 1, 8), dtype=torch.int64)
