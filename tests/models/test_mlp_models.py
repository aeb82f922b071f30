"""Tests of the "mlp" and "residual_mlp" models: configs, construction, input validation."""

from __future__ import annotations

import typing

import pytest
import torch
from torch import nn

from perceptrons.config import ConfigError
from perceptrons.layers import ACTIVATIONS
from perceptrons.models import MLPConfig, MLPModel, ResidualMLPConfig, ResidualMLPModel
from perceptrons.registry import MODELS, create_model


def test_registered_under_their_names() -> None:
    assert MODELS.get("mlp").obj is MLPModel and MODELS.get("mlp").config is MLPConfig
    assert MODELS.get("residual_mlp").obj is ResidualMLPModel
    assert MODELS.get("residual_mlp").config is ResidualMLPConfig


@pytest.mark.parametrize("config_cls", [MLPConfig, ResidualMLPConfig])
def test_activation_literal_lists_every_activation(config_cls: type) -> None:
    hint = typing.get_type_hints(config_cls)["activation"]
    assert typing.get_args(hint) == tuple(ACTIVATIONS)


def test_mlp_defaults_and_forward() -> None:
    model = create_model("mlp", seed=0)
    assert model.config == MLPConfig()
    assert model.input_shape == ("batch", 64)
    x = model.example_input(5, generator=torch.Generator().manual_seed(0))
    assert x.shape == (5, 64) and x.dtype == torch.float32
    assert model(x).shape == (5, 10)
    assert [h.shape for h in model.forward_hidden(x)] == [(5, 128), (5, 128), (5, 10)]


def test_residual_defaults_and_forward() -> None:
    model = create_model("residual_mlp", seed=0)
    assert model.config == ResidualMLPConfig()
    x = model.example_input(2)
    assert model(x).shape == (2, 10)
    assert len(model.forward_hidden(x)) == 5
    assert model.net.branch_scale == pytest.approx(0.5)  # depth 4 -> 4 ** -0.5
    assert create_model("residual_mlp", out_features=None)(x).shape == (2, 128)


@pytest.mark.parametrize(
    ("norm", "cls"), [("layernorm", nn.LayerNorm), ("batchnorm", nn.BatchNorm1d)]
)
def test_norm_names(norm: str, cls: type) -> None:
    mlp = create_model("mlp", norm=norm, hidden_features=(8,))
    assert isinstance(mlp.net.layers[0].norm, cls)
    residual = create_model("residual_mlp", norm=norm, width=8, depth=1)
    assert isinstance(residual.net.blocks[0].norm, cls)
    assert isinstance(create_model("mlp").net.layers[0].norm, nn.Identity)


def test_config_fields_reach_the_layers() -> None:
    model = create_model(
        "mlp", hidden_features=(), activation="tanh", weight_std=2.0, bias_std=0.5,
        parameterization="ntk", bias=False,
    )  # fmt: skip
    readout = model.net.readout
    assert readout.parameterization == "ntk" and readout.weight_std == 2.0 and readout.bias is None
    residual = create_model(
        "residual_mlp", in_features=16, width=16, input_projection=False, branch_scale=0.1,
        activation="gelu", dropout=0.25,
    )  # fmt: skip
    assert residual.net.input_layer is None and residual.net.branch_scale == 0.1
    assert isinstance(residual.net.blocks[0].act, nn.GELU)
    assert residual.net.blocks[0].drop.p == 0.25


@pytest.mark.parametrize(
    ("cls", "kwargs", "needle"),
    [
        (MLPConfig, {"in_features": 0}, r"^in_features: must be >= 1"),
        (MLPConfig, {"hidden_features": (4, 0)}, r"^hidden_features\[1\]: must be >= 1"),
        (MLPConfig, {"out_features": 0}, r"^out_features: must be >= 1"),
        (MLPConfig, {"dropout": 1.0}, r"^dropout: must be in \[0, 1\)"),
        (MLPConfig, {"weight_std": -1.0}, r"^weight_std: must be finite and >= 0"),
        (MLPConfig, {"weight_std": float("inf")}, r"^weight_std: must be finite and >= 0"),
        (MLPConfig, {"bias_std": -0.5, "weight_std": 1.0}, r"^bias_std: must be finite"),
        (MLPConfig, {"bias_std": 0.5}, r"^bias_std: must be 0 when weight_std is None"),
        (MLPConfig, {"activation": "rleu"}, r"^activation: expected one of 'relu'"),
        (MLPConfig, {"norm": "groupnorm"}, r"^norm: expected one of 'none'"),
        (MLPConfig, {"parameterization": "mup"}, r"^parameterization: expected one of"),
        (ResidualMLPConfig, {"width": 0}, r"^width: must be >= 1"),
        (ResidualMLPConfig, {"depth": -1}, r"^depth: must be >= 0"),
        (ResidualMLPConfig, {"out_features": 0}, r"^out_features: must be >= 1"),
        (ResidualMLPConfig, {"branch_scale": float("inf")}, r"^branch_scale: must be finite"),
        (ResidualMLPConfig, {"input_projection": False}, r"^input_projection: False needs"),
    ],
)
def test_config_errors_name_the_field(cls: type, kwargs: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        cls(**kwargs)


def test_ntk_allows_bias_std_without_weight_std() -> None:
    config = MLPConfig(parameterization="ntk", bias_std=0.1)
    assert create_model(config).net.readout.bias_scale == 0.1


@pytest.mark.parametrize("name", ["mlp", "residual_mlp"])
@pytest.mark.parametrize(
    ("bad", "error", "needle"),
    [
        (torch.zeros(3, 63), ValueError, "x: expected shape (batch, 64), got (3, 63)"),
        (torch.zeros(64), ValueError, "x: expected shape (batch, 64), got (64,)"),
        (torch.zeros(2, 3, 64), ValueError, "x: expected shape (batch, 64)"),
        (torch.zeros(3, 64, dtype=torch.int32), TypeError, "floating tensor of shape (batch, 64)"),
        ([0.0] * 64, TypeError, "expected a tensor of shape (batch, 64), got list"),
    ],
)
def test_forward_rejects_bad_input(name: str, bad: object, error: type, needle: str) -> None:
    model = create_model(name, seed=0)
    with pytest.raises(error) as info:
        model(bad)
    assert needle in str(info.value)
    with pytest.raises(error):
        model.forward_hidden(bad)


@pytest.mark.parametrize("name", ["mlp", "residual_mlp"])
def test_float64_example_input_follows_parameters(name: str) -> None:
    model = create_model(name, seed=0).double()
    x = model.example_input(2)
    assert x.dtype == torch.float64 and model(x).dtype == torch.float64


def test_seed_determinism_without_global_rng() -> None:
    state = torch.random.get_rng_state()
    a, b = create_model("residual_mlp", seed=1), create_model("residual_mlp", seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)
    for (key, ta), tb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(ta, tb), key
