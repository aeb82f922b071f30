"""Tests of the `MLP` and `ResidualMLP` layers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from perceptrons.layers import MLP, DenseLinear, ResidualMLP


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------------- MLP
@pytest.mark.parametrize("leading", [(), (1,), (3,), (2, 5)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mlp_shapes(leading: tuple[int, ...], dtype: torch.dtype) -> None:
    net = MLP(6, (8, 4), 3, dtype=dtype, generator=gen())
    y = net(torch.randn(*leading, 6, dtype=dtype, generator=gen(1)))
    assert y.shape == (*leading, 3) and y.dtype == dtype


def test_mlp_without_hidden_layers_is_linear() -> None:
    net = MLP(5, (), 2, generator=gen())
    assert len(net.layers) == 0 and isinstance(net.readout, DenseLinear)
    x = torch.randn(4, 5, generator=gen(1))
    assert torch.equal(net(x), x @ net.readout.weight.T + net.readout.bias)
    assert [h.shape for h in net.forward_hidden(x)] == [(4, 2)]


def test_mlp_forward_hidden_returns_preactivations_then_output() -> None:
    net = MLP(6, (8, 7), 3, act_layer="tanh", generator=gen())
    x = torch.randn(4, 6, generator=gen(1))
    hidden = net.forward_hidden(x)
    assert [h.shape for h in hidden] == [(4, 8), (4, 7), (4, 3)]
    torch.testing.assert_close(hidden[0], net.layers[0].linear(x), rtol=0, atol=0)
    torch.testing.assert_close(hidden[1], net.layers[1].linear(torch.tanh(hidden[0])))
    torch.testing.assert_close(hidden[-1], net(x), rtol=0, atol=0)


def test_mlp_norm_factory_gets_each_width_and_act_name_or_factory() -> None:
    widths: list[int] = []

    def norm(width: int) -> nn.Module:
        widths.append(width)
        return nn.LayerNorm(width)

    net = MLP(6, (8, 5), 2, norm_layer=norm, act_layer=nn.GELU)
    assert widths == [8, 5]
    assert isinstance(net.layers[1].norm, nn.LayerNorm) and isinstance(net.layers[0].act, nn.GELU)
    assert isinstance(MLP(6, (8,), 2, act_layer="erf").layers[0].act, nn.Module)


def test_mlp_norm_and_dtype_device_are_applied() -> None:
    net = MLP(4, (8,), 2, norm_layer=nn.LayerNorm, dtype=torch.float64)
    assert all(p.dtype == torch.float64 for p in net.parameters())
    assert net(torch.randn(3, 4, dtype=torch.float64)).dtype == torch.float64


def test_mlp_dropout_only_in_training() -> None:
    net = MLP(6, (64,), 3, dropout=0.5, generator=gen())
    assert isinstance(net.layers[0].drop, nn.Dropout)
    assert isinstance(MLP(6, (64,), 3).layers[0].drop, nn.Identity)
    x = torch.randn(4, 6, generator=gen(1))
    net.eval()
    assert torch.equal(net(x), net(x))


def test_mlp_generator_determinism_and_no_global_rng_use() -> None:
    state = torch.random.get_rng_state()
    a = MLP(6, (8, 8), 3, weight_std=1.0, bias_std=0.1, generator=gen(7))
    b = MLP(6, (8, 8), 3, weight_std=1.0, bias_std=0.1, generator=gen(7))
    c = MLP(6, (8, 8), 3, weight_std=1.0, bias_std=0.1, generator=gen(8))
    assert torch.equal(torch.random.get_rng_state(), state)
    for (name, pa), pb, pc in zip(
        a.named_parameters(), b.parameters(), c.parameters(), strict=True
    ):
        assert torch.equal(pa, pb), name
        if pa.dim() == 2:
            assert not torch.equal(pa, pc), name


def test_mlp_second_layer_variance_follows_relu_recursion() -> None:
    """Wide ReLU MLP: q1 = s_w^2 |x|^2/d + s_b^2, q2 = s_w^2 q1 / 2 + s_b^2 (over units)."""
    d, n, w_std, b_std = 32, 4096, 1.4, 0.3
    net = MLP(d, (n, n), 1, weight_std=w_std, bias_std=b_std, generator=gen(3))
    x = torch.randn(3, d, generator=gen(4))
    with torch.no_grad():
        z1, z2, _ = net.forward_hidden(x)
    q1 = w_std**2 * x.pow(2).mean(-1) + b_std**2
    q2 = w_std**2 * q1 / 2 + b_std**2
    # SE of a sample variance over n units: sqrt(2/n) q; the layer-2 estimate also inherits the
    # fluctuation of mean(relu(z1)^2), whose relative SE is sqrt(5/4 / n) / (1/2) = sqrt(5/n).
    se1 = math.sqrt(2 / n) * q1
    se2 = q2 * math.sqrt(2 / n + 5 / n)
    assert torch.all((z1.var(-1) - q1).abs() < 6 * se1)
    assert torch.all((z2.var(-1) - q2).abs() < 6 * se2)


def transfer_ntk_to_standard(ntk: nn.Module, standard: nn.Module) -> None:
    """Give ``standard`` the same draws as ``ntk`` (so both compute the same function)."""
    pairs = zip(ntk.modules(), standard.modules(), strict=True)
    with torch.no_grad():
        for a, b in pairs:
            if isinstance(a, DenseLinear):
                b.weight.copy_(a.weight * a.weight_scale)
                if a.bias is not None:
                    b.bias.copy_(a.bias * a.bias_scale)


def test_mlp_ntk_matches_standard_at_equal_draws() -> None:
    kwargs = {"act_layer": "erf", "weight_std": 1.3, "bias_std": 0.2, "dtype": torch.float64}
    ntk = MLP(10, (16, 12), 4, parameterization="ntk", generator=gen(), **kwargs)
    standard = MLP(10, (16, 12), 4, **kwargs)
    transfer_ntk_to_standard(ntk, standard)
    x = torch.randn(5, 10, dtype=torch.float64, generator=gen(1))
    torch.testing.assert_close(ntk(x), standard(x))
    for a, b in zip(ntk.forward_hidden(x), standard.forward_hidden(x), strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(
    ("args", "kwargs", "needle"),
    [
        ((0, (4,), 2), {}, "in_features: expected an int >= 1"),
        ((3, (4,), 0), {}, "out_features: expected an int >= 1"),
        ((3, 4, 2), {}, "hidden_features: expected a sequence of ints"),
        ((3, (4, 0), 2), {}, "hidden_features: expected ints >= 1, got (4, 0)"),
        ((3, (4,), 2), {"dropout": 1.0}, "dropout: expected a probability in [0, 1)"),
        ((3, (4,), 2), {"act_layer": "rleu"}, "unknown activation 'rleu'"),
        ((3, (4,), 2), {"parameterization": "mup"}, "parameterization: expected one of"),
        ((3, (4,), 2), {"weight_std": -1.0}, "weight_std: expected a finite number >= 0"),
    ],
)
def test_mlp_bad_arguments(args: tuple, kwargs: dict, needle: str) -> None:
    with pytest.raises(ValueError) as info:
        MLP(*args, **kwargs)
    assert needle in str(info.value)


def test_mlp_norm_instance_is_rejected() -> None:
    with pytest.raises(TypeError, match="norm_layer: expected a factory"):
        MLP(3, (4,), 2, norm_layer=nn.LayerNorm(4))  # type: ignore[arg-type]


# ------------------------------------------------------------------------- ResidualMLP
@pytest.mark.parametrize("leading", [(1,), (3,), (2, 5)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_residual_shapes(leading: tuple[int, ...], dtype: torch.dtype) -> None:
    net = ResidualMLP(6, 8, 3, 2, dtype=dtype, generator=gen())
    y = net(torch.randn(*leading, 6, dtype=dtype, generator=gen(1)))
    assert y.shape == (*leading, 2) and y.dtype == dtype
    assert ResidualMLP(6, 8, 3, None)(torch.randn(*leading, 6)).shape == (*leading, 8)


@pytest.mark.parametrize(("depth", "expected"), [(0, 1.0), (1, 1.0), (4, 0.5), (9, 1 / 3)])
def test_residual_default_branch_scale(depth: int, expected: float) -> None:
    net = ResidualMLP(4, 8, depth, 2)
    assert net.branch_scale == pytest.approx(expected)
    assert ResidualMLP(4, 8, depth, 2, branch_scale=0.25).branch_scale == 0.25


def test_residual_forward_matches_equation() -> None:
    net = ResidualMLP(
        5, 8, 3, 2, branch_scale=0.7, act_layer="tanh", norm_layer=nn.LayerNorm,
        weight_std=1.0, bias_std=0.1, generator=gen(),
    )  # fmt: skip
    x = torch.randn(4, 5, generator=gen(1))
    h = net.input_layer(x)
    expected = [h]
    for block in net.blocks:
        h = h + 0.7 * block.linear(torch.tanh(block.norm(h)))
        expected.append(h)
    hidden = net.forward_hidden(x)
    assert len(hidden) == 4
    for a, b in zip(hidden, expected, strict=True):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(net(x), net.readout(expected[-1]))


def test_residual_without_input_projection() -> None:
    net = ResidualMLP(8, 8, 2, None, input_projection=False, generator=gen())
    assert net.input_layer is None and net.readout is None
    x = torch.randn(3, 8, generator=gen(1))
    assert torch.equal(net.forward_hidden(x)[0], x)
    depth_zero = ResidualMLP(8, 8, 0, None, input_projection=False)
    assert torch.equal(depth_zero(x), x)


def test_residual_li_nica_variance_growth() -> None:
    """x_{l+1} = x_l + (s_r/sqrt(L)) W phi(x_l), W ~ N(0, 1/n), ReLU: at infinite width the mean
    square grows by (1 + s_r^2 / (2L)) per block (Li & Nica 2023, arXiv:2310.12079)."""
    n, depth, sigma_r = 2048, 8, 1.0
    net = ResidualMLP(
        32, n, depth, None, branch_scale=sigma_r / math.sqrt(depth), weight_std=1.0, bias=False,
        generator=gen(11),
    )  # fmt: skip
    with torch.no_grad():
        hidden = net.forward_hidden(torch.randn(4, 32, generator=gen(12)))
    ratio = (hidden[-1].pow(2).mean(-1) / hidden[0].pow(2).mean(-1)).mean()
    predicted = (1 + sigma_r**2 / (2 * depth)) ** depth
    # Finite-width fluctuation of the ratio is ~ sqrt(2/n) (measured std over seeds: 1.1 sqrt(2/n)).
    assert abs(ratio / predicted - 1) < 6 * math.sqrt(2 / n)


def test_residual_ntk_matches_standard_at_equal_draws() -> None:
    kwargs = {"weight_std": 1.0, "bias_std": 0.5, "dtype": torch.float64}
    ntk = ResidualMLP(6, 16, 3, 2, parameterization="ntk", generator=gen(), **kwargs)
    standard = ResidualMLP(6, 16, 3, 2, **kwargs)
    transfer_ntk_to_standard(ntk, standard)
    x = torch.randn(5, 6, dtype=torch.float64, generator=gen(1))
    torch.testing.assert_close(ntk(x), standard(x))


def test_residual_generator_determinism() -> None:
    state = torch.random.get_rng_state()
    a, b = ResidualMLP(6, 8, 2, 3, generator=gen(4)), ResidualMLP(6, 8, 2, 3, generator=gen(4))
    assert torch.equal(torch.random.get_rng_state(), state)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize(
    ("args", "kwargs", "needle"),
    [
        ((0, 8, 2, 2), {}, "in_features: expected an int >= 1"),
        ((4, 0, 2, 2), {}, "width: expected an int >= 1"),
        ((4, 8, -1, 2), {}, "depth: expected an int >= 0"),
        ((4, 8, 2, 0), {}, "out_features: expected an int >= 1"),
        ((4, 8, 2, 2), {"branch_scale": float("inf")}, "branch_scale: expected a finite number"),
        ((4, 8, 2, 2), {"input_projection": False}, "needs in_features == width"),
        ((4, 8, 2, 2), {"dropout": -0.1}, "dropout: expected a probability"),
        ((4, 8, 2, 2), {"act_layer": "nope"}, "unknown activation 'nope'"),
    ],
)
def test_residual_bad_arguments(args: tuple, kwargs: dict, needle: str) -> None:
    with pytest.raises(ValueError) as info:
        ResidualMLP(*args, **kwargs)
    assert needle in str(info.value)
