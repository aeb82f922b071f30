"""Tests of the "shaped_mlp" and "scaled_resnet" models: formulas, defaults, validation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from perceptrons.config import ConfigError
from perceptrons.layers import ShapedReLU
from perceptrons.models import (
    ScaledResNetConfig,
    ScaledResNetModel,
    ShapedMLPConfig,
    ShapedMLPModel,
)
from perceptrons.registry import MODELS, create_model


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def raw_weight(linear: nn.Module) -> torch.Tensor:
    """The paper's N(0, 1) matrix W of a DenseLinear stored as W / sqrt(fan_in)."""
    return linear.weight.detach() * math.sqrt(linear.in_features)


def test_registered_with_the_paper() -> None:
    for name, cls, config in (
        ("shaped_mlp", ShapedMLPModel, ShapedMLPConfig),
        ("scaled_resnet", ScaledResNetModel, ScaledResNetConfig),
    ):
        entry = MODELS.get(name)
        assert entry.obj is cls and entry.config is config
        assert "arXiv:2310.12079" in entry.paper


# ------------------------------------------------------------------------------ shaped MLP
def test_shaped_mlp_defaults() -> None:
    model = create_model("shaped_mlp", seed=0)
    config = model.config
    assert config == ShapedMLPConfig()
    assert (config.c_plus, config.c_minus, config.rate, config.bias) == (0.0, -1.0, "depth", False)
    assert config.out_features is None and config.rate_value == config.depth == 16
    assert model.input_shape == ("batch", 64)
    act = model.activation
    assert (act.s_plus, act.s_minus) == (1.0, 0.75)  # 1 + c / sqrt(16)
    assert act.scale == pytest.approx(math.sqrt(2 / (1 + 0.75**2)))
    assert len(model.net.layers) == 16 and model.net.readout.out_features == 256
    x = model.example_input(3, generator=gen())
    assert model(x).shape == (3, 256)
    hidden = model.forward_hidden(x)
    assert len(hidden) == 17 and all(h.shape == (3, 256) for h in hidden)
    torch.testing.assert_close(hidden[-1], model(x), rtol=0, atol=0)
    assert all(p.requires_grad for p in model.parameters())
    assert not any(n.endswith("bias") for n, _ in model.named_parameters())


