"""Lie Neurons models ("lie_neurons", "lie_neurons_equivariant", "lie_mlp").

Shapes, exact invariance/equivariance in float64 (through the public `equivariance_error`),
the MLP baseline's lack of it, the model contract on non-default configurations, and config
validation.
"""

from __future__ import annotations

import re

import pytest
import torch

from perceptrons.config import ConfigError
from perceptrons.lie import get_algebra
from perceptrons.models import (
    LieMLP,
    LieNeurons,
    LieNeuronsConfig,
    LieNeuronsEquivariant,
    LieNeuronsEquivariantConfig,
)
from perceptrons.registry import create_model
from perceptrons.testing import check_model, equivariance_error

K = {"so3": 3, "sl3": 8, "sp4": 10}


def _x(algebra: str, batch: int, channels: int = 2, points: int | None = None, seed: int = 0):
    shape = (batch, channels, K[algebra]) + (() if points is None else (points,))
    return (
        torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) - 0.5
    )


def _error(model, algebra: str, x: torch.Tensor) -> float:
    gen = torch.Generator().manual_seed(1)
    return equivariance_error(model, algebra, x, num_trials=20, generator=gen).max


def test_registered_names_build_their_classes() -> None:
    assert isinstance(create_model("lie_neurons", seed=0), LieNeurons)
    assert isinstance(create_model("lie_neurons_equivariant", seed=0), LieNeuronsEquivariant)
    assert isinstance(create_model("lie_mlp", seed=0), LieMLP)
    # the paper's equivariant head: LN-LB, LN-LB, LN-LR (leaky 0.2), channel linear to one
    config = LieNeuronsEquivariantConfig()
    assert config.blocks == ("lb", "lb", "lr") and config.negative_slope == 0.2
    assert config.out_channels == 1


@pytest.mark.parametrize("algebra", ["so3", "sl3", "sp4"])
@pytest.mark.parametrize("points", [None, 5])
def test_output_shapes(algebra: str, points: int | None) -> None:
    common = {"algebra": algebra, "num_points": points, "in_channels": 3}
    x = _x(algebra, 4, channels=3, points=points).float()
    inv = create_model("lie_neurons", seed=0, out_features=7, hidden_channels=(6, 5),
                       blocks=("lr", "lb"), **common)  # fmt: skip
    assert inv.input_shape == ("batch", 3, K[algebra]) + (() if points is None else (points,))
    assert inv(x).shape == (4, 7)
    assert inv.features(x).shape == (4, 5)
    eq = create_model("lie_neurons_equivariant", seed=0, out_channels=2, **common)
    assert eq(x).shape == (4, 2, K[algebra])
    mlp = create_model("lie_mlp", seed=0, hidden_features=(8,), out_features=3, **common)
    assert mlp(x).shape == (4, 3)
    mlp_eq = create_model("lie_mlp", seed=0, hidden_features=(8,), out_features=2,
                          equivariant_output=True, **common)  # fmt: skip
    assert mlp_eq(x).shape == (4, 2, K[algebra])


def test_learned_killing_invariant_has_c_squared_features() -> None:
    model = create_model("lie_neurons", seed=0, hidden_channels=(4,), invariant="learned_killing")
    assert model.features(_x("sl3", 3).float()).shape == (3, 16)


INVARIANT_CONFIGS = [
    ("sl3", {}),
    ("sp4", {}),
    ("so3", {"blocks": ("lr", "lb"), "hidden_channels": (6, 6), "negative_slope": 0.2}),
    ("sl3", {"num_points": 7, "in_channels": 3, "pooling": "max"}),
    ("sl3", {"num_points": 7, "in_channels": 3, "pooling": "mean", "blocks": ("lb",)}),
    ("sl3", {"invariant": "learned_killing", "hidden_channels": (5,)}),
    ("sp4", {"invariant": "det", "hidden_channels": (5,)}),
]


@pytest.mark.parametrize(("algebra", "fields"), INVARIANT_CONFIGS)
def test_lie_neurons_is_invariant_in_float64(algebra: str, fields: dict) -> None:
    model = create_model("lie_neurons", seed=0, algebra=algebra, out_features=3, **fields)
    x = _x(algebra, 6, fields.get("in_channels", 2), fields.get("num_points"))
    result = equivariance_error(model, algebra, x, 20, torch.Generator().manual_seed(1))
    assert result.invariant
    assert result.max < 1e-9, result


@pytest.mark.parametrize("algebra", ["so3", "sl3", "sp4"])
@pytest.mark.parametrize("points", [None, 4])
def test_lie_neurons_equivariant_is_equivariant_in_float64(algebra: str, points) -> None:
    model = create_model("lie_neurons_equivariant", seed=0, algebra=algebra, num_points=points,
                         hidden_channels=(6, 6, 6))  # fmt: skip
    x = _x(algebra, 6, points=points)
    result = equivariance_error(model, algebra, x, 20, torch.Generator().manual_seed(1))
    assert not result.invariant
    assert result.max < 1e-9, result


