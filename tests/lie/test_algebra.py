"""Tests of `perceptrons.lie`: Killing forms, Ad-invariance, brackets, hat/vee, rejection."""

from __future__ import annotations

import pytest
import torch

from perceptrons.lie import LieAlgebra, get_algebra, sl, sl3, so, so3, sp4

F64 = torch.float64


def signature(algebra: LieAlgebra) -> tuple[int, int, int]:
    eig = torch.linalg.eigvalsh(algebra.killing_matrix)
    tol = 1e-9 * eig.abs().max()
    return int((eig > tol).sum()), int((eig < -tol).sum()), int((eig.abs() <= tol).sum())


def trace_form(algebra: LieAlgebra, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.einsum("...ab,...ba->...", algebra.hat(x), algebra.hat(y))


def random_vectors(algebra: LieAlgebra, *shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(
        *shape, algebra.dim, generator=torch.Generator().manual_seed(seed), dtype=F64
    )


@pytest.mark.parametrize(
    ("algebra", "dim", "m", "scale", "sig"),
    [
        (so3(), 3, 3, 1.0, (0, 3, 0)),
        (sl3(), 8, 3, 6.0, (5, 3, 0)),
        (sp4(), 10, 4, 6.0, (6, 4, 0)),
    ],
    ids=["so3", "sl3", "sp4"],
)
def test_builtin_killing_scale_and_signature(
    algebra: LieAlgebra, dim: int, m: int, scale: float, sig: tuple[int, int, int]
) -> None:
    assert (algebra.dim, algebra.matrix_size) == (dim, m)
    assert algebra.killing_scale() == pytest.approx(scale, rel=1e-12)
    assert signature(algebra) == sig
    x, y = random_vectors(algebra, 5, seed=1), random_vectors(algebra, 5, seed=2)
    torch.testing.assert_close(algebra.killing(x, y), scale * trace_form(algebra, x, y))


def test_so3_killing_is_minus_two_dot() -> None:
    x, y = random_vectors(so3(), 7, seed=3), random_vectors(so3(), 7, seed=4)
    torch.testing.assert_close(so3().killing(x, y), -2 * (x * y).sum(-1))
    v = torch.randn(7, 3, dtype=F64)
    torch.testing.assert_close(so3().hat(x) @ v[..., None], torch.cross(x, v, dim=-1)[..., None])


@pytest.mark.parametrize("n", [4, 5])
def test_general_killing_formulas(n: int) -> None:
    assert so(n).killing_scale() == pytest.approx(n - 2, rel=1e-12)
    assert sl(n).killing_scale() == pytest.approx(2 * n, rel=1e-12)
    assert so(n).dim == n * (n - 1) // 2 and sl(n).dim == n * n - 1
    assert signature(so(n)) == (0, so(n).dim, 0)  # compact: negative definite
    assert signature(sl(n))[2] == 0


def test_sp4_basis_is_symplectic_and_in_official_order() -> None:
    j = torch.zeros(4, 4, dtype=F64)
    j[:2, 2:], j[2:, :2] = torch.eye(2), -torch.eye(2)
    e = sp4().basis
    torch.testing.assert_close(e.transpose(-1, -2) @ j + j @ e, torch.zeros_like(e))
    # First element diag(1, 0, -1, 0); fifth has its 1 at (3, 1); eighth at (1, 3) (1-based).
    assert e[0].diagonal().tolist() == [1, 0, -1, 0]
    assert e[4][2, 0] == 1 and e[4].abs().sum() == 1
    assert e[7][0, 2] == 1 and e[7].abs().sum() == 1


def test_sl3_basis_in_official_order() -> None:
    e = sl3().basis
    assert e[0].diagonal().tolist() == [1, -1, 0]
    assert e[3].diagonal().tolist() == [1, 1, -2]
    assert (e[1][0, 1], e[1][1, 0], e[2][0, 1], e[2][1, 0]) == (1, 1, -1, 1)
    assert [tuple(torch.nonzero(e[i])[0].tolist()) for i in range(4, 8)] == [
        (0, 2), (1, 2), (2, 0), (2, 1),
    ]  # fmt: skip


@pytest.mark.parametrize("algebra", [so3(), sl3(), sp4(), sl(4)], ids=lambda a: a.name)
def test_ad_preserves_killing_and_bracket(algebra: LieAlgebra) -> None:
    g = algebra.random_group_element((6,), generator=torch.Generator().manual_seed(0))
    ad = algebra.Ad(g)
    kappa = algebra.killing_matrix
    torch.testing.assert_close(ad.transpose(-1, -2) @ kappa @ ad, kappa.expand(6, -1, -1))
    a, b = random_vectors(algebra, 6, seed=1), random_vectors(algebra, 6, seed=2)

    def apply(v: torch.Tensor) -> torch.Tensor:
        return (ad @ v[..., None])[..., 0]

    torch.testing.assert_close(apply(algebra.bracket(a, b)), algebra.bracket(apply(a), apply(b)))
    torch.testing.assert_close(algebra.conjugate(a, g), apply(a))
    expected = algebra.vee(g @ algebra.hat(a) @ torch.linalg.inv(g))
    torch.testing.assert_close(apply(a), expected)


def test_bracket_matches_matrix_commutator_and_ad() -> None:
    algebra = sp4()
    a, b = random_vectors(algebra, 3, 2, seed=5), random_vectors(algebra, 3, 2, seed=6)
    ha, hb = algebra.hat(a), algebra.hat(b)
    torch.testing.assert_close(algebra.bracket(a, b), algebra.vee(ha @ hb - hb @ ha))
    torch.testing.assert_close(algebra.ad_matrix(a), torch.einsum("...i,ikj->...kj", a, algebra.ad))
    c = algebra.structure_constants
    torch.testing.assert_close(c, -c.transpose(0, 1))


def test_from_basis_with_a_random_change_of_basis() -> None:
    generator = torch.Generator().manual_seed(0)
    change = torch.randn(8, 8, generator=generator, dtype=F64) + 3 * torch.eye(8, dtype=F64)
    basis = torch.einsum("ij,jab->iab", change, sl3().basis)
    algebra = LieAlgebra.from_basis(basis, name="sl3-mixed")
    # Other dtypes are accepted (closure is then checked to their precision).
    assert LieAlgebra.from_basis(basis.float()).dim == 8
    assert LieAlgebra.from_basis(sl3().basis.to(torch.int64)).killing_scale() == pytest.approx(6)
    x = torch.randn(4, 8, generator=generator, dtype=F64)
    torch.testing.assert_close(algebra.vee(algebra.hat(x)), x)
    # The Killing form is basis-independent: B(x, y) = 6 tr(hat x hat y) in any basis.
    y = torch.randn(4, 8, generator=generator, dtype=F64)
    torch.testing.assert_close(algebra.killing(x, y), 6 * trace_form(algebra, x, y))
    assert signature(algebra) == (5, 3, 0)
    assert "sl3-mixed" in repr(algebra) and "dim=8" in repr(algebra)


def test_methods_follow_the_input_dtype() -> None:
    algebra = sl3()
    x = torch.randn(2, 8)
    g = algebra.random_group_element((2,), dtype=torch.float32)
    assert g.dtype == torch.float32 and g.shape == (2, 3, 3)
    for out in (algebra.hat(x), algebra.vee(algebra.hat(x)), algebra.bracket(x, x),
                algebra.killing(x, x), algebra.Ad(g), algebra.conjugate(x, g)):  # fmt: skip
        assert out.dtype == torch.float32


def test_random_group_elements_are_reproducible_and_so3_gives_rotations() -> None:
    g1 = so3().random_group_element((5,), generator=torch.Generator().manual_seed(3))
    g2 = so3().random_group_element((5,), generator=torch.Generator().manual_seed(3))
    assert torch.equal(g1, g2)
    torch.testing.assert_close(g1 @ g1.transpose(-1, -2), torch.eye(3, dtype=F64).expand(5, 3, 3))
    torch.testing.assert_close(torch.linalg.det(g1), torch.ones(5, dtype=F64))
    torch.testing.assert_close(
        torch.linalg.det(sl3().random_group_element((5,))), torch.ones(5, dtype=F64)
    )


def test_det_and_trace_square_invariant_frobenius_not() -> None:
    algebra = sl3()
    x = random_vectors(algebra, 200, seed=7) * 0.5
    g = algebra.random_group_element((200,), generator=torch.Generator().manual_seed(8))
    hx, hgx = algebra.hat(x), algebra.hat(algebra.conjugate(x, g))
    torch.testing.assert_close(torch.linalg.det(hgx), torch.linalg.det(hx))
    torch.testing.assert_close(
        trace_form(algebra, x, x), trace_form(algebra, *(algebra.conjugate(x, g),) * 2)
    )
    frobenius = (hx * hx).sum((-1, -2))
    frobenius_g = (hgx * hgx).sum((-1, -2))
    assert ((frobenius_g - frobenius).abs() / frobenius).max() > 0.1
    # ... while under rotations (orthogonal g, here from so(3) inside sl(3)) it is invariant.
    r = so3().random_group_element((200,), generator=torch.Generator().manual_seed(9))
    hrx = r @ hx @ r.transpose(-1, -2)
    torch.testing.assert_close((hrx * hrx).sum((-1, -2)), frobenius)


def test_act_on_feature_tensors() -> None:
    algebra = sp4()
    g = algebra.random_group_element((3,), generator=torch.Generator().manual_seed(0))
    x = torch.randn(3, 2, 10, 5, dtype=F64)
    ad = algebra.Ad(g)
    expected = torch.einsum("bkj,bcjn->bckn", ad, x)
    torch.testing.assert_close(algebra.act(g, x), expected)
    torch.testing.assert_close(algebra.apply_adjoint(ad, x), expected)
    torch.testing.assert_close(algebra.act(g[0], x), torch.einsum("kj,bcjn->bckn", ad[0], x))
    torch.testing.assert_close(algebra.act(g, x.movedim(2, -1), axis=-1), expected.movedim(2, -1))
    with pytest.raises(ValueError, match=r"\(\*, \*, 10, \*\)"):
        algebra.act(g, x.movedim(2, -1))
    with pytest.raises(ValueError, match="axis 0"):
        algebra.apply_adjoint(ad, x.movedim(2, 0), axis=0)
    with pytest.raises(ValueError, match=r"\(3, 10, 10\)"):
        algebra.apply_adjoint(ad[:2], x)


def test_bad_inputs_name_the_expected_shape() -> None:
    algebra = sl3()
    with pytest.raises(ValueError, match=r"\(\*, 8\)"):
        algebra.hat(torch.zeros(2, 7))
    with pytest.raises(ValueError, match=r"\(\*, 3, 3\)"):
        algebra.vee(torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match=r"expected shape \(3, 3\)"):
        algebra.Ad(torch.eye(4))
    with pytest.raises(TypeError):
        algebra.hat([0.0] * 8)
    with pytest.raises(ValueError, match="scale"):
        algebra.random_group_element(scale=0.0)


def se3_basis() -> torch.Tensor:
    basis = torch.zeros(6, 4, 4, dtype=F64)
    for i in range(3):
        basis[i, i, 3] = 1.0  # translations
    basis[3:, :3, :3] = so3().basis  # rotations
    return basis


def test_non_semisimple_algebras_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"se\(3\) is not semisimple"):
        LieAlgebra.from_basis(se3_basis(), name="se(3)")
    abelian = torch.diag_embed(torch.eye(3, dtype=F64))  # the diagonal matrices: abelian
    with pytest.raises(ValueError, match="custom is not semisimple"):
        LieAlgebra.from_basis(abelian)


def test_invalid_bases_are_rejected() -> None:
    e = sl3().basis
    with pytest.raises(ValueError, match="linearly dependent"):
        LieAlgebra.from_basis(torch.cat([e, e[:1] + e[1:2]]))
    with pytest.raises(ValueError, match="not closed"):
        LieAlgebra.from_basis(e[:5])
    with pytest.raises(ValueError, match=r"\(K, m, m\)"):
        LieAlgebra.from_basis(torch.zeros(3, 2, 3))
    with pytest.raises(ValueError, match="finite"):
        LieAlgebra.from_basis(e * float("nan"))


def test_get_algebra_names_and_copies() -> None:
    import copy

    assert get_algebra("so3") is so3() and get_algebra("so(3)") is so3() and so(3) is so3()
    assert get_algebra("sl3") is sl3() and get_algebra("sp4") is sp4()
    assert get_algebra("sl(4)") is sl(4) and get_algebra(sl3()) is sl3()
    assert copy.deepcopy(sl3()) is sl3()
    with pytest.raises(ValueError, match="se3"):
        get_algebra("se3")
    with pytest.raises(ValueError, match="n: expected an int >= 3"):
        so(2)