def test_shaped_mlp_matches_the_paper_formula() -> None:
    # z_1 = W_0 x / sqrt(n_in), z_{l+1} = sqrt(c / n) W_l phi_s(z_l), y = sqrt(c / n) W_d phi_s(z_d)
    config = ShapedMLPConfig(
        in_features=5, width=7, depth=3, out_features=2, c_plus=0.5, c_minus=-2.0, rate="width"
    )
    model = ShapedMLPModel(config, generator=gen()).double()
    s_plus, s_minus = 1 + 0.5 / math.sqrt(7), 1 - 2 / math.sqrt(7)
    c = 2 / (s_plus**2 + s_minus**2)

    def phi_s(z: torch.Tensor) -> torch.Tensor:
        return s_plus * z.clamp_min(0) + s_minus * z.clamp_max(0)

    linears = [layer.linear for layer in model.net.layers] + [model.net.readout]
    x = torch.randn(4, 5, generator=gen(1), dtype=torch.float64)
    z = x @ raw_weight(linears[0]).T / math.sqrt(5)
    expected = [z]
    for linear in linears[1:]:
        z = math.sqrt(c / 7) * phi_s(z) @ raw_weight(linear).T
        expected.append(z)
    hidden = model.forward_hidden(x)
    assert len(hidden) == 4
    for got, want in zip(hidden, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(model(x), expected[-1], rtol=1e-12, atol=1e-12)


def test_shaped_mlp_without_out_features_returns_the_next_preactivations() -> None:
    # out_features=None: d activations, output z_{d+1} of width n
    model = ShapedMLPModel(ShapedMLPConfig(in_features=3, width=6, depth=2), generator=gen())
    x = torch.randn(5, 3, generator=gen(1))
    z1, z2, z3 = model.forward_hidden(x)
    torch.testing.assert_close(z2, model.net.layers[1].linear(model.activation(z1)))
    torch.testing.assert_close(z3, model.net.readout(model.activation(z2)), rtol=0, atol=0)
    assert torch.equal(model(x), z3) and z3.shape == (5, 6)
    h1, h2, out = model.forward_hidden(x, post_activation=True)
    torch.testing.assert_close(h1, model.activation(z1), rtol=0, atol=0)
    torch.testing.assert_close(h2, model.activation(z2), rtol=0, atol=0)
    assert torch.equal(out, z3)
    one = ShapedMLPModel(ShapedMLPConfig(in_features=3, width=6, depth=1), generator=gen())
    assert len(one.net.layers) == 1 and one(x).shape == (5, 6)


def test_shaped_mlp_weights_are_standard_normal_and_norms_preserved() -> None:
    # weights: W / sqrt(fan_in) with W ~ N(0, 1); c-normalisation keeps E|z_l|^2 / n = |x|^2 / n_in
    width, depth = 2048, 4
    config = ShapedMLPConfig(in_features=width, width=width, depth=depth, c_minus=-3.0)
    model = ShapedMLPModel(config, generator=gen())
    weights = raw_weight(model.net.layers[1].linear)
    assert weights.std().item() == pytest.approx(1.0, abs=4 * math.sqrt(0.5 / weights.numel()))
    x = torch.randn(1, width, generator=gen(1))
    x = x / x.norm() * math.sqrt(width)  # |x|^2 / n_in = 1
    with torch.no_grad():
        norms = [(z.square().sum() / width).item() for z in model.forward_hidden(x)]
    # each layer multiplies |z|^2 / n by a mean-one factor of sd about sqrt(2 / n)
    assert norms == pytest.approx([1.0] * (depth + 1), abs=4 * math.sqrt(2 * (depth + 1) / width))


def test_shaped_mlp_bias_option_starts_at_zero() -> None:
    model = create_model("shaped_mlp", bias=True, depth=2, width=8, in_features=4, out_features=3)
    biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
    assert len(biases) == 3 and all(torch.equal(b, torch.zeros_like(b)) for b in biases)


def test_shaped_mlp_rate_selects_width_or_depth() -> None:
    by_width = create_model("shaped_mlp", rate="width", width=100, depth=4)
    assert by_width.activation.s_minus == pytest.approx(0.9)
    by_depth = create_model("shaped_mlp", rate="depth", width=100, depth=4)
    assert by_depth.activation.s_minus == pytest.approx(0.5)
    assert all(isinstance(layer.act, ShapedReLU) for layer in by_depth.net.layers)


# ------------------------------------------------------------------------------ ResNet
def test_scaled_resnet_defaults() -> None:
    model = create_model("scaled_resnet", seed=0)
    config = model.config
    assert config == ScaledResNetConfig()
    assert (config.width, config.depth, config.branch_gain) == (256, 16, 1.0)
    assert config.in_features is None and config.out_features is None and not config.bias
    assert model.input_shape == ("batch", 256)
    assert model.net.input_layer is None and model.net.readout is None
    assert model.net.branch_scale == pytest.approx(1 / 4)
    x = model.example_input(2)
    hidden = model.forward_hidden(x)
    assert len(hidden) == 17 and torch.equal(hidden[0], x)
    torch.testing.assert_close(hidden[-1], model(x), rtol=0, atol=0)
    post = model.forward_hidden(x, post_activation=True)
    assert all(torch.equal(a, b) for a, b in zip(post, hidden, strict=True))


def test_scaled_resnet_matches_the_paper_formula() -> None:
    # x_{l+1} = x_l + (sigma_r / sqrt(d)) (1 / sqrt(n)) W_l relu(x_l), x_0 = x
    config = ScaledResNetConfig(width=6, depth=3, branch_gain=1.7)
    model = ScaledResNetModel(config, generator=gen()).double()
    x = torch.randn(4, 6, generator=gen(1), dtype=torch.float64)
    expected = [x]
    for block in model.net.blocks:
        h = expected[-1]
        branch = torch.relu(h) @ raw_weight(block.linear).T / math.sqrt(6)
        expected.append(h + 1.7 / math.sqrt(3) * branch)
    for got, want in zip(model.forward_hidden(x), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_scaled_resnet_projection_and_readout() -> None:
    model = create_model("scaled_resnet", width=8, depth=2, in_features=3, out_features=5)
    assert model.input_shape == ("batch", 3) and model.net.input_layer is not None
    x = torch.randn(2, 3, generator=gen())
    hidden = model.forward_hidden(x)
    torch.testing.assert_close(hidden[0], model.net.input_layer(x), rtol=0, atol=0)
    assert model(x).shape == (2, 5)
    same = create_model("scaled_resnet", width=8, depth=2, in_features=8)
    assert same.net.input_layer is None


def test_scaled_resnet_norm_grows_like_the_ode() -> None:
    # E|x_l|^2 / n grows by (1 + sigma_r^2 / (2d)) per block (-> e^(sigma_r^2 t / 2))
    width, depth = 2048, 8
    model = create_model("scaled_resnet", seed=0, width=width, depth=depth)
    x = torch.randn(1, width, generator=gen(1))
    x = x / x.norm() * math.sqrt(width)
    with torch.no_grad():
        final = (model(x).square().sum() / width).item()
    assert final == pytest.approx((1 + 1 / (2 * depth)) ** depth, abs=4 * 1.6 / math.sqrt(width))


# ------------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    ("cls", "kwargs", "needle"),
    [
        (ShapedMLPConfig, {"depth": 0}, r"^depth: must be >= 1, got 0"),
        (ShapedMLPConfig, {"width": 0}, r"^width: must be >= 1"),
        (ShapedMLPConfig, {"in_features": -2}, r"^in_features: must be >= 1"),
        (ShapedMLPConfig, {"out_features": 0}, r"^out_features: must be >= 1"),
        (ShapedMLPConfig, {"rate": "batch"}, r"^rate: expected one of 'width', 'depth'"),
        (ShapedMLPConfig, {"c_plus": math.inf}, r"^c_plus: must be finite"),
        (ShapedMLPConfig, {"c_minus": math.nan}, r"^c_minus: expected a number, got nan"),
        (ShapedMLPConfig, {"c_plus": -4.0, "c_minus": -4.0}, r"^c_minus: gives s_plus = s_minus"),
        (ScaledResNetConfig, {"depth": 0}, r"^depth: must be >= 1"),
        (ScaledResNetConfig, {"width": 0}, r"^width: must be >= 1"),
        (ScaledResNetConfig, {"branch_gain": -1.0}, r"^branch_gain: must be finite and >= 0"),
        (ScaledResNetConfig, {"branch_gain": math.inf}, r"^branch_gain: must be finite"),
        (ScaledResNetConfig, {"in_features": 0}, r"^in_features: must be >= 1"),
        (ScaledResNetConfig, {"out_features": 0}, r"^out_features: must be >= 1"),
    ],
)
def test_config_validation_names_the_field(cls: type, kwargs: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        cls(**kwargs)


def test_configs_round_trip_through_json() -> None:
    config = ShapedMLPConfig(width=32, depth=3, out_features=4, rate="width", c_plus=0.25)
    assert ShapedMLPConfig.from_json(config.to_json()) == config
    resnet = ScaledResNetConfig(in_features=5, branch_gain=0.5)
    assert ScaledResNetConfig.from_json(resnet.to_json()) == resnet