def test_float32_errors_are_at_float32_precision() -> None:
    model = create_model("lie_neurons_equivariant", seed=0)
    gen = torch.Generator().manual_seed(1)
    result = equivariance_error(model, "sl3", _x("sl3", 16), 10, gen, dtype=torch.float32)
    assert 1e-9 < result.max < 1e-4


@pytest.mark.parametrize("equivariant_output", [False, True])
def test_mlp_baseline_is_not_invariant(equivariant_output: bool) -> None:
    model = create_model("lie_mlp", seed=0, hidden_features=(32, 32),
                         equivariant_output=equivariant_output)  # fmt: skip
    result = equivariance_error(model, "sl3", _x("sl3", 16), 10, torch.Generator().manual_seed(1))
    assert result.invariant is (not equivariant_output)
    assert result.median > 0.1, result


@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("lie_neurons", {"num_points": 5, "in_channels": 3, "out_features": 3}),
        ("lie_neurons", {"algebra": "sp4", "blocks": ("lb", "lr"), "hidden_channels": (4, 4)}),
        ("lie_neurons_equivariant", {"num_points": 5, "pooling": "mean"}),
        ("lie_mlp", {"num_points": 5, "equivariant_output": True, "out_features": 2}),
    ],
)
def test_contract_on_other_configurations(name: str, fields: dict) -> None:
    config = create_model(name, seed=0, **fields).config
    check_model(create_model(config, seed=0))


def test_max_pool_direction_is_a_saved_buffer_not_a_parameter() -> None:
    model = create_model("lie_neurons", seed=0, num_points=4)
    names = {n for n, _ in model.named_parameters()}
    assert "pool.weight" not in names and "pool.weight" in model.state_dict()


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (torch.zeros(3, 2, 9), "(batch, 2, 8)"),  # wrong K
        (torch.zeros(3, 2, 8, 4), "(batch, 2, 8)"),  # points given to a point-free model
        (torch.zeros(2, 8), "(batch, 2, 8)"),  # no channel axis
        (torch.zeros(3, 3, 8), "(batch, 2, 8)"),  # wrong channels
        (torch.zeros(3, 2, 8, dtype=torch.int64), "(batch, 2, 8)"),
    ],
)
@pytest.mark.parametrize("name", ["lie_neurons", "lie_neurons_equivariant", "lie_mlp"])
def test_bad_inputs_name_the_expected_shape(name: str, bad, message: str) -> None:
    model = create_model(name, seed=0)
    with pytest.raises(
        (ValueError, TypeError), match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        model(bad)


def test_point_model_rejects_point_free_input_and_wrong_num_points() -> None:
    model = create_model("lie_neurons", seed=0, num_points=12, in_channels=3)
    for bad in (torch.zeros(2, 3, 8), torch.zeros(2, 3, 8, 11)):
        with pytest.raises(ValueError, match=r"\(batch, 3, 8, 12\)"):
            model(bad)


@pytest.mark.parametrize(
    ("cls", "fields", "field"),
    [
        (LieNeuronsConfig, {"blocks": ("lr", "lb")}, "blocks"),
        (LieNeuronsConfig, {"blocks": ("lr", "xx")}, "blocks"),
        (LieNeuronsConfig, {"hidden_channels": (0,)}, "hidden_channels[0]"),
        (LieNeuronsConfig, {"hidden_channels": (), "blocks": ()}, "hidden_channels"),
        (LieNeuronsConfig, {"negative_slope": 1.5}, "negative_slope"),
        (LieNeuronsConfig, {"algebra": "se3"}, "algebra"),
        (LieNeuronsConfig, {"algebra": "so3", "invariant": "det"}, "invariant"),
        (LieNeuronsConfig, {"invariant": "trace"}, "invariant"),
        (LieNeuronsConfig, {"num_points": 0}, "num_points"),
        (LieNeuronsConfig, {"in_channels": 0}, "in_channels"),
        (LieNeuronsConfig, {"out_features": 0}, "out_features"),
        (LieNeuronsConfig, {"pooling": "sum"}, "pooling"),
        (LieNeuronsEquivariantConfig, {"out_channels": 0}, "out_channels"),
    ],
)
def test_config_validation_names_the_field(cls, fields: dict, field: str) -> None:
    with pytest.raises(ConfigError, match="^" + re.escape(field)):
        cls(**fields)


def test_trained_model_stays_invariant() -> None:
    """A few optimiser steps do not break invariance (no bias or other non-equivariant part)."""
    from perceptrons.data.lie import invariant_regression
    from perceptrons.data.loader import TensorLoader
    from perceptrons.train import FitConfig, OptimizerConfig, fit
    from perceptrons.train.steps import regression_step

    algebra = get_algebra("sl3")
    x, y = invariant_regression(algebra, 64, generator=0, dtype=torch.float32)
    model = create_model("lie_neurons", seed=0, hidden_channels=(8,))
    config = FitConfig(
        max_steps=20, optimizer=OptimizerConfig(name="adam", lr=1e-2), progress=False
    )
    fit(model, regression_step, TensorLoader((x, y[:, None]), 16), config)
    assert _error(model, "sl3", x[:16].double()) < 1e-9
