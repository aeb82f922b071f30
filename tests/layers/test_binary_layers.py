"""BiViT's binary layers: signs and straight-through gradients, BinaryLinear (mean and PWS
scales), the attention binarisers (SAB on Dirichlet rows) and BinaryAttention."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from perceptrons.layers.binary import (
    BinaryAttention,
    BinaryLinear,
    BinaryMLP,
    argmax_binarize,
    bernoulli_binarize,
    binary_sign,
    empty_row_fraction,
    presoftmax_binarize,
    sign_pm1,
    softmax_aware_binarize,
    threshold_binarize,
)

POINTS = torch.tensor([-2.0, -1.0, -0.75, -0.25, 0.0, 0.25, 0.75, 1.0, 2.0])


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_sign_maps_zero_to_plus_one():
    assert sign_pm1(POINTS).tolist() == [-1, -1, -1, -1, 1, 1, 1, 1, 1]
    assert sign_pm1(torch.tensor([-0.0])).item() == 1.0  # -0.0 >= 0


@pytest.mark.parametrize(
    ("ste", "expected"),
    [
        # clipped: 1 inside |x| < 1, 0 at the clip and beyond (the official code's rule)
        ("clipped", [0, 0, 1, 1, 1, 1, 1, 0, 0]),
        # Bi-Real ApproxSign: 2 + 2x on [-1, 0), 2 - 2x on [0, 1)
        ("bireal", [0, 0, 0.5, 1.5, 2, 1.5, 0.5, 0, 0]),
    ],
)
def test_straight_through_gradients_take_their_hand_values(ste, expected):
    x = POINTS.clone().requires_grad_(True)
    binary_sign(x, ste).sum().backward()
    assert x.grad.tolist() == expected


def _approx_sign(t: torch.Tensor) -> torch.Tensor:
    """Bi-Real's ApproxSign: -1, 2t + t^2, 2t - t^2, 1 on (-inf, -1), [-1, 0), [0, 1), [1, inf)."""
    inner = torch.where(t < 0, 2 * t + t * t, 2 * t - t * t)
    return torch.where(t.abs() < 1, inner, torch.sign(t).detach())


def test_straight_through_gradients_are_those_of_their_surrogates():
    """Away from the kinks the STE is the derivative of hardtanh (clipped) and of ApproxSign
    (bireal): compared with autograd on the smooth surrogates at random points."""
    x = (torch.rand(500, generator=_gen(), dtype=torch.float64) * 4 - 2).requires_grad_(True)
    x = x.detach().where((x.detach().abs() - 1).abs() > 1e-3, torch.tensor(0.5, dtype=x.dtype))
    for ste, surrogate in (
        ("clipped", F.hardtanh),
        ("bireal", _approx_sign),
    ):
        a = x.clone().requires_grad_(True)
        b = x.clone().requires_grad_(True)
        (g_ste,) = torch.autograd.grad(binary_sign(a, ste).sum(), a)
        (g_sur,) = torch.autograd.grad(surrogate(b).sum(), b)
        torch.testing.assert_close(g_ste, g_sur, rtol=0, atol=1e-12)


def test_binary_linear_is_the_official_formula():
    layer = BinaryLinear(3, 2, generator=_gen())
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.1, 0.2, 0.3], [-0.4, 0.0, 0.1]]))
        layer.bias.copy_(torch.tensor([0.5, -1.0]))
    # row 0: mean 0.2 -> signs of (-0.1, 0, 0.1) = (-1, +1, +1), alpha = mean|W| = 0.2 (uncentred)
    assert layer.weight_signs().tolist() == [[-1, 1, 1], [-1, 1, 1]]
    torch.testing.assert_close(layer.channel_scales(), torch.tensor([0.2, 0.5 / 3]))
    x = torch.tensor([[0.3, -2.0, 0.0]])  # sign: (+1, -1, +1)
    expected = torch.tensor([[0.2 * (-1 - 1 + 1) + 0.5, (0.5 / 3) * (-1 - 1 + 1) - 1.0]])
    torch.testing.assert_close(layer(x), expected)
    layer.set_binarized(False)  # the same latent weights in full precision
    torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias))


