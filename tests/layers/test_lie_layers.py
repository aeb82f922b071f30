"""Tests of the Lie Neurons layers: equivariance (float64 and float32), semantics, shapes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from perceptrons.layers import (
    LieBracket,
    LieInvariant,
    LieLB,
    LieLinear,
    LieLR,
    LieMaxPool,
    LieReLU,
)
from perceptrons.lie import LieAlgebra, sl3, so3, sp4
from perceptrons.testing import check_model, equivariance_error

ALGEBRAS = [so3(), sl3(), sp4()]
C = 3

# name -> (factory(algebra, generator), whether it takes (b, c, K, n) inputs only)
LAYERS: dict[str, tuple[Callable[[LieAlgebra, torch.Generator], nn.Module], bool]] = {
    "linear": (lambda a, g: LieLinear(C, 4, algebra=a, generator=g), False),
    "relu": (lambda a, g: LieReLU(C, algebra=a, generator=g), False),
    "relu_leaky_shared": (
        lambda a, g: LieReLU(
            C, algebra=a, negative_slope=0.2, share_nonlinearity=True, generator=g
        ),
        False,
    ),
    "bracket": (lambda a, g: LieBracket(C, algebra=a, generator=g), False),
    "bracket_no_residual": (
        lambda a, g: LieBracket(C, algebra=a, residual=False, generator=g),
        False,
    ),
    "maxpool": (lambda a, g: LieMaxPool(C, algebra=a, generator=g), True),
    "maxpool_abs": (lambda a, g: LieMaxPool(C, algebra=a, absolute=True, generator=g), True),
    "self_killing": (lambda a, g: LieInvariant(C, algebra=a), False),
    "learned_killing": (
        lambda a, g: LieInvariant(
            C, algebra=a, kind="learned_killing", num_directions=2, generator=g
        ),
        False,
    ),
    "det": (lambda a, g: LieInvariant(C, algebra=a, kind="det"), False),
    "lr": (lambda a, g: LieLR(C, 4, algebra=a, negative_slope=0.2, generator=g), False),
    "lb": (lambda a, g: LieLB(C, 4, algebra=a, generator=g), False),
}


def features(algebra: LieAlgebra, *shape: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    b, c, *rest = shape
    return torch.randn(b, c, algebra.dim, *rest, generator=generator, dtype=torch.float64)


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("algebra", ALGEBRAS, ids=lambda a: a.name)
def test_layer_equivariance(name: str, algebra: LieAlgebra) -> None:
    factory, points_only = LAYERS[name]
    if name == "det" and algebra is so3():
        pytest.skip("det(hat x) is identically 0 on so(3) (skew 3x3 matrices)")
    layer = factory(algebra, torch.Generator().manual_seed(0))
    x = features(algebra, 4, C, 5, seed=1)  # (b, c, K, n)
    generator = torch.Generator().manual_seed(3)
    err64 = equivariance_error(layer, algebra, x, num_trials=20, generator=generator)
    assert err64.max < 1e-9, (name, err64)
    assert err64.invariant == (name in ("self_killing", "learned_killing", "det"))
    if not points_only:
        x = features(algebra, 4, C, seed=2)  # (b, c, K)
    err32 = equivariance_error(
        layer, algebra, x, num_trials=10, generator=generator, dtype=torch.float32
    )
    assert err32.max <= 1e-4, (name, err32)


def test_deep_stack_is_invariant_in_float32() -> None:
    algebra = sl3()
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(
        LieLR(2, 16, algebra=algebra, generator=g),
        LieLB(16, 16, algebra=algebra, generator=g),
        LieMaxPool(16, algebra=algebra, generator=g),
        LieInvariant(16, algebra=algebra),
        nn.Linear(16, 1),
    )
    x = 0.5 * features(algebra, 8, 2, 6, seed=4)
    err = equivariance_error(model, algebra, x, generator=torch.Generator().manual_seed(5))
    assert err.invariant and err.max < 1e-9
    err32 = equivariance_error(
        model, algebra, x, generator=torch.Generator().manual_seed(5), dtype=torch.float32
    )
    assert err32.max < 1e-5


def test_relu_semantics() -> None:
    algebra = sl3()
    layer = LieReLU(2, algebra=algebra, generator=torch.Generator().manual_seed(0))
    x = features(algebra, 64, 2, seed=1).float()
    d = torch.einsum("oc,bck->bok", layer.weight, x)
    kf = algebra.killing(x, d)[..., None]
    expected = torch.where(kf <= 0, x, x + kf * d)  # not normalised by |d|
    torch.testing.assert_close(layer(x), expected)
    assert (kf > 0).any() and (kf <= 0).any()
    leaky = LieReLU(2, algebra=algebra, negative_slope=0.2)
    leaky.load_state_dict(layer.state_dict())
    torch.testing.assert_close(leaky(x), 0.2 * x + 0.8 * expected)
    shared = LieReLU(5, algebra=algebra, share_nonlinearity=True)
    assert shared.weight.shape == (1, 5)


def test_bracket_and_linear_semantics() -> None:
    algebra = sp4()
    x = features(algebra, 2, C, 4, seed=0).float()
    linear = LieLinear(C, 5, algebra=algebra)
    torch.testing.assert_close(linear(x), torch.einsum("oc,bckn->bokn", linear.weight, x))
    bracket = LieBracket(C, algebra=algebra)
    left = torch.einsum("oc,bckn->bonk", bracket.weight_left, x)
    right = torch.einsum("oc,bckn->bonk", bracket.weight_right, x)
    hl, hr = algebra.hat(left), algebra.hat(right)
    expected = x + algebra.vee(hl @ hr - hr @ hl).movedim(-1, 2)
    torch.testing.assert_close(bracket(x), expected)


def test_maxpool_and_invariant_shapes_and_values() -> None:
    algebra = sl3()
    x = features(algebra, 2, C, 7, seed=0).float()
    pool = LieMaxPool(C, algebra=algebra)
    assert not list(pool.parameters()) and "weight" in pool.state_dict()  # a fixed buffer
    out = pool(x)
    assert out.shape == (2, C, 8)
    score = algebra.killing(x.movedim(2, -1), torch.einsum("oc,bckn->bonk", pool.weight, x))
    index = score.argmax(-1)
    torch.testing.assert_close(out[1, 2], x[1, 2, :, index[1, 2]])
    self_killing = LieInvariant(C, algebra=algebra)
    assert self_killing(x).shape == (2, C, 7) and self_killing(x[..., 0]).shape == (2, C)
    torch.testing.assert_close(self_killing(x[..., 0]), algebra.killing(x[..., 0], x[..., 0]))
    learned = LieInvariant(C, algebra=algebra, kind="learned_killing", num_directions=4)
    assert learned(x).shape == (2, 12, 7) and learned.out_channels == 12
    d = learned.directions(x[..., 0])
    torch.testing.assert_close(
        learned(x[..., 0])[:, 1 * 4 + 2], algebra.killing(x[:, 1, :, 0], d[:, 2])
    )
    det = LieInvariant(C, algebra=algebra, kind="det")
    torch.testing.assert_close(det(x[..., 0]), torch.linalg.det(algebra.hat(x[..., 0])))


@pytest.mark.parametrize("name", list(LAYERS))
def test_bad_inputs_name_the_expected_shape(name: str) -> None:
    algebra = sl3()
    factory, points_only = LAYERS[name]
    layer = factory(algebra, torch.Generator().manual_seed(0))
    good = features(algebra, 2, C, 4).float()
    wrong_k = torch.zeros(2, C, 7, 4)
    wrong_channels = torch.zeros(2, C + 1, 8, 4)
    wrong_rank = torch.zeros(2, C, 8, 4, 1)
    expected = r"\(batch, 3, 8, num_points\)"
    for bad in (wrong_k, wrong_channels, wrong_rank):
        with pytest.raises(ValueError, match=expected):
            layer(bad)
    if points_only:
        with pytest.raises(ValueError, match=expected):
            layer(good[..., 0])
    else:
        with pytest.raises(ValueError, match=r"\(batch, 3, 8\)"):
            layer(wrong_k[..., 0])
    with pytest.raises(TypeError):
        layer(good.long())
    layer(good)  # and the good input passes


def test_constructor_validation_and_repr() -> None:
    with pytest.raises(ValueError, match="in_channels"):
        LieLinear(0, 2, algebra="sl3")
    with pytest.raises(ValueError, match="negative_slope"):
        LieReLU(2, algebra="sl3", negative_slope=1.5)
    with pytest.raises(ValueError, match="kind"):
        LieInvariant(2, algebra="sl3", kind="trace")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="num_directions"):
        LieInvariant(2, algebra="sl3", num_directions=3)
    with pytest.raises(ValueError, match="algebra"):
        LieLinear(2, 2, algebra="se3")
    assert "sp4" in repr(LieBracket(2, algebra="sp4"))


def test_generator_device_dtype_and_backward() -> None:
    algebra = sl3()

    def build(seed: int) -> nn.Module:
        g = torch.Generator().manual_seed(seed)
        return nn.Sequential(
            LieLR(2, 4, algebra=algebra, generator=g, dtype=torch.float64),
            LieLB(4, 4, algebra=algebra, generator=g, dtype=torch.float64),
            LieInvariant(4, algebra=algebra, kind="learned_killing", generator=g,
                         dtype=torch.float64),
        )  # fmt: skip

    first, second = build(0), build(0)
    for p, q in zip(first.parameters(), second.parameters(), strict=True):
        assert p.dtype == torch.float64 and torch.equal(p, q)
    assert not torch.equal(next(build(1).parameters()), next(first.parameters()))
    bound = 1 / 2**0.5
    assert first[0].linear.weight.abs().max() <= bound
    x = features(algebra, 3, 2, 5)
    first(x).sum().backward()
    for name, p in first.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("name", ["lr", "lb", "maxpool", "learned_killing"])
def test_layers_pass_the_shipped_model_checks(name: str) -> None:
    factory, _ = LAYERS[name]
    layer = factory(sl3(), torch.Generator().manual_seed(0))
    x = features(sl3(), 3, C, 4).float()
    check_model(layer, x, checks=("forward_shapes", "backward", "float64"))


def _pool_with_identity_weight(algebra: LieAlgebra, absolute: bool) -> LieMaxPool:
    pool = LieMaxPool(C, algebra=algebra, absolute=absolute, dtype=torch.float64)
    pool.weight.copy_(torch.eye(C, dtype=torch.float64))  # d = x: the score is B(x, x)
    return pool


def test_maxpool_absolute_ranks_by_the_magnitude_on_so3() -> None:
    """so(3)'s Killing form is negative definite, so with ``d = x`` the signed score B(x, x)
    is largest at the shortest point and |B(x, x)| at the longest one."""
    algebra = so3()
    g = torch.Generator().manual_seed(0)
    b, n = 2, 5
    directions = torch.randn(b, C, 3, n, generator=g, dtype=torch.float64)
    directions = directions / directions.norm(dim=2, keepdim=True)
    radii = torch.stack([torch.randperm(n, generator=g) for _ in range(b * C)]).view(b, C, n)
    x = directions * (0.5 + radii[:, :, None, :])  # distinct norms, a different order per channel
    longest, shortest = radii.argmax(-1), radii.argmin(-1)  # (b, c)
    assert (longest != shortest).all()
    channels = torch.arange(C)
    for absolute, index in ((True, longest), (False, shortest)):
        out = _pool_with_identity_weight(algebra, absolute)(x)
        for i in range(b):
            torch.testing.assert_close(out[i], x[i, channels, :, index[i]], rtol=0, atol=0)


def test_maxpool_absolute_picks_a_negative_score_on_sl3() -> None:
    """sl(3) with B(X, Y) = 6 tr(XY): a symmetric point scores +6|S|^2, a skew one -6|A|^2.
    With ``d = x``, each channel has a unit skew point (score -6, the largest |B|), a symmetric
    one of norm 0.2 (the largest B) and symmetric ones of norm 0.1, at random positions."""
    algebra = sl3()
    g = torch.Generator().manual_seed(1)
    b, n = 2, 4

    def traceless(m: torch.Tensor) -> torch.Tensor:  # minus trace/3 times the identity
        return (
            m - torch.eye(3, dtype=m.dtype) * m.diagonal(dim1=-2, dim2=-1).mean(-1)[..., None, None]
        )

    raw = torch.randn(b, C, n, 3, 3, generator=g, dtype=torch.float64)
    symmetric = traceless(raw + raw.transpose(-1, -2))
    skew = raw - raw.transpose(-1, -2)
    symmetric = 0.2 * symmetric / torch.linalg.matrix_norm(symmetric)[..., None, None]
    skew = skew / torch.linalg.matrix_norm(skew)[..., None, None]
    sym_pos = torch.stack([torch.randperm(n, generator=g)[:2] for _ in range(b * C)]).view(b, C, 2)
    matrices = 0.5 * symmetric
    bi, ci = torch.meshgrid(torch.arange(b), torch.arange(C), indexing="ij")
    matrices[bi, ci, sym_pos[..., 0]] = symmetric[bi, ci, sym_pos[..., 0]]
    matrices[bi, ci, sym_pos[..., 1]] = skew[bi, ci, sym_pos[..., 1]]
    x = algebra.vee(matrices).movedim(-1, 2)  # (b, c, K, n)
    torch.testing.assert_close(algebra.hat(x.movedim(2, -1)), matrices)  # in the algebra
    score = 6 * torch.einsum("bcnij,bcnji->bcn", matrices, matrices)  # 6 tr(X X)
    signed, magnitude = score.argmax(-1), score.abs().argmax(-1)
    torch.testing.assert_close(signed, sym_pos[..., 0], rtol=0, atol=0)
    torch.testing.assert_close(magnitude, sym_pos[..., 1], rtol=0, atol=0)
    torch.testing.assert_close(
        score[bi, ci, magnitude], torch.full((b, C), -6.0, dtype=torch.float64)
    )
    for absolute, index in ((True, magnitude), (False, signed)):
        out = _pool_with_identity_weight(algebra, absolute)(x)
        expected = x.gather(3, index[:, :, None, None].expand(-1, -1, x.shape[2], 1))[..., 0]
        torch.testing.assert_close(out, expected, rtol=0, atol=0)


def test_maxpool_mixes_channels_before_scoring() -> None:
    """With a random W the score is B(x_cn, sum_j W_cj x_jn), written with 6 tr on sl(3)."""
    algebra = sl3()
    g = torch.Generator().manual_seed(2)
    pool = LieMaxPool(C, algebra=algebra, absolute=True, generator=g, dtype=torch.float64)
    signed = LieMaxPool(C, algebra=algebra, dtype=torch.float64)
    signed.load_state_dict(pool.state_dict())
    x = features(algebra, 8, C, 6, seed=3)
    hx = algebra.hat(x.movedim(2, -1))  # (b, c, n, 3, 3)
    hd = torch.einsum("cj,bjnkl->bcnkl", pool.weight, hx)
    score = 6 * torch.einsum("bcnij,bcnji->bcn", hx, hd)
    for module, index in ((pool, score.abs().argmax(-1)), (signed, score.argmax(-1))):
        expected = x.gather(3, index[:, :, None, None].expand(-1, -1, x.shape[2], 1))[..., 0]
        torch.testing.assert_close(module(x), expected, rtol=0, atol=0)
    assert (score.abs().argmax(-1) != score.argmax(-1)).any()  # the two rankings differ here


def test_relu_shared_direction_on_points_written_out() -> None:
    """``share_nonlinearity``: one direction d = sum_c U_c x_c for every channel; (b, c, K, n)
    inputs; B(X, Y) = 6 tr(XY) on sl(3)."""
    algebra = sl3()
    g = torch.Generator().manual_seed(4)
    layer = LieReLU(
        C,
        algebra=algebra,
        negative_slope=0.2,
        share_nonlinearity=True,
        generator=g,
        dtype=torch.float64,
    )
    x = features(algebra, 4, C, 5, seed=5)  # (b, c, K, n)
    d = torch.einsum("c,bckn->bkn", layer.weight[0], x)  # the shared direction
    hx, hd = algebra.hat(x.movedim(2, -1)), algebra.hat(d.movedim(1, -1))
    kf = 6 * torch.einsum("bcnij,bnji->bcn", hx, hd)[:, :, None, :]  # (b, c, 1, n)
    plain = torch.where(kf <= 0, x, x + kf * d[:, None])
    torch.testing.assert_close(layer(x), 0.2 * x + 0.8 * plain, rtol=1e-12, atol=1e-12)
    assert (kf > 0).any() and (kf <= 0).any()
