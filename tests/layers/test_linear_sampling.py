"""Tests of `DenseLinear.sample_parameters`: the batched sampler of the initial distribution."""

from __future__ import annotations

import math

import pytest
import torch

from perceptrons.layers import DenseLinear

# name -> (DenseLinear kwargs, weight std of reset_parameters, bias std, weight distribution)
INITS = {
    "standard": ({"weight_std": 1.5, "bias_std": 0.3}, 1.5 / math.sqrt(40), 0.3, "normal"),
    "standard_zero_bias": ({"weight_std": 2.0}, 2.0 / math.sqrt(40), 0.0, "normal"),
    "ntk": ({"weight_std": 2.0, "bias_std": 0.5, "parameterization": "ntk"}, 1.0, 1.0, "normal"),
    # nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for both, variance bound^2 / 3.
    "default": ({}, 1 / math.sqrt(3 * 40), 1 / math.sqrt(3 * 40), "uniform"),
}
IN, OUT = 40, 24


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("init", list(INITS))
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_one_sample_is_bitwise_reset_parameters(init: str, bias: bool, dtype: torch.dtype) -> None:
    layer = DenseLinear(IN, OUT, bias=bias, dtype=dtype, **INITS[init][0])
    sample = layer.sample_parameters(1, generator=gen(7))
    layer.reset_parameters(generator=gen(7))
    assert set(sample) == ({"weight", "bias"} if bias else {"weight"})
    assert sample["weight"].shape == (1, OUT, IN) and sample["weight"].dtype == dtype
    assert torch.equal(sample["weight"][0], layer.weight)
    if bias:
        assert sample["bias"].shape == (1, OUT)
        assert torch.equal(sample["bias"][0], layer.bias)


def moments_agree(x: torch.Tensor, std: float, dist: str) -> None:
    """Sample mean and variance of ``x`` against N(0, std^2) or a uniform of that variance."""
    n = x.numel()
    x = x.double()
    assert abs(x.mean().item()) < 5 * std / math.sqrt(n)
    # Var of a sample variance: (mu4 - sigma^4) / n, mu4 = 3 sigma^4 (normal), 9/5 (uniform).
    kurtosis = 3.0 if dist == "normal" else 9 / 5
    se = std**2 * math.sqrt((kurtosis - 1) / n)
    assert abs(x.var().item() - std**2) < 5 * se


@pytest.mark.parametrize("init", list(INITS))
def test_statistics_match_reset_parameters(init: str) -> None:
    kwargs, weight_std, bias_std, dist = INITS[init]
    num = 200
    layer = DenseLinear(IN, OUT, **kwargs)
    sample = layer.sample_parameters(num, generator=gen(0))
    w, b = sample["weight"], sample["bias"]
    assert w.shape == (num, OUT, IN) and b.shape == (num, OUT)
    # The same statistics from `num` calls of reset_parameters.
    generator = gen(1)
    resets_w, resets_b = [], []
    for _ in range(num):
        layer.reset_parameters(generator=generator)
        resets_w.append(layer.weight.detach().clone())
        resets_b.append(layer.bias.detach().clone())
    for batched, reset, std in (
        (w, torch.stack(resets_w), weight_std),
        (b, torch.stack(resets_b), bias_std),
    ):
        if std == 0:
            assert torch.count_nonzero(batched) == 0 and torch.count_nonzero(reset) == 0
            continue
        moments_agree(batched, std, dist)
        moments_agree(reset, std, dist)
        if dist == "uniform":
            bound = math.sqrt(3) * std
            assert batched.abs().max() <= bound and reset.abs().max() <= bound
            assert batched.abs().max() > 0.99 * bound
    # The num draws are independent: the correlation of two parameter sets is ~ N(0, 1/size).
    flat = w.reshape(num, -1).double()
    flat = flat - flat.mean(1, keepdim=True)
    corr = (flat @ flat.T) / (flat.norm(dim=1)[:, None] * flat.norm(dim=1)[None, :])
    off_diagonal = corr[~torch.eye(num, dtype=torch.bool)]
    assert off_diagonal.abs().max() < 6 / math.sqrt(IN * OUT)


def test_sampling_leaves_the_layer_unchanged_and_is_seeded() -> None:
    layer = DenseLinear(IN, OUT, weight_std=1.0, bias_std=0.1, generator=gen(0))
    weight, bias = layer.weight.detach().clone(), layer.bias.detach().clone()
    first = layer.sample_parameters(5, generator=gen(3))
    second = layer.sample_parameters(5, generator=gen(3))
    other = layer.sample_parameters(5, generator=gen(4))
    assert torch.equal(layer.weight, weight) and torch.equal(layer.bias, bias)
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not torch.equal(first["weight"], other["weight"])
    assert not first["weight"].requires_grad


def test_out_fills_preallocated_slices() -> None:
    layer = DenseLinear(IN, OUT, weight_std=1.0, bias_std=0.2)
    weight = torch.zeros(4, OUT, IN)
    bias = torch.zeros(4, OUT)
    result = layer.sample_parameters(
        2, generator=gen(5), out={"weight": weight[1:3], "bias": bias[1:3]}
    )
    expected = layer.sample_parameters(2, generator=gen(5))
    assert torch.equal(weight[1:3], expected["weight"]) and torch.equal(bias[1:3], expected["bias"])
    assert torch.count_nonzero(weight[0]) == 0 and torch.count_nonzero(weight[3]) == 0
    assert result["weight"].data_ptr() == weight[1:3].data_ptr()


def test_bad_arguments_raise() -> None:
    layer = DenseLinear(IN, OUT)
    for num in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="num"):
            layer.sample_parameters(num)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="keys"):
        layer.sample_parameters(2, out={"weight": torch.empty(2, OUT, IN)})
    with pytest.raises(ValueError, match=r"expected shape \(2, 24, 40\)"):
        layer.sample_parameters(
            2, out={"weight": torch.empty(2, IN, OUT), "bias": torch.empty(2, OUT)}
        )
    with pytest.raises(TypeError, match="float32"):
        layer.sample_parameters(
            2,
            out={
                "weight": torch.empty(2, OUT, IN, dtype=torch.float64),
                "bias": torch.empty(2, OUT, dtype=torch.float64),
            },
        )