def test_w1a32_keeps_real_activations():
    layer = BinaryLinear(5, 4, binarize_input=False, generator=_gen(1))
    x = torch.randn(3, 5, generator=_gen(2))
    w = layer.channel_scales()[:, None] * layer.weight_signs()
    torch.testing.assert_close(layer(x), x @ w.T + layer.bias)


def test_pws_starts_at_mean_abs_learns_and_survives_reload():
    layer = BinaryLinear(6, 3, scale="learned", generator=_gen())
    assert not bool(layer.scale_initialized)
    x = torch.randn(4, 6, generator=_gen(1))
    layer(x).square().sum().backward()
    expected = layer.weight.detach().abs().mean(1, keepdim=True)
    torch.testing.assert_close(layer.weight_scale.detach(), expected)
    assert layer.weight_scale.grad is not None and layer.weight_scale.grad.abs().sum() > 0
    with torch.no_grad():
        layer.weight_scale.mul_(3.0)  # as if trained
    fresh = BinaryLinear(6, 3, scale="learned", generator=_gen(5))
    fresh.load_state_dict(layer.state_dict())
    torch.testing.assert_close(fresh(x), layer(x))  # not re-initialised on its first forward
    torch.testing.assert_close(fresh.channel_scales(), 3.0 * expected.reshape(-1))


