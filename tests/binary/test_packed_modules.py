"""Packed modules against the float binary layers in eval; `to_packed` on whole models."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from perceptrons.binary import (
    PackedBinaryAttention,
    PackedBinaryLinear,
    binary_matmul,
    numba_available,
    pack_signs,
    to_packed,
)
from perceptrons.layers.binary import BinaryAttention, BinaryLinear, BinaryMLP, sign_pm1
from perceptrons.registry import create_model

NO_NUMBA = "numba is not installed (pip install 'perceptrons[fast]')"
BACKENDS = [
    "numpy",
    pytest.param("numba", marks=pytest.mark.skipif(not numba_available(), reason=NO_NUMBA)),
]


def _close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Equal to 1e-5 relative (of the output's scale, so entries near 0 do not count as
    large relative errors)."""
    scale = float(expected.abs().max())
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("binarize_input", [True, False], ids=["W1A1", "W1A32"])
@pytest.mark.parametrize("scale", ["mean", "learned"])
def test_linear_matches_binary_linear(backend: str, binarize_input: bool, scale: str) -> None:
    g = torch.Generator().manual_seed(0)
    layer = BinaryLinear(100, 7, scale=scale, binarize_input=binarize_input, generator=g)
    if scale == "learned":  # trained PWS scales differ from the mean scale
        layer.channel_scales()
        with torch.no_grad():
            layer.weight_scale.mul_(torch.rand(7, 1, generator=g) + 0.5)
    layer.eval()
    x = torch.randn(3, 4, 100, generator=g)
    packed = PackedBinaryLinear.from_binary(layer, backend=backend)
    with torch.no_grad():
        expected = layer(x)
    out = packed(x)
    assert out.shape == (3, 4, 7) and out.dtype == torch.float32
    _close(out, expected)
    assert torch.equal(packed.weight_signs(), layer.weight_signs())
    assert torch.equal(packed.scales, layer.channel_scales())


def test_linear_w1a1_integer_part_is_exact() -> None:
    g = torch.Generator().manual_seed(1)
    layer = BinaryLinear(130, 9, scale="mean", bias=False, generator=g).eval()
    packed = PackedBinaryLinear.from_binary(layer)
    x = torch.randn(11, 130, generator=g)
    dots = (packed(x) / packed.scales).round()
    exact = sign_pm1(x).double() @ layer.weight_signs().double().T
    assert torch.equal(dots.double(), exact)
    assert packed.bias is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_linear_w1a1_is_bit_identical_to_integer_dots_times_scales(backend: str) -> None:
    """The packed W1A1 output is exactly ``(sign(x) Sᵀ) * alpha + b`` computed in float32 (the
    float dot products of ±1 values are exact integers, whatever the summation order); only
    the float module's ``sign(x) (alpha ⊙ S)ᵀ + b`` rounds differently."""
    g = torch.Generator().manual_seed(8)
    layer = BinaryLinear(200, 33, scale="mean", generator=g).eval()
    x = torch.randn(2, 50, 200, generator=g)
    integer_dots = F.linear(sign_pm1(x), layer.weight_signs())
    expected = integer_dots * layer.channel_scales() + layer.bias.detach()
    packed = PackedBinaryLinear.from_binary(layer, backend=backend)
    assert torch.equal(packed(x), expected)


