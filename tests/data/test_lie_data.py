"""Tests of the Lie Neurons data generators (`perceptrons.data.lie`, `.platonic`)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from perceptrons.data import lie as data
from perceptrons.data import platonic
from perceptrons.lie import LieAlgebra, sl3, so3, sp4

F64 = torch.float64


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


# ------------------------------------------------------------------ shapes, dtypes, seeds


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_shapes_and_dtypes(dtype: torch.dtype) -> None:
    for algebra in (sl3(), sp4()):
        x, y = data.invariant_regression(algebra, 7, generator=0, dtype=dtype)
        assert x.shape == (7, 2, algebra.dim) and y.shape == (7,)
        assert x.dtype == y.dtype == dtype
        assert float(x.abs().max()) <= 0.5
    x, y = data.equivariant_regression(sl3(), 5, generator=0, dtype=dtype)
    assert x.shape == (5, 2, 8) and y.shape == (5, 8) and y.dtype == dtype
    x, y = data.bch_regression(6, generator=0, dtype=dtype)
    assert x.shape == (6, 2, 3) and y.shape == (6, 3) and y.dtype == dtype
    x, y = platonic.platonic_homographies(4, generator=0, num_edges=5, dtype=dtype)
    assert x.shape == (4, 3, 8, 5) and x.dtype == dtype
    assert y.shape == (4,) and y.dtype == torch.int64
    r = platonic.random_rotations(3, generator=0, dtype=dtype)
    assert r.shape == (3, 3, 3) and r.dtype == dtype


def test_float32_is_the_rounding_of_float64() -> None:
    x64, y64 = data.invariant_regression(sl3(), 20, generator=3)
    x32, y32 = data.invariant_regression(sl3(), 20, generator=3, dtype=torch.float32)
    assert torch.equal(x32, x64.float()) and torch.equal(y32, y64.float())


@pytest.mark.parametrize(
    "make",
    [
        lambda g: data.invariant_regression(sp4(), 10, generator=g),
        lambda g: data.equivariant_regression(sl3(), 10, generator=g),
        lambda g: data.bch_regression(10, generator=g),
        lambda g: platonic.platonic_homographies(10, generator=g, rotated=True),
        lambda g: (platonic.random_rotations(4, generator=g),),
    ],
)
def test_determinism(make) -> None:
    first, again = make(11), make(torch.Generator().manual_seed(11))
    other = make(12)
    for a, b in zip(first, again, strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(first[0], other[0])


# ------------------------------------------------------------------ invariant / equivariant


@pytest.mark.parametrize("algebra", [sl3(), sp4()], ids=["sl3", "sp4"])
def test_invariant_target_is_invariant_under_conjugation(algebra: LieAlgebra) -> None:
    x, y = data.invariant_regression(algebra, 200, generator=1)
    x_conj, g = data.random_conjugation(algebra, x, generator=2)
    assert g.shape == (200, algebra.matrix_size, algebra.matrix_size)
    assert rel_err(x_conj, x) > 1e-2  # the conjugation does change the inputs
    assert rel_err(data.invariant_target(algebra, x_conj), y) < 1e-9


def test_invariant_target_formula() -> None:
    algebra = sl3()
    x, y = data.invariant_regression(algebra, 3, generator=4)
    a, b = algebra.hat(x[:, 0]), algebra.hat(x[:, 1])
    for i in range(3):
        t1, t2 = torch.trace(a[i] @ a[i]), torch.trace(b[i] @ b[i])
        f = torch.sin(t1) + torch.cos(t2) - t2**3 / 2 + torch.det(a[i] @ b[i]) + torch.exp(t1)
        assert torch.allclose(y[i], f, rtol=1e-12)


def test_equivariant_target_is_equivariant() -> None:
    algebra = sl3()
    x, y = data.equivariant_regression(algebra, 200, generator=5)
    x_conj, g = data.random_conjugation(algebra, x, generator=6)
    y_of_conj = data.equivariant_target(algebra, x_conj)
    conj_of_y = data.conjugate(algebra, y[:, None], g)[:, 0]
    assert rel_err(y_of_conj, conj_of_y) < 1e-9
    # the target is [[X, Y], Y] + [Y, X]
    xa, xb = x[:, 0], x[:, 1]
    expected = algebra.bracket(algebra.bracket(xa, xb), xb) + algebra.bracket(xb, xa)
    assert rel_err(y, expected) < 1e-12


# ------------------------------------------------------------------ conjugation


@pytest.mark.parametrize("algebra", [so3(), sl3(), sp4()], ids=["so3", "sl3", "sp4"])
def test_conjugate_matches_the_matrix_action(algebra: LieAlgebra) -> None:
    gen = torch.Generator().manual_seed(7)
    k, m = algebra.dim, algebra.matrix_size
    x = torch.randn((4, 3, k, 5), generator=gen, dtype=F64)
    g = algebra.random_group_element((4,), generator=gen)
    direct = algebra.vee(
        g[:, None, None] @ algebra.hat(x.movedim(2, -1)) @ torch.linalg.inv(g)[:, None, None]
    ).movedim(-1, 2)
    assert rel_err(data.conjugate(algebra, x, g), direct) < 1e-12
    assert rel_err(data.conjugate(algebra, x, g), algebra.act(g, x)) < 1e-12
    # one g for every sample, and (n, C, K) features
    assert rel_err(data.conjugate(algebra, x[..., 0], g[0]), algebra.act(g[0], x[..., 0])) < 1e-12
    out32 = data.conjugate(algebra, x.float(), g.float())
    assert out32.dtype == torch.float32 and out32.shape == x.shape
    assert g.shape == (4, m, m)


def test_conjugate_rejects_bad_arguments() -> None:
    algebra = sl3()
    x = torch.zeros(2, 3, 8)
    g = torch.eye(3)
    with pytest.raises(ValueError, match=r"x: expected shape \(n, C, 8\) or \(n, C, 8, N\)"):
        data.conjugate(algebra, torch.zeros(2, 8), g)
    with pytest.raises(ValueError, match=r"x: expected shape \(n, C, 8\)"):
        data.conjugate(algebra, torch.zeros(2, 3, 7), g)
    with pytest.raises(ValueError, match=r"g: expected shape \(2, 3, 3\)"):
        data.conjugate(algebra, x, torch.eye(3).expand(5, 3, 3))
    with pytest.raises(TypeError, match="algebra: expected a perceptrons.lie.LieAlgebra"):
        data.conjugate("sl3", x, g)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="x: expected a tensor"):
        data.conjugate(algebra, np.zeros((2, 3, 8)), g)  # type: ignore[arg-type]
    # a non-symplectic g takes sp(4) out of itself
    with pytest.raises(ValueError, match="leaves the algebra"):
        data.conjugate(sp4(), torch.zeros(2, 1, 10), torch.diag(torch.tensor([1.0, 2, 3, 4])))


# ------------------------------------------------------------------ so(3) and BCH


def test_rotation_exp_uses_the_so3_basis() -> None:
    v = torch.randn(10, 3, generator=torch.Generator().manual_seed(8), dtype=F64)
    assert rel_err(data.rotation_exp(v), torch.linalg.matrix_exp(so3().hat(v))) < 1e-14


def test_rotation_log_inverts_exp_over_the_whole_range() -> None:
    gen = torch.Generator().manual_seed(9)
    axis = torch.nn.functional.normalize(torch.randn(600, 3, generator=gen, dtype=F64), dim=-1)
    angle = torch.cat(
        [
            torch.rand(200, generator=gen, dtype=F64) * math.pi,
            math.pi - 10 ** -torch.linspace(1, 12, 200, dtype=F64),  # just below π
            10 ** -torch.linspace(1, 15, 199, dtype=F64),  # tiny
            torch.zeros(1, dtype=F64),
        ]
    )
    v = axis * angle[:, None]
    rot = data.rotation_exp(v)
    back = data.rotation_log(rot)
    assert (back - v).abs().max() < 1e-8  # the axis sign is well determined below π
    assert (data.rotation_exp(back) - rot).abs().max() < 1e-12
    # exactly π (R symmetric): either sign is a logarithm; the largest component is positive
    half_turn = torch.diag(torch.tensor([-1.0, 1.0, -1.0], dtype=F64))[None]
    log = data.rotation_log(half_turn)
    assert torch.allclose(log, torch.tensor([[0.0, math.pi, 0.0]], dtype=F64), atol=1e-7)
    assert (data.rotation_exp(log) - half_turn).abs().max() < 1e-12


def test_bch_target_is_the_log_of_the_product() -> None:
    x, y = data.bch_regression(500, generator=10)
    rot1, rot2 = data.rotation_exp(x[:, 0]), data.rotation_exp(x[:, 1])
    assert (data.rotation_exp(y) - rot1 @ rot2).abs().max() < 1e-9
    assert float(x.norm(dim=-1).max()) < math.pi
    assert float(y.norm(dim=-1).max()) <= math.pi + 1e-12
    error = data.rotation_log_error(x[:, 0], x[:, 1], y)
    assert error.shape == (500,) and float(error.max()) < 1e-9
    # directions cover the sphere (the official positive-octant draw would not)
    assert bool((x < 0).any(0).all())


def test_bch_series_error_decreases_with_order() -> None:
    x, y = data.bch_regression(400, generator=11, max_angle=0.5)
    assert float(x.norm(dim=-1).max()) < 0.5
    errors = [
        float(data.rotation_log_error(x[:, 0], x[:, 1], data.bch_series(x, order)).mean())
        for order in (1, 2, 3)
    ]
    assert errors[0] > 3 * errors[1] > 9 * errors[2] > 0
    assert torch.equal(data.bch_series(x, 1), x[:, 0] + x[:, 1])


def test_bch_target_is_so3_equivariant() -> None:
    x, y = data.bch_regression(100, generator=12)
    r = platonic.random_rotations(100, generator=13)
    x_rot = data.conjugate(so3(), x, r)
    y_rot = data.conjugate(so3(), y[:, None], r)[:, 0]
    target = data.rotation_log(data.rotation_exp(x_rot[:, 0]) @ data.rotation_exp(x_rot[:, 1]))
    assert (target - y_rot).abs().max() < 1e-9
    assert torch.allclose(x_rot[:, :, None] @ x_rot[..., None], x[:, :, None] @ x[..., None])


# ------------------------------------------------------------------ Platonic solids


def test_platonic_solid_geometry() -> None:
    for name, num_edges in zip(platonic.PLATONIC_CLASSES, (12, 24, 60), strict=True):
        solid = platonic.platonic_solid_homographies(name)
        assert solid.num_edges == num_edges
        assert solid.elements.shape == (num_edges, 3, 8)
        assert solid.homographies.shape == (num_edges, 3, 3, 3)
        assert solid.points.shape == (num_edges, 8, 3)
        # both directions of every edge, with distinct apexes on its two faces
        edges = {tuple(e) for e in solid.edges.tolist()}
        assert len(edges) == num_edges and all((b, a) in edges for a, b in edges)
        assert bool((solid.apexes[:, 0] != solid.apexes[:, 1]).all())
        # the left face's normal (p2 - p1) x (p3 - p1) points away from the centre
        v = solid.vertices
        p1, p2 = v[solid.edges[:, 0]], v[solid.edges[:, 1]]
        p3 = v[solid.apexes[:, 0]]
        normal = torch.linalg.cross(p2 - p1, p3 - p1)
        centre = torch.tensor(platonic.PLATONIC_CENTER, dtype=F64)
        assert bool(((normal * ((p1 + p2 + p3) / 3 - centre)).sum(-1) > 0).all())
        # points are the projections of the vertices onto z = 1
        assert torch.allclose(solid.points[:, 0], p1 / p1[:, 2:])
        assert torch.allclose(solid.points[..., 2], torch.ones(()).double())


def test_platonic_homographies_map_the_face_quadrilaterals() -> None:
    targets = ([0, 3, 5, 1], [1, 0, 6, 3], [3, 1, 7, 0])
    for name in platonic.PLATONIC_CLASSES:
        solid = platonic.platonic_solid_homographies(name)
        h = solid.homographies
        assert torch.allclose(torch.linalg.det(h), torch.ones(()).double(), atol=1e-12)
        src = solid.points[:, [0, 1, 4, 2]]  # (E, 4, 3): p1, p2, p5, p3
        for j, index in enumerate(targets):
            image = src @ h[:, j].transpose(-1, -2)  # H p for every point
            image = image / image[..., 2:]
            assert (image - solid.points[:, index]).abs().max() < 1e-9


def test_platonic_homographies_are_induced_by_symmetries_of_the_solid() -> None:
    for name in platonic.PLATONIC_CLASSES:
        solid = platonic.platonic_solid_homographies(name)
        v = solid.vertices
        centre = v.mean(0)
        a, b = solid.edges.unbind(-1)
        left, right = solid.apexes.unbind(-1)
        src = torch.stack([v[a], v[b], v[left]], 1) - centre  # (E, 3, 3) rows p1, p2, p3
        normal = torch.linalg.cross(v[b] - v[a], v[left] - v[a])  # plane n·X = n·p1
        offset = (normal * v[a]).sum(-1)
        eye = torch.eye(3, dtype=F64)
        for j, target in enumerate(([a, right, b], [b, a, right], [right, b, a])):
            dst = torch.stack([v[t] for t in target], 1) - centre
            q = torch.linalg.solve(src, dst).transpose(-1, -2)  # q @ src_i = dst_i
            assert (q.transpose(-1, -2) @ q - eye).abs().max() < 1e-9
            assert torch.allclose(torch.linalg.det(q), torch.ones(()).double())
            # q permutes the vertices: a rotational symmetry of the solid
            image = (v - centre) @ q.transpose(-1, -2)  # (E, V, 3)
            gap = (image[:, :, None] - (v - centre)).norm(dim=-1).min(-1).values
            assert float(gap.max()) < 1e-9
            # the plane-induced homography of X -> q (X - c) + c, scaled to det 1
            shift = centre - q @ centre
            h = q + shift[:, :, None] * normal[:, None, :] / offset[:, None, None]
            det = torch.linalg.det(h)
            h = h / (det.sign() * det.abs().pow(1 / 3))[:, None, None]
            assert (h - solid.homographies[:, j]).abs().max() < 1e-9


def test_platonic_elements_are_real_logarithms() -> None:
    for name in platonic.PLATONIC_CLASSES:
        solid = platonic.platonic_solid_homographies(name)
        h = solid.homographies
        mats = sl3().hat(solid.elements)
        assert torch.allclose(
            torch.diagonal(mats, dim1=-2, dim2=-1).sum(-1), torch.zeros(()).double()
        )
        expm = torch.linalg.matrix_exp(mats)
        assert torch.allclose(torch.linalg.det(expm), torch.ones(()).double(), atol=1e-10)
        exact = solid.exact_log
        assert (expm[exact] - h[exact]).abs().max() < 1e-9
        # elsewhere exp(x) = H S with S an involution commuting with H (the real part of the log)
        inexact = ~exact
        assert bool(inexact[:, 1].all())  # the half-turn homographies have no real logarithm
        s = expm[inexact] @ torch.linalg.inv(h[inexact])
        eye = torch.eye(3, dtype=F64)
        assert (s @ s - eye).abs().max() < 1e-8
        assert (s @ h[inexact] - h[inexact] @ s).abs().max() < 1e-8


def test_platonic_samples_balance_and_membership() -> None:
    x, y = platonic.platonic_homographies(3000, generator=14, num_edges=4)
    counts = torch.bincount(y, minlength=3).double() / 3000
    assert bool(((counts - 1 / 3).abs() < 0.03).all())
    for label, name in enumerate(platonic.PLATONIC_CLASSES):
        table = platonic.platonic_solid_homographies(name).elements.reshape(-1, 24)
        edges = x[y == label].permute(0, 3, 1, 2).reshape(-1, 24)
        distance = (
            torch.cdist(edges, table, compute_mode="donot_use_mm_for_euclid_dist").min(-1).values
        )
        assert float(distance.max()) == 0.0  # every edge is one of that solid's edges
    assert x.shape == (3000, 3, 8, 4)


def test_camera_rotation_conjugates_the_homographies() -> None:
    solid = platonic.platonic_solid_homographies("octahedron")
    x = solid.elements[None].permute(0, 2, 3, 1)  # (1, 3, 8, E)
    r = platonic.random_rotations(1, generator=15)[0]
    x_rot = platonic.rotate_camera(x, r)
    mats = torch.linalg.matrix_exp(sl3().hat(x_rot.permute(0, 3, 1, 2)[0]))
    exact = solid.exact_log
    expected = r @ solid.homographies @ r.T
    assert (mats[exact] - expected[exact]).abs().max() < 1e-9


def test_rotation_keeps_the_self_killing_invariants() -> None:
    algebra = sl3()
    x, y = platonic.platonic_homographies(50, generator=16)
    x_rot, y_rot = platonic.platonic_homographies(50, generator=16, rotated=True)
    assert torch.equal(y, y_rot)  # same classes and edges, then one rotation per sample
    assert rel_err(x_rot, x) > 1e-2

    def invariants(z: torch.Tensor) -> torch.Tensor:
        v = z.movedim(2, -1)
        return algebra.killing(v, v)

    assert rel_err(invariants(x_rot), invariants(x)) < 1e-10
    # the paper's protocol: the whole set under each of several shared rotations
    for r in platonic.random_rotations(3, generator=17):
        assert rel_err(invariants(platonic.rotate_camera(x, r)), invariants(x)) < 1e-10


def test_random_rotations_are_haar_rotations() -> None:
    r = platonic.random_rotations(4000, generator=18)
    eye = torch.eye(3, dtype=F64)
    assert (r.transpose(-1, -2) @ r - eye).abs().max() < 1e-12
    assert torch.allclose(torch.linalg.det(r), torch.ones(()).double())
    assert float(r.mean(0).abs().max()) < 0.05  # E[R] = 0 under the Haar measure


# ------------------------------------------------------------------ bad arguments


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: data.invariant_regression(sl3(), 0, generator=0), ValueError, "num_samples"),
        (lambda: data.invariant_regression(sl3(), True, generator=0), ValueError, "num_samples"),
        (lambda: data.invariant_regression("sl3", 5, generator=0), TypeError, "algebra"),
        (lambda: data.equivariant_regression(sl3(), 5, generator="0"), TypeError, "generator"),
        (lambda: data.equivariant_regression(sl3(), 5, generator=0, scale=0), ValueError, "scale"),
        (lambda: data.bch_regression(-1, generator=0), ValueError, "num_samples"),
        (lambda: data.bch_regression(5, generator=0, max_angle=4.0), ValueError, "max_angle"),
        (lambda: data.bch_regression(5, generator=0, dtype=torch.int64), TypeError, "dtype"),
        (lambda: data.bch_series(torch.zeros(4, 3), 1), ValueError, r"\(n, 2, 3\)"),
        (lambda: data.bch_series(torch.zeros(4, 2, 3), 4), ValueError, "order"),
        (lambda: data.rotation_log(torch.zeros(4, 3)), ValueError, r"\(\.\.\., 3, 3\)"),
        (
            lambda: data.rotation_exp(torch.zeros(4, 2)),
            ValueError,
            r"v: expected shape \(\.\.\., 3\)",
        ),
        (lambda: platonic.platonic_homographies(0, generator=0), ValueError, "num_samples"),
        (
            lambda: platonic.platonic_homographies(5, generator=0, num_edges=0),
            ValueError,
            "num_edges",
        ),
        (lambda: platonic.platonic_homographies(5, generator=0, rotated=1), TypeError, "rotated"),
        (lambda: platonic.platonic_solid_homographies("cube"), ValueError, "name"),
        (
            lambda: platonic.platonic_solid_homographies("tetrahedron", center=(0, 0, 0.5)),
            ValueError,
            "in front of the camera",
        ),
        (
            lambda: platonic.rotate_camera(torch.zeros(2, 3, 8), 2 * torch.eye(3)),
            ValueError,
            "rotation: expected rotation matrices",
        ),
        (
            lambda: platonic.rotate_camera(torch.zeros(2, 3, 10), torch.eye(3)),
            ValueError,
            r"x: expected shape \(n, C, 8\)",
        ),
        (lambda: data.random_conjugation(sl3(), torch.zeros(2, 8), generator=0), ValueError, "x"),
    ],
)
def test_bad_arguments_raise(call, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        call()


def test_ambiguous_logarithm_raises() -> None:
    half_turn = np.diag([-1.0, -1.0, 1.0])[None]  # a repeated negative eigenvalue
    with pytest.raises(ValueError, match="negative real axis"):
        platonic._real_logs(half_turn)
    log, exact = platonic._real_logs(np.diag([-2.0, -0.5, 1.0])[None])
    assert not exact[0] and np.allclose(log[0], np.diag(np.log([2.0, 0.5, 1.0])))


def test_package_exports() -> None:
    import perceptrons.data as package

    for module in (data, platonic):
        for name in module.__all__:
            assert getattr(package, name) is getattr(module, name)