def test_outputs_are_linear_in_the_learned_scale_and_the_bias_gradcheck():
    layer = BinaryLinear(5, 3, scale="learned", generator=_gen()).double()
    x = torch.randn(4, 5, generator=_gen(1), dtype=torch.float64)
    layer(x)  # initialise the scales

    def f(scale: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        w = binary_sign(layer.weight - layer.weight.mean(1, keepdim=True)) * scale
        return F.linear(sign_pm1(x), w, bias)

    inputs = (layer.weight_scale.detach().clone(), layer.bias.detach().clone())
    assert torch.autograd.gradcheck(f, tuple(t.requires_grad_(True) for t in inputs))


def test_binary_linear_rejects_bad_inputs_naming_the_shape():
    layer = BinaryLinear(5, 2)
    with pytest.raises(ValueError, match=r"\(\.\.\., 5\)"):
        layer(torch.randn(3, 4))
    with pytest.raises(TypeError, match="floating"):
        layer(torch.ones(3, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="scale"):
        BinaryLinear(5, 2, scale="max")
    with pytest.raises(ValueError, match="ste"):
        BinaryLinear(5, 2, ste="tanh")


def _dirichlet_rows(concentration: float, rows: int = 256, n: int = 197) -> torch.Tensor:
    alpha = torch.full((n,), concentration, dtype=torch.float64)
    return torch.distributions.Dirichlet(alpha).sample((rows,))


def _scaled_error(p: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Relative L2 error of the best per-row scale c b against p (0/0 rows count as 1)."""
    c = (p * b).sum(-1, keepdim=True) / b.square().sum(-1, keepdim=True).clamp_min(1e-30)
    return ((p - c * b).norm(dim=-1) / p.norm(dim=-1)).mean()


@pytest.mark.parametrize("concentration", [0.05, 0.3, 1.0, 5.0])
def test_sab_never_empties_a_row_and_beats_the_half_threshold(concentration):
    torch.manual_seed(0)
    p = _dirichlet_rows(concentration)
    sab, half = softmax_aware_binarize(p), threshold_binarize(p)
    assert empty_row_fraction(sab) == 0.0
    assert bool((sab.gather(-1, p.argmax(-1, keepdim=True)) == 1).all())  # argmax always kept
    assert _scaled_error(p, sab) < _scaled_error(p, half)
    if concentration >= 1.0:  # flat rows: no entry reaches 0.5
        assert empty_row_fraction(half) == 1.0


def test_sab_keeps_entries_within_the_fraction_of_the_row_max():
    p = torch.tensor([[0.5, 0.2, 0.125, 0.124, 0.051]])
    assert softmax_aware_binarize(p).tolist() == [[1, 1, 1, 0, 0]]  # >= 0.25 * 0.5
    assert softmax_aware_binarize(p, fraction=1.0).tolist() == [[1, 0, 0, 0, 0]]
    with pytest.raises(ValueError, match="fraction"):
        softmax_aware_binarize(p, fraction=0.0)


@pytest.mark.parametrize(
    "binarize", [softmax_aware_binarize, threshold_binarize, argmax_binarize, bernoulli_binarize]
)
def test_probability_binarisers_pass_the_gradient_straight_through(binarize):
    p = torch.softmax(torch.randn(3, 7, generator=_gen()), -1).requires_grad_(True)
    g = torch.randn(3, 7, generator=_gen(1))
    out = binarize(p)
    assert set(out.detach().unique().tolist()) <= {0.0, 1.0}
    (grad,) = torch.autograd.grad((out * g).sum(), p)
    torch.testing.assert_close(grad, g)


def test_presoftmax_binariser_is_clipped_on_the_scores():
    s = torch.tensor([[-2.0, -0.5, 0.0, 0.5, 2.0]], requires_grad=True)
    out = presoftmax_binarize(s)
    assert out.tolist() == [[0, 0, 0, 1, 1]]  # 1[s > 0]
    out.sum().backward()
    assert s.grad.tolist() == [[0, 1, 1, 1, 0]]


def test_argmax_and_bernoulli():
    p = torch.tensor([[0.1, 0.7, 0.2], [0.4, 0.3, 0.3]])
    assert argmax_binarize(p).tolist() == [[0, 1, 0], [1, 0, 0]]
    a, b = (bernoulli_binarize(p.expand(4000, -1, -1), generator=_gen(3)) for _ in range(2))
    torch.testing.assert_close(a, b)  # same generator seed, same draws
    assert (a.mean(0) - p).abs().max() < 0.03  # E[B] = p


def test_binary_attention_in_full_precision_is_softmax_attention():
    attn = BinaryAttention(8, 2, generator=_gen())
    attn.set_binarized(False)
    x = torch.randn(2, 5, 8, generator=_gen(1))
    qkv = F.linear(x, attn.qkv.weight, attn.qkv.bias).reshape(2, 5, 3, 2, 4).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(2, 5, 8)
    torch.testing.assert_close(attn(x), F.linear(out, attn.proj.weight, attn.proj.bias))


def test_binary_attention_forward_follows_the_sab_recipe():
    attn = BinaryAttention(8, 2, scale="mean", generator=_gen())
    x = torch.randn(2, 5, 8, generator=_gen(1))
    qkv = attn.qkv(x).reshape(2, 5, 3, 2, 4).permute(2, 0, 3, 1, 4)
    q, k, v = (sign_pm1(t) for t in qkv.unbind(0))
    b = softmax_aware_binarize((q @ k.transpose(-1, -2) / 2.0).softmax(-1))
    expected = attn.proj((b @ v).transpose(1, 2).reshape(2, 5, 8))
    torch.testing.assert_close(attn(x), expected)
    probs, binary = attn.attention_maps(x)
    assert probs.shape == binary.shape == (2, 2, 5, 5)
    assert empty_row_fraction(binary) == 0.0
    x.requires_grad_(True)
    attn(x).sum().backward()
    assert x.grad is not None and math.isfinite(float(x.grad.abs().sum()))


def test_binary_attention_and_mlp_check_their_arguments():
    with pytest.raises(ValueError, match="num_heads"):
        BinaryAttention(10, 3)
    with pytest.raises(ValueError, match="binarizer"):
        BinaryAttention(8, 2, binarizer="topk")
    with pytest.raises(ValueError, match=r"\(b, n, 8\)"):
        BinaryAttention(8, 2)(torch.randn(5, 8))
    with pytest.raises(ValueError, match="activation_bits"):
        BinaryMLP(8, 16, activation_bits=8)