def test_from_binary_does_not_initialise_learned_scales() -> None:
    layer = BinaryLinear(10, 3, scale="learned", generator=torch.Generator().manual_seed(2))
    assert not bool(layer.scale_initialized)
    packed = PackedBinaryLinear.from_binary(layer)
    assert not bool(layer.scale_initialized)  # untouched
    torch.testing.assert_close(packed.scales, layer.weight.detach().abs().mean(1))
    x = torch.randn(4, 10, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = layer.eval()(x)  # its first forward sets the same scales
    _close(packed(x), expected)


def test_full_precision_layers_are_not_packed() -> None:
    layer = BinaryLinear(10, 3)
    layer.set_binarized(False)
    with pytest.raises(ValueError, match="full precision"):
        PackedBinaryLinear.from_binary(layer)
    with pytest.raises(TypeError, match="expected a BinaryLinear"):
        PackedBinaryLinear.from_binary(nn.Linear(10, 3))  # type: ignore[arg-type]
    attention = BinaryAttention(16, 2)
    attention.set_binarized(False)
    with pytest.raises(ValueError, match="full precision"):
        PackedBinaryAttention.from_binary(attention)


def test_linear_input_errors() -> None:
    packed = PackedBinaryLinear.from_binary(BinaryLinear(10, 3))
    with pytest.raises(ValueError, match=r"x: expected shape \(\.\.\., 10\), got \(4, 9\)"):
        packed(torch.zeros(4, 9))
    with pytest.raises(TypeError, match="x: expected a floating tensor"):
        packed(torch.zeros(4, 10, dtype=torch.int64))
    with pytest.raises(ValueError, match="cannot run in full precision"):
        packed.set_binarized(False)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("binarizer", ["sab", "threshold", "argmax", "presoftmax"])
def test_attention_matches_binary_attention(backend: str, binarizer: str) -> None:
    g = torch.Generator().manual_seed(4)
    attention = BinaryAttention(64, 4, binarizer=binarizer, generator=g).eval()
    x = torch.randn(2, 17, 64, generator=g)
    packed = PackedBinaryAttention.from_binary(attention, backend=backend)
    with torch.no_grad():
        expected = attention(x)
        probs, binary = attention.attention_maps(x)
    packed_probs, packed_binary = packed.attention_maps(x)
    assert torch.equal(packed_binary, binary)  # the same {0, 1} map
    assert torch.equal(packed_probs, probs)  # integer scores: the same softmax input
    out = packed(x)
    assert out.shape == (2, 17, 64)
    _close(out, expected)


def test_attention_integer_parts_are_exact() -> None:
    """``q kᵀ`` and ``B v`` of the packed attention equal the float module's exactly."""
    g = torch.Generator().manual_seed(5)
    attention = BinaryAttention(32, 2, generator=g).eval()
    x = torch.randn(3, 9, 32, generator=g)
    with torch.no_grad():
        heads = attention.qkv(x).reshape(3, 9, 3, 2, 16).permute(2, 0, 3, 1, 4)
        q, k, v = sign_pm1(heads).unbind(0)  # the float module's ±1 q, k, v: (b, h, n, d)
        _, binary = attention.attention_maps(x)
    packed = PackedBinaryAttention.from_binary(attention)
    qkv = packed.qkv(x).reshape(3, 9, 3, 2, 16).permute(2, 0, 3, 1, 4)
    assert torch.equal(sign_pm1(qkv[0]), q) and torch.equal(sign_pm1(qkv[2]), v)
    dots = binary_matmul(pack_signs(qkv[0]), pack_signs(qkv[1]), 16)
    assert torch.equal(dots.float(), q @ k.mT)
    assert set(binary.unique().tolist()) <= {0.0, 1.0}


def test_stochastic_binarizer_is_not_packed() -> None:
    attention = BinaryAttention(16, 2, binarizer="bernoulli")
    with pytest.raises(ValueError, match="deterministic binarizers"):
        PackedBinaryAttention.from_binary(attention)
    packed = to_packed(nn.Sequential(attention))
    assert isinstance(packed[0], BinaryAttention)  # float attention, packed projections
    assert isinstance(packed[0].qkv, PackedBinaryLinear)
    assert isinstance(packed[0].proj, PackedBinaryLinear)


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_to_packed_copies_and_leaves_the_original_untouched() -> None:
    g = torch.Generator().manual_seed(6)
    fp_layer = BinaryLinear(16, 16, generator=g)
    fp_layer.set_binarized(False)
    model = nn.Sequential(
        BinaryAttention(16, 2, generator=g),
        BinaryMLP(16, 40, scale="learned", generator=g),
        fp_layer,
        nn.Linear(16, 3),
    )
    model.train()
    before = _state(model)
    types_before = [type(m) for m in model.modules()]
    packed = to_packed(model)
    assert [type(m) for m in model.modules()] == types_before
    assert model.training and not packed.training
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not bool(model[1].fc1.scale_initialized)
    assert isinstance(packed[0], PackedBinaryAttention)
    assert isinstance(packed[1].fc1, PackedBinaryLinear)
    assert isinstance(packed[1].fc2, PackedBinaryLinear)
    assert type(packed[2]) is BinaryLinear and not packed[2].binarized  # full precision
    assert type(packed[3]) is nn.Linear
    x = torch.randn(2, 5, 16, generator=g)
    with torch.no_grad():
        expected = model.eval()(x)
    _close(packed(x), expected)
    assert isinstance(to_packed(BinaryLinear(8, 2)), PackedBinaryLinear)  # a bare layer
    with pytest.raises(TypeError, match="expected an nn.Module"):
        to_packed("model")  # type: ignore[arg-type]


@pytest.mark.parametrize("activation_bits", [1, 32])
def test_bivit_packed_matches_float(activation_bits: int) -> None:
    model = create_model("bivit", seed=0, depth=2, mlp_activation_bits=activation_bits).eval()
    x = model.example_input(4, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        expected = model(x)
    packed = to_packed(model)
    kinds = {type(m) for m in packed.modules()}
    assert PackedBinaryAttention in kinds and PackedBinaryLinear in kinds
    assert BinaryLinear not in kinds and BinaryAttention not in kinds
    _close(packed(x), expected)
