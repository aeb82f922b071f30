"""Synthetic data of Lie Neurons, with exact analytic targets.

Paper: T.-Y. Lin, M. Zhu, M. Ghaffari, "Lie Neurons: Adjoint-Equivariant Neural Networks for
Semisimple Lie Algebras", arXiv 2310.04521 (ICML 2024); official code ``UMich-CURLY/LieNeurons``
(``data_gen/``). The recipes were re-derived from the paper's abstract and ICML poster and from
reading that code; no code is copied.

Dimension legend: ``n`` samples, ``C`` feature channels, ``K`` = dim g (algebra dimension),
``m`` matrix size (``hat(x)`` is ``m × m``), ``N`` points per sample. Features use the Lie
Neurons layout ``(n, C, K)`` or ``(n, C, K, N)``: the algebra axis is always axis 2. Every
sampler takes an explicit ``generator`` (a `torch.Generator` or an int seed), draws in float64
on the CPU, computes targets in float64 and casts to ``dtype`` at the end, so a float32 data set
is the rounding of the float64 one with the same seed.

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
* The Platonic-solid classification task (sl(3) features from homographies) is in
  `perceptrons.data.platonic`.

Reconstructions and deviations (our decisions, not the paper's)
---------------------------------------------------------------
* BCH directions are uniform on the sphere (Gaussian, normalised). The official script
  normalises ``torch.rand(3)``, i.e. draws directions from the positive octant only, and draws
  the angle in ``[0, π - 1e-6)``; we use ``[0, max_angle)`` with ``max_angle <= π``.
* `rotation_log` returns the principal rotation vector (angle in ``[0, π]``). For an exactly
  symmetric ``R`` (angle π) the sign of the axis is not determined by ``R``; we return the axis
  whose largest component is positive (``exp`` of either choice is ``R``). Near π the sign
  follows the skew part of ``R``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from perceptrons.checks import check_int, check_number, check_tensor, format_shape
from perceptrons.lie import LieAlgebra

__all__ = [
    "bch_regression",
    "bch_series",
    "conjugate",
    "equivariant_regression",
    "equivariant_target",
    "invariant_regression",
    "invariant_target",
    "random_conjugation",
    "rotation_exp",
    "rotation_log",
    "rotation_log_error",
]


# ---------------------------------------------------------------------------------------------
# Argument checks


def as_generator(generator: object) -> torch.Generator:
    """A `torch.Generator` as is, or a fresh CPU generator seeded with an int."""
    if isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, int) and not isinstance(generator, bool):
        return torch.Generator().manual_seed(generator)
    raise TypeError(
        f"generator: expected a torch.Generator or an int seed, got {type(generator).__name__}"
    )


def check_dtype(dtype: object) -> torch.dtype:
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


def check_features(algebra: LieAlgebra, x: object, name: str = "x") -> Tensor:
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
    dtype = check_dtype(dtype)
    x = _uniform_pairs(algebra, num_samples, scale, as_generator(generator))
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
    dtype = check_dtype(dtype)
    x = _uniform_pairs(algebra, num_samples, scale, as_generator(generator))
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
    dtype = check_dtype(dtype)
    gen = as_generator(generator)
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
    x = check_features(algebra, x)
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
    x = check_features(algebra, x)
    check_number("scale", scale, low=0.0, strict=True)
    g = algebra.random_group_element(
        (x.shape[0],), scale=scale, generator=as_generator(generator), dtype=torch.float64
    )
    return conjugate(algebra, x, g), g.to(x.dtype)
