"""Synthetic data of Lie Neurons, with exact analytic targets.

Paper: T.-Y. Lin, M. Zhu, M. Ghaffari, "Lie Neurons: Adjoint-Equivariant Neural Networks for
Semisimple Lie Algebras", arXiv 2310.04521 (ICML 2024); official code ``UMich-CURLY/LieNeurons``
(``data_gen/``). The recipes were re-derived from the paper brief and from reading that code; no
code is copied.

Dimension legend: ``n`` samples, ``C`` feature channels, ``K`` = dim g (algebra dimension),
``m`` matrix size (``hat(x)`` is ``m × m``), ``N`` points per sample, ``E`` ordered edges of a
solid. Features use the Lie Neurons layout ``(n, C, K)`` or ``(n, C, K, N)``: the algebra axis is
always axis 2. Every sampler takes an explicit ``generator`` (a `torch.Generator` or an int seed),
draws in float64 on the CPU, computes targets in float64 and casts to ``dtype`` at the end, so a
float32 data set is the rounding of the float64 one with the same seed.

Recipes
-------
* `invariant_regression` (sl(3) and sp(4) invariant tasks; any matrix algebra works):
  ``x1, x2 ~ U[-1/2, 1/2]^K`` and, with ``X = hat(x)``,

  .. math:: f = \\sin\\operatorname{tr}(X_1^2) + \\cos\\operatorname{tr}(X_2^2)
     - \\tfrac12 \\operatorname{tr}(X_2^2)^3 + \\det(X_1 X_2) + \\exp\\operatorname{tr}(X_1^2),

  invariant under ``X ↦ g X g⁻¹`` (official ``gen_sl3_inv_data.py`` / ``gen_sp4_inv_data.py``).
* `equivariant_regression` (sl(3) equivariant task): ``y = vee([[X, Y], Y] + [Y, X])``, which
  satisfies ``y(Ad_g x) = Ad_g y(x)``.
* `bch_regression` (so(3) Baker–Campbell–Hausdorff task): rotation vectors ``v1, v2`` with a
  uniformly random direction and angle ``~ U[0, max_angle)``; target
  ``vee(log(exp(v̂1) exp(v̂2)))`` through `rotation_exp` (matrix exponential) and the
  closed-form `rotation_log`.
  `bch_series` gives the 1st/2nd/3rd-order truncations (analytic baselines) and
  `rotation_log_error` the paper's metric ``‖log(R1 R2 exp(-ŷ))‖``.
* `conjugate` / `random_conjugation`: the adjoint action on features (the "conjugated test set"
  of every task); group elements ``g = expm(hat(h))``, ``h ~ U[-scale, scale]^K``.
* `platonic_homographies` (Platonic-solid classification from homographies): see
  `platonic_solid_homographies` for the geometry. `random_rotations` and `rotate_camera` give
  the rotated-camera test set.

Reconstructions and deviations (our decisions, not the paper's)
---------------------------------------------------------------
* BCH directions are uniform on the sphere (Gaussian, normalised). The official script
  normalises ``torch.rand(3)``, i.e. draws directions from the positive octant only, and draws
  the angle in ``[0, π - 1e-6)``; we use ``[0, max_angle)`` with ``max_angle <= π``.
* `rotation_log` returns the principal rotation vector (angle in ``[0, π]``). For an exactly
  symmetric ``R`` (angle π) the sign of the axis is not determined by ``R``; we return the axis
  whose largest component is positive (``exp`` of either choice is ``R``). Near π the sign
  follows the skew part of ``R``.
* Platonic classes are ordered ``PLATONIC_CLASSES = (tetrahedron, octahedron, icosahedron)``;
  the official dataset labels octahedron 0, icosahedron 1, tetrahedron 2.
* Platonic geometry is computed in float64 (official: float32) and the faces are found from the
  vertex coordinates (mutually adjacent vertex triples) rather than from hand-written lists; the
  set of ordered edges and the left/right face rule are the official ones.
* Many Platonic homographies (all of the half-turn ones and some of the others: 78 % of the
  tetrahedron's, 58 % of the octahedron's, 48 % of the icosahedron's) have two distinct
  negative real eigenvalues, so **no real matrix logarithm exists** for them.
  The official code writes `scipy.linalg.logm`'s complex result into a real array, i.e. keeps
  the real part of the principal logarithm. We do the same, deliberately and explicitly
  (through an eigendecomposition, which agrees with ``logm`` to ~1e-13 here and is much
  faster; ``logm`` is the fallback for near-repeated eigenvalues), and
  record which entries are exact logarithms (`PlatonicSolidHomographies.exact_log`). The real
  part is still traceless (its trace is ``log |det H| = 0``) and still conjugation-equivariant
  (``Log(R H R⁻¹) = R Log(H) R⁻¹`` for real ``R``), so camera rotations act on the features
  exactly by conjugation; ``expm(Re Log H) = H S`` with ``S`` the involution that flips the two
  negative eigen-directions. Homographies whose logarithm would be ambiguous (a repeated negative
  eigenvalue, or a complex pair within 1e-6 rad of the negative real axis) raise `ValueError`.
* Rotated-camera tests: `random_rotations` draws Haar-uniform rotations (unit quaternions); the
  official test draws ZYX Euler angles uniformly in ``[0, 2π)``, which is not Haar-uniform. The
  paper's protocol (the whole test set under each of 500 rotations) is
  ``[rotate_camera(x, r) for r in random_rotations(500, generator=g)]``; ``rotated=True`` in
  `platonic_homographies` instead draws one rotation per sample.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from perceptrons.checks import check_int, check_number, check_tensor, format_shape
from perceptrons.lie import LieAlgebra, sl3

__all__ = [
    "PLATONIC_CENTER",
    "PLATONIC_CLASSES",
    "PlatonicSolidHomographies",
    "bch_regression",
    "bch_series",
    "conjugate",
    "equivariant_regression",
    "equivariant_target",
    "invariant_regression",
    "invariant_target",
    "platonic_homographies",
    "platonic_solid_homographies",
    "random_conjugation",
    "random_rotations",
    "rotate_camera",
    "rotation_exp",
    "rotation_log",
    "rotation_log_error",
]

PLATONIC_CLASSES: tuple[str, ...] = ("tetrahedron", "octahedron", "icosahedron")
"""Class names of `platonic_homographies`; the label is the index in this tuple."""

PLATONIC_CENTER: tuple[float, float, float] = (5.0, 3.0, 10.0)
"""Centre of every solid in camera coordinates (official value); the camera sits at the origin."""


# ---------------------------------------------------------------------------------------------
# Argument checks


def _as_generator(generator: object) -> torch.Generator:
    """A `torch.Generator` as is, or a fresh CPU generator seeded with an int."""
    if isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, int) and not isinstance(generator, bool):
        return torch.Generator().manual_seed(generator)
    raise TypeError(
        f"generator: expected a torch.Generator or an int seed, got {type(generator).__name__}"
    )


def _check_dtype(dtype: object) -> torch.dtype:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype: expected a floating torch.dtype, got {dtype!r}")
    return dtype


def _check_algebra(algebra: object) -> LieAlgebra:
    if not isinstance(algebra, LieAlgebra):
        raise TypeError(
            "algebra: expected a perceptrons.lie.LieAlgebra (e.g. sl3()), "
            f"got {type(algebra).__name__}"
        )
    return algebra


def _check_features(algebra: LieAlgebra, x: object, name: str = "x") -> Tensor:
    """``x`` of shape (n, C, K) or (n, C, K, N) with K = algebra.dim."""
    k = algebra.dim
    shapes = (("n", "C", k), ("n", "C", k, "N"))
    if isinstance(x, Tensor) and x.dim() == 4:
        return check_tensor(x, name, shapes[1])
    if isinstance(x, Tensor) and x.dim() != 3:
        raise ValueError(
            f"{name}: expected shape {format_shape(shapes[0])} or {format_shape(shapes[1])}, "
            f"got {tuple(x.shape)}"
        )
    return check_tensor(x, name, shapes[0])


def _check_vectors(x: object, name: str, *trailing: int) -> Tensor:
    """``x`` of shape (..., *trailing)."""
    if (
        isinstance(x, Tensor)
        and x.dim() >= len(trailing)
        and x.shape[x.dim() - len(trailing) :] == trailing
    ):
        return check_tensor(x, name, (*([None] * (x.dim() - len(trailing))), *trailing))
    if isinstance(x, Tensor):
        expected = "(..., " + ", ".join(str(t) for t in trailing) + ")"
        raise ValueError(f"{name}: expected shape {expected}, got {tuple(x.shape)}")
    return check_tensor(x, name, ("...", *trailing))  # raises TypeError: not a tensor


# ---------------------------------------------------------------------------------------------
# Invariant and equivariant regression


def invariant_target(algebra: LieAlgebra, x: Tensor) -> Tensor:
    """The invariant function of the sl(3)/sp(4) regression tasks.

    .. math:: f = \\sin\\operatorname{tr}(X_1^2) + \\cos\\operatorname{tr}(X_2^2)
       - \\tfrac12 \\operatorname{tr}(X_2^2)^3 + \\det(X_1 X_2) + \\exp\\operatorname{tr}(X_1^2)

    Args:
        algebra: The Lie algebra (any matrix algebra; traces and determinants are taken of
            ``hat(x)``).
        x: Pairs of algebra elements, shape (n, 2, K).

    Returns:
        ``f``, shape (n,), computed in float64 and cast to ``x.dtype``.
    """
    algebra = _check_algebra(algebra)
    check_tensor(x, "x", ("n", 2, algebra.dim))
    mats = algebra.hat(x.to(torch.float64))
    x1, x2 = mats[:, 0], mats[:, 1]
    t1 = torch.diagonal(x1 @ x1, dim1=-2, dim2=-1).sum(-1)
    t2 = torch.diagonal(x2 @ x2, dim1=-2, dim2=-1).sum(-1)
    f = torch.sin(t1) + torch.cos(t2) - t2.pow(3) / 2.0 + torch.linalg.det(x1 @ x2) + torch.exp(t1)
    return f.to(x.dtype)


def equivariant_target(algebra: LieAlgebra, x: Tensor) -> Tensor:
    """The equivariant function of the sl(3) regression task: ``vee([[X, Y], Y] + [Y, X])``.

    Args:
        algebra: The Lie algebra.
        x: Pairs ``(x, y)`` of algebra elements, shape (n, 2, K).

    Returns:
        Shape (n, K), computed in float64 and cast to ``x.dtype``; ``f(Ad_g x) = Ad_g f(x)``.
    """
    algebra = _check_algebra(algebra)
    check_tensor(x, "x", ("n", 2, algebra.dim))
    mats = algebra.hat(x.to(torch.float64))
    a, b = mats[:, 0], mats[:, 1]

    def commutator(p: Tensor, q: Tensor) -> Tensor:
        return p @ q - q @ p

    out = commutator(commutator(a, b), b) + commutator(b, a)
    return algebra.vee(out).to(x.dtype)


def _uniform_pairs(
    algebra: LieAlgebra, num_samples: int, scale: float, generator: torch.Generator
) -> Tensor:
    """``(num_samples, 2, K)`` float64 entries ~ U[-scale, scale]."""
    u = torch.rand((num_samples, 2, algebra.dim), generator=generator, dtype=torch.float64)
    return (2.0 * u - 1.0) * scale


def invariant_regression(
    algebra: LieAlgebra,
    num_samples: int,
    *,
    generator: torch.Generator | int,
    scale: float = 0.5,
    dtype: torch.dtype = torch.float64,
) -> tuple[Tensor, Tensor]:
    """Inputs and targets of the invariant regression task (`invariant_target`).

    Args:
        algebra: The Lie algebra (the paper uses sl(3), K = 8, and sp(4), K = 10).
        num_samples: Number of samples ``n >= 1``.
        generator: Source of randomness (a `torch.Generator` or an int seed).
        scale: Half-width of the uniform input distribution (paper: 0.5).
        dtype: Floating dtype of the outputs.

    Returns:
        ``(x, y)``: ``x`` of shape (n, 2, K) with ``x[:, 0] = x1``, ``x[:, 1] = x2`` i.i.d.
        ``U[-scale, scale]^K``, and ``y`` of shape (n,).
    """
    algebra = _check_algebra(algebra)
    check_int("num_samples", num_samples)
    check_number("scale", scale, low=0.0, strict=True)
    dtype = _check_dtype(dtype)
    x = _uniform_pairs(algebra, num_samples, scale, _as_generator(generator))
    return x.to(dtype), invariant_target(algebra, x).to(dtype)


def equivariant_regression(
    algebra: LieAlgebra,
    num_samples: int,
    *,
    generator: torch.Generator | int,
    scale: float = 0.5,
    dtype: torch.dtype = torch.float64,
) -> tuple[Tensor, Tensor]:
    """Inputs and targets of the equivariant regression task (`equivariant_target`).

    Args:
        algebra: The Lie algebra (the paper uses sl(3)).
        num_samples: Number of samples ``n >= 1``.
        generator: Source of randomness (a `torch.Generator` or an int seed).
        scale: Half-width of the uniform input distribution (paper: 0.5).
        dtype: Floating dtype of the outputs.

    Returns:
        ``(x, y)``: ``x`` of shape (n, 2, K), entries i.i.d. ``U[-scale, scale]``, and ``y`` of
        shape (n, K).
    """
    algebra = _check_algebra(algebra)
    check_int("num_samples", num_samples)
    check_number("scale", scale, low=0.0, strict=True)
    dtype = _check_dtype(dtype)
    x = _uniform_pairs(algebra, num_samples, scale, _as_generator(generator))
    return x.to(dtype), equivariant_target(algebra, x).to(dtype)


# ---------------------------------------------------------------------------------------------
# so(3): exp, log and the BCH task


def _skew(v: Tensor) -> Tensor:
    """(..., 3) -> (..., 3, 3) cross-product matrices: ``skew(v) @ w = v × w``."""
    zero = torch.zeros_like(v[..., 0])
    vx, vy, vz = v.unbind(-1)
    rows = (
        torch.stack((zero, -vz, vy), -1),
        torch.stack((vz, zero, -vx), -1),
        torch.stack((-vy, vx, zero), -1),
    )
    return torch.stack(rows, -2)


def rotation_exp(v: Tensor) -> Tensor:
    """Rotation matrices of rotation vectors: ``expm(hat(v))`` on so(3).

    ``hat`` is the cross-product matrix (the so(3) basis of `perceptrons.lie.so3`), so ``v`` is
    the axis times the angle (right-handed).

    Args:
        v: Rotation vectors, shape (..., 3).

    Returns:
        Rotation matrices, shape (..., 3, 3), in ``v.dtype``.
    """
    _check_vectors(v, "v", 3)
    return torch.linalg.matrix_exp(_skew(v.to(torch.float64))).to(v.dtype)


def rotation_log(rotation: Tensor) -> Tensor:
    """Principal rotation vectors of rotation matrices (inverse of `rotation_exp`).

    With ``c = (tr R - 1)/2`` and ``w = vee((R - Rᵀ)/2) = sin θ · axis``, the angle is
    ``θ = atan2(|w|, c) ∈ [0, π]``. For ``c > 0`` (θ < π/2) the result is ``w θ / sin θ`` (a
    series near 0). For ``c <= 0`` the axis is read from the symmetric part
    ``(R + Rᵀ)/2 - c I = (1 - c) axis axisᵀ`` (its largest-diagonal column), with the sign
    taken from ``w``; this stays accurate up to θ = π. When ``R`` is exactly symmetric (θ = π,
    ``w = 0``) the sign is undetermined and the axis is returned with its largest component
    positive; otherwise the sign follows ``w`` even when ``w`` is only rounding error.

    Args:
        rotation: Rotation matrices, shape (..., 3, 3) (orthogonality is not checked).

    Returns:
        Rotation vectors of norm in ``[0, π]``, shape (..., 3), in ``rotation.dtype``.
    """
    _check_vectors(rotation, "rotation", 3, 3)
    r = rotation.to(torch.float64)
    cos = ((torch.diagonal(r, dim1=-2, dim2=-1).sum(-1) - 1.0) / 2.0).clamp(-1.0, 1.0)
    w = 0.5 * torch.stack(
        (r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0], r[..., 1, 0] - r[..., 0, 1]),
        -1,
    )
    sin = torch.linalg.vector_norm(w, dim=-1)
    theta = torch.atan2(sin, cos)
    # Small and moderate angles: theta / sin(theta), by its series where sin is tiny.
    safe_sin = torch.where(sin > 1e-6, sin, torch.ones_like(sin))
    factor = torch.where(sin > 1e-6, theta / safe_sin, 1.0 + theta.square() / 6.0)
    small = w * factor.unsqueeze(-1)
    # Large angles: the axis from the symmetric part.
    sym = 0.5 * (r + r.transpose(-1, -2)) - cos[..., None, None] * torch.eye(3, dtype=r.dtype)
    column = torch.diagonal(sym, dim1=-2, dim2=-1).argmax(-1)
    axis = torch.take_along_dim(sym, column[..., None, None].expand(*sym.shape[:-1], 1), -1)
    axis = axis.squeeze(-1)
    axis = axis / torch.linalg.vector_norm(axis, dim=-1, keepdim=True).clamp_min(1e-300)
    flip = (axis * w).sum(-1) < 0
    axis = torch.where(flip.unsqueeze(-1), -axis, axis)
    large = axis * theta.unsqueeze(-1)
    return torch.where((cos > 0).unsqueeze(-1), small, large).to(rotation.dtype)


def bch_regression(
    num_samples: int,
    *,
    generator: torch.Generator | int,
    max_angle: float = math.pi,
    dtype: torch.dtype = torch.float64,
) -> tuple[Tensor, Tensor]:
    """Inputs and targets of the so(3) Baker–Campbell–Hausdorff task.

    Args:
        num_samples: Number of samples ``n >= 1``.
        generator: Source of randomness (a `torch.Generator` or an int seed).
        max_angle: Rotation angles are ``U[0, max_angle)``, with ``0 < max_angle <= π``.
        dtype: Floating dtype of the outputs.

    Returns:
        ``(x, y)``: rotation vectors ``x`` of shape (n, 2, 3) (directions uniform on the
        sphere) and ``y = rotation_log(rotation_exp(x[:, 0]) @ rotation_exp(x[:, 1]))`` of shape
        (n, 3).
    """
    check_int("num_samples", num_samples)
    max_angle = check_number("max_angle", max_angle, low=0.0, strict=True)
    if max_angle > math.pi:
        raise ValueError(f"max_angle: expected a value in (0, π], got {max_angle!r}")
    dtype = _check_dtype(dtype)
    gen = _as_generator(generator)
    direction = torch.randn((num_samples, 2, 3), generator=gen, dtype=torch.float64)
    direction = direction / torch.linalg.vector_norm(direction, dim=-1, keepdim=True)
    angle = max_angle * torch.rand((num_samples, 2, 1), generator=gen, dtype=torch.float64)
    x = direction * angle
    rot = rotation_exp(x)
    y = rotation_log(rot[:, 0] @ rot[:, 1])
    return x.to(dtype), y.to(dtype)


def bch_series(x: Tensor, order: int) -> Tensor:
    """Truncated Baker–Campbell–Hausdorff series on so(3) (the analytic baselines).

    .. math:: \\log(e^X e^Y) \\approx X + Y + \\tfrac12 [X, Y]
       + \\tfrac1{12} [X, [X, Y]] - \\tfrac1{12} [Y, [X, Y]]

    truncated after the terms of the given order. On so(3) the bracket of rotation vectors is
    the cross product.

    Args:
        x: Pairs of rotation vectors, shape (n, 2, 3).
        order: 1, 2 or 3.

    Returns:
        The truncated series, shape (n, 3).
    """
    check_tensor(x, "x", ("n", 2, 3))
    if order not in (1, 2, 3) or isinstance(order, bool):
        raise ValueError(f"order: expected 1, 2 or 3, got {order!r}")
    a, b = x[:, 0], x[:, 1]
    out = a + b
    if order >= 2:
        ab = torch.linalg.cross(a, b)
        out = out + 0.5 * ab
        if order >= 3:
            out = out + (torch.linalg.cross(a, ab) - torch.linalg.cross(b, ab)) / 12.0
    return out


def rotation_log_error(v1: Tensor, v2: Tensor, y_pred: Tensor) -> Tensor:
    """The BCH metric ``‖log(R1 R2 exp(-ŷ))‖``: the angle between the true and predicted product.

    Args:
        v1: First rotation vectors, shape (..., 3).
        v2: Second rotation vectors, shape (..., 3) (broadcast with ``v1``).
        y_pred: Predicted rotation vectors of ``R1 R2``, shape (..., 3).

    Returns:
        Angles in ``[0, π]``, shape (...,) (the broadcast batch shape), in ``y_pred.dtype``.
    """
    for name, v in (("v1", v1), ("v2", v2), ("y_pred", y_pred)):
        _check_vectors(v, name, 3)
    r = rotation_exp(v1.double()) @ rotation_exp(v2.double()) @ rotation_exp(-y_pred.double())
    return torch.linalg.vector_norm(rotation_log(r), dim=-1).to(y_pred.dtype)


# ---------------------------------------------------------------------------------------------
# Adjoint action on features


def conjugate(algebra: LieAlgebra, x: Tensor, g: Tensor) -> Tensor:
    """The adjoint action ``x ↦ vee(g hat(x) g⁻¹)`` on features, along axis 2.

    A checked, float64 front end to `perceptrons.lie.LieAlgebra.act`: ``Ad(g, check=True)``
    (which rejects a ``g`` outside the algebra's group) applied with
    `perceptrons.lie.LieAlgebra.apply_adjoint`.

    Args:
        algebra: The Lie algebra.
        x: Features, shape (n, C, K) or (n, C, K, N).
        g: Group elements, shape (m, m) (one for all samples) or (n, m, m) (one per sample).

    Returns:
        Conjugated features, same shape and dtype as ``x`` (computed in float64).

    Raises:
        TypeError: ``algebra`` is not a `LieAlgebra`, or a non-floating tensor.
        ValueError: wrong shapes, or ``g`` does not preserve the algebra.
    """
    algebra = _check_algebra(algebra)
    x = _check_features(algebra, x)
    m = algebra.matrix_size
    if isinstance(g, Tensor) and g.dim() == 2:
        check_tensor(g, "g", (m, m))
    else:
        check_tensor(g, "g", (x.shape[0], m, m))
    adjoint = algebra.Ad(g.to(torch.float64), check=True)  # (K, K) or (n, K, K)
    return algebra.apply_adjoint(adjoint, x.to(torch.float64), axis=2).to(x.dtype)


def random_conjugation(
    algebra: LieAlgebra,
    x: Tensor,
    *,
    generator: torch.Generator | int,
    scale: float = 0.5,
) -> tuple[Tensor, Tensor]:
    """Conjugate every sample by its own random group element ``g = expm(hat(h))``.

    Args:
        algebra: The Lie algebra.
        x: Features, shape (n, C, K) or (n, C, K, N).
        generator: Source of randomness (a `torch.Generator` or an int seed).
        scale: ``h ~ U[-scale, scale]^K`` (paper: 0.5).

    Returns:
        ``(x_conj, g)``: conjugated features (shape and dtype of ``x``) and the group elements,
        shape (n, m, m), in ``x.dtype``.
    """
    algebra = _check_algebra(algebra)
    x = _check_features(algebra, x)
    check_number("scale", scale, low=0.0, strict=True)
    g = algebra.random_group_element(
        (x.shape[0],), scale=scale, generator=_as_generator(generator), dtype=torch.float64
    )
    return conjugate(algebra, x, g), g.to(x.dtype)


# ---------------------------------------------------------------------------------------------
# Platonic solids and homographies


@dataclass(frozen=True)
class PlatonicSolidHomographies:
    """The per-edge homographies of one Platonic solid seen by a camera at the origin.

    For an ordered edge ``(a, b)`` let ``p1, p2`` be its end points, ``p3`` the third vertex of
    the face on its left and ``p4`` that of the face on its right (the left face is the one
    whose normal ``(p2 - p1) × (p3 - p1)`` points away from the solid's centre). The
    parallelograms are completed with ``p5 = p2 + p3 - p1``, ``p6 = p2 + p4 - p1``,
    ``p7 = p4 + p1 - p2`` and ``p8 = p1 + p2 - p4``, and all eight points are projected onto the
    image plane ``z = 1``. The three homographies map the image of the left-face quadrilateral
    ``(p1, p2, p5, p3)`` onto

    * ``(p1, p4, p6, p2)``: the turn of the solid about vertex ``p1`` taking left to right face;
    * ``(p2, p1, p7, p4)``: the half-turn swapping the edge's ends;
    * ``(p4, p2, p8, p1)``: the turn about vertex ``p2``.

    (Each is the image of a rotational symmetry of the solid, so four exact correspondences
    determine it.) They are solved by DLT, scaled to ``det H = 1`` (division by the real cube
    root of the determinant, which fixes the sign), and mapped to sl(3) by the real part of the
    principal matrix logarithm (see the module notes for why the real part).

    Attributes:
        name: One of `PLATONIC_CLASSES`.
        vertices: Vertex positions in camera coordinates, shape (V, 3).
        edges: Ordered edges ``(a, b)`` (both directions of every edge), shape (E, 2), int64.
        apexes: Third vertices of the left and right faces of each edge, shape (E, 2), int64.
        points: ``p1 … p8`` projected onto ``z = 1`` (last coordinate 1), shape (E, 8, 3).
        homographies: The three det-1 homographies of each edge, shape (E, 3, 3, 3).
        elements: Their sl(3) coordinates (sl3 basis), shape (E, 3, 8).
        exact_log: Whether ``expm(hat(elements)) == homographies`` (a real logarithm exists),
            shape (E, 3), bool.
    """

    name: str
    vertices: Tensor
    edges: Tensor
    apexes: Tensor
    points: Tensor
    homographies: Tensor
    elements: Tensor
    exact_log: Tensor

    @property
    def num_edges(self) -> int:
        """Number ``E`` of ordered edges (twice the number of edges of the solid)."""
        return int(self.edges.shape[0])


# Standard vertex coordinates (tetrahedron: alternate cube corners; octahedron: unit axes;
# icosahedron: cyclic permutations of (0, ±1, ±φ)). Edge lengths 2√2, √2 and 2, as officially.
def _unit_vertices(name: str) -> np.ndarray:
    if name == "tetrahedron":
        return np.array([[1, 1, 1], [-1, -1, 1], [-1, 1, -1], [1, -1, -1]], dtype=np.float64)
    if name == "octahedron":
        eye = np.eye(3)
        return np.concatenate([eye, -eye])[[2, 5, 0, 3, 1, 4]]
    phi = (1.0 + math.sqrt(5.0)) / 2.0
    rows = []
    for s in (-1.0, 1.0):
        for t in (-phi, phi):
            rows += [[0.0, s, t], [s, t, 0.0], [t, 0.0, s]]
    return np.array(rows, dtype=np.float64)


def _dlt(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(4, 3) -> (4, 3) homogeneous correspondences -> (3, 3) homography (null vector of A)."""
    rows = []
    for s, d in zip(src, dst, strict=True):
        rows.append(np.concatenate([s, np.zeros(3), -d[0] / d[2] * s]))
        rows.append(np.concatenate([np.zeros(3), s, -d[1] / d[2] * s]))
    _, singular, vt = np.linalg.svd(np.array(rows))  # 8 singular values: rank 8 expected
    if singular[-1] <= 1e-9 * singular[0]:
        raise ValueError("platonic geometry: the four correspondences are degenerate")
    return vt[-1].reshape(3, 3)


def _real_logs(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Real part of the principal logarithm of det-1 matrices, and whether it is exact.

    Args:
        h: Real matrices, shape (M, 3, 3).

    Returns:
        ``(log, exact)``: shapes (M, 3, 3) and (M,); ``exact`` is False where ``h`` has
        (two) negative real eigenvalues, so that only the real part of its complex logarithm
        is returned.
    """
    eig, vec = np.linalg.eig(h)  # (M, 3), (M, 3, 3)
    size = np.abs(eig)
    on_cut = (eig.real < 0) & (np.abs(eig.imag) <= 1e-9 * size)
    near_cut = (eig.real < 0) & ~on_cut & (np.pi - np.abs(np.angle(eig)) < 1e-6)
    diff = np.where(np.eye(3, dtype=bool), np.inf, np.abs(eig[:, :, None] - eig[:, None, :]))
    close = diff.min(axis=(1, 2)) <= 1e-6 * size.max(-1)
    ambiguous = near_cut.any(-1) | (close & on_cut.any(-1))
    if ambiguous.any():
        bad = np.array2string(eig[np.flatnonzero(ambiguous)[0]], precision=4)
        raise ValueError(
            f"platonic geometry: a homography has eigenvalues {bad} on or near the negative "
            "real axis, where the real matrix logarithm is ambiguous"
        )
    # Principal logarithm through the eigendecomposition (distinct eigenvalues) ...
    log_eig = np.log(eig.astype(np.complex128))
    log = vec @ (log_eig[:, :, None] * np.linalg.inv(vec))
    # ... and by scipy's Schur method where two eigenvalues (nearly) coincide.
    if close.any():
        import scipy.linalg  # only for this rare case: keeps scipy off the import path

        for i in np.flatnonzero(close):
            log[i] = scipy.linalg.logm(h[i])
    exact = ~on_cut.any(-1)
    scale = np.abs(log).max(axis=(1, 2)) + 1.0
    if (np.abs(log.imag).max(axis=(1, 2))[exact] > 1e-8 * scale[exact]).any():
        raise ValueError("platonic geometry: a real logarithm came out complex")
    return np.ascontiguousarray(log.real), exact


@functools.lru_cache(maxsize=16)
def _platonic_arrays(name: str, center: tuple[float, float, float]) -> tuple[np.ndarray, ...]:
    """Deterministic per-solid geometry (cached; arrays are read-only)."""
    base = _unit_vertices(name)
    vertices = base + np.asarray(center, dtype=np.float64)
    num = len(vertices)
    dist = np.linalg.norm(vertices[:, None] - vertices[None], axis=-1)
    length = dist[~np.eye(num, dtype=bool)].min()
    adjacent = np.isclose(dist, length, rtol=1e-9) & ~np.eye(num, dtype=bool)
    centroid = vertices.mean(0)
    edges, apexes, points, homs = [], [], [], []
    for a in range(num):
        for b in np.flatnonzero(adjacent[a]):
            # The two faces on the edge: the common neighbours of a and b.
            third = np.flatnonzero(adjacent[a] & adjacent[b])
            if len(third) != 2:
                raise ValueError(f"{name}: edge ({a}, {b}) does not have exactly two faces")
            left = right = -1
            for c in third:
                normal = np.cross(vertices[b] - vertices[a], vertices[c] - vertices[a])
                outward = vertices[[a, b, c]].mean(0) - centroid
                if normal @ outward > 0:
                    left = int(c)
                else:
                    right = int(c)
            if left < 0 or right < 0:
                raise ValueError(f"{name}: edge ({a}, {b}) has no left/right face pair")
            p1, p2, p3, p4 = vertices[[a, b, left, right]]
            quad = np.stack(
                [p1, p2, p3, p4, p2 + p3 - p1, p2 + p4 - p1, p4 + p1 - p2, p1 + p2 - p4]
            )
            if (quad[:, 2] <= 1e-9).any():
                raise ValueError(
                    f"{name}: with center {center} some face points are not in front of the "
                    "camera (z <= 0)"
                )
            proj = quad / quad[:, 2:]
            src = proj[[0, 1, 4, 2]]
            dsts = (proj[[0, 3, 5, 1]], proj[[1, 0, 6, 3]], proj[[3, 1, 7, 0]])
            edges.append((a, int(b)))
            apexes.append((left, right))
            points.append(proj)
            homs.append([_dlt(src, dst) for dst in dsts])
    h = np.array(homs)  # (E, 3, 3, 3)
    det = np.linalg.det(h)
    if (np.abs(det) < 1e-12).any():
        raise ValueError(f"{name}: a homography is singular")
    h = h / np.cbrt(det)[..., None, None]
    logs, exact = _real_logs(h.reshape(-1, 3, 3))
    logs, exact = logs.reshape(h.shape), exact.reshape(h.shape[:2])
    out = (
        vertices,
        np.array(edges, dtype=np.int64),
        np.array(apexes, dtype=np.int64),
        np.array(points),
        h,
        logs,
        exact,
    )
    for arr in out:
        arr.setflags(write=False)
    return out


def platonic_solid_homographies(
    name: str, *, center: Sequence[float] = PLATONIC_CENTER
) -> PlatonicSolidHomographies:
    """Geometry, homographies and sl(3) elements of every ordered edge of one solid.

    The result is deterministic (no randomness); it is computed once per ``(name, center)``
    and cached (fresh tensors are returned on every call).

    Args:
        name: One of `PLATONIC_CLASSES`.
        center: Position of the solid's centre in camera coordinates (paper: (5, 3, 10));
            every vertex must stay in front of the camera (z > 0).

    Returns:
        The solid's `PlatonicSolidHomographies` (E = 12, 24, 60 ordered edges), float64.

    Raises:
        ValueError: unknown name, a centre that puts points behind the camera, or a homography
            whose logarithm is ambiguous.
    """
    if name not in PLATONIC_CLASSES:
        raise ValueError(f"name: expected one of {PLATONIC_CLASSES}, got {name!r}")
    centre = tuple(float(c) for c in center)
    if len(centre) != 3 or not all(math.isfinite(c) for c in centre):
        raise ValueError(f"center: expected three finite numbers, got {center!r}")
    vertices, edges, apexes, points, h, logs, exact = _platonic_arrays(name, centre)
    algebra = sl3()
    logs_t = torch.tensor(logs, dtype=torch.float64)
    return PlatonicSolidHomographies(
        name=name,
        vertices=torch.tensor(vertices, dtype=torch.float64),
        edges=torch.tensor(edges),
        apexes=torch.tensor(apexes),
        points=torch.tensor(points, dtype=torch.float64),
        homographies=torch.tensor(h, dtype=torch.float64),
        elements=algebra.vee(logs_t),
        exact_log=torch.tensor(exact),
    )


def random_rotations(
    num_rotations: int, *, generator: torch.Generator | int, dtype: torch.dtype = torch.float64
) -> Tensor:
    """Haar-uniform random rotation matrices (normalised Gaussian quaternions).

    Args:
        num_rotations: Number of rotations ``>= 1``.
        generator: Source of randomness (a `torch.Generator` or an int seed).
        dtype: Floating dtype of the output.

    Returns:
        Rotation matrices, shape (num_rotations, 3, 3).
    """
    check_int("num_rotations", num_rotations)
    dtype = _check_dtype(dtype)
    q = torch.randn((num_rotations, 4), generator=_as_generator(generator), dtype=torch.float64)
    w, x, y, z = (q / torch.linalg.vector_norm(q, dim=-1, keepdim=True)).unbind(-1)
    rows = (
        torch.stack((1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)), -1),
        torch.stack((2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)), -1),
        torch.stack((2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)), -1),
    )
    return torch.stack(rows, -2).to(dtype)


def rotate_camera(x: Tensor, rotation: Tensor) -> Tensor:
    """Features of the same scene seen by a rotated camera: conjugation by ``R ∈ SO(3) ⊂ SL(3)``.

    A camera rotation maps image points ``p ↦ R p``, so every homography becomes ``R H Rᵀ`` and
    its logarithm ``R log(H) Rᵀ``.

    Args:
        x: sl(3) features, shape (n, C, 8) or (n, C, 8, N).
        rotation: Rotation matrices, shape (3, 3) (one for all samples) or (n, 3, 3).

    Returns:
        Rotated features, same shape and dtype as ``x``.

    Raises:
        ValueError: wrong shapes, or ``rotation`` is not a rotation (orthogonal, det +1).
    """
    algebra = sl3()
    x = _check_features(algebra, x)
    if isinstance(rotation, Tensor) and rotation.dim() == 2:
        check_tensor(rotation, "rotation", (3, 3))
    else:
        check_tensor(rotation, "rotation", (x.shape[0], 3, 3))
    r = rotation.to(torch.float64)
    gram = r.transpose(-1, -2) @ r - torch.eye(3, dtype=torch.float64)
    tol = 1e-5 if rotation.dtype == torch.float64 else 1e-4
    if gram.abs().amax() > tol or (torch.linalg.det(r) <= 0).any():
        raise ValueError("rotation: expected rotation matrices (RᵀR = I, det R = +1)")
    return conjugate(algebra, x, r)


def platonic_homographies(
    num_samples: int,
    *,
    generator: torch.Generator | int,
    num_edges: int = 12,
    rotated: bool = False,
    dtype: torch.dtype = torch.float64,
) -> tuple[Tensor, Tensor]:
    """Samples of the Platonic-solid classification task.

    Each sample draws a class uniformly from `PLATONIC_CLASSES` (i.i.d., as the official
    on-the-fly dataset does), then ``num_edges`` ordered edges of that solid uniformly with
    replacement, and stacks the three sl(3) elements of each edge (`platonic_solid_homographies`)
    as channels. The solids are never moved or scaled: the only randomness is the class, the
    edges and, with ``rotated``, the camera rotation.

    Args:
        num_samples: Number of samples ``n >= 1``.
        generator: Source of randomness (a `torch.Generator` or an int seed).
        num_edges: Edges per sample ``N >= 1`` (paper: 12).
        rotated: Conjugate each sample by its own Haar-random camera rotation
            (`random_rotations`, drawn after the classes and edges).
        dtype: Floating dtype of the features.

    Returns:
        ``(x, y)``: features of shape (n, 3, 8, num_edges) ([C, K, N] per sample) and labels
        of shape (n,), int64, indexing `PLATONIC_CLASSES`.
    """
    check_int("num_samples", num_samples)
    check_int("num_edges", num_edges)
    if not isinstance(rotated, bool):
        raise TypeError(f"rotated: expected a bool, got {type(rotated).__name__}")
    dtype = _check_dtype(dtype)
    gen = _as_generator(generator)
    solids = [platonic_solid_homographies(name) for name in PLATONIC_CLASSES]
    table = torch.cat([s.elements for s in solids])  # (sum E, 3, 8)
    counts = torch.tensor([s.num_edges for s in solids], dtype=torch.int64)
    offsets = torch.cumsum(counts, 0) - counts
    num_classes = len(PLATONIC_CLASSES)
    u = torch.rand((num_samples,), generator=gen, dtype=torch.float64)
    y = (u * num_classes).long().clamp_max(num_classes - 1)
    v = torch.rand((num_samples, num_edges), generator=gen, dtype=torch.float64)
    local = (v * counts[y, None]).long().clamp_max(counts[y, None] - 1)
    x = table[offsets[y, None] + local].permute(0, 2, 3, 1).contiguous()  # (n, 3, 8, N)
    if rotated:
        x = rotate_camera(x, random_rotations(num_samples, generator=gen))
    return x.to(dtype), y
