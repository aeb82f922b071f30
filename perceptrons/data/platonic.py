"""Platonic-solid classification from homographies: the sl(3) task of Lie Neurons.

Paper: T.-Y. Lin, M. Zhu, M. Ghaffari, "Lie Neurons: Adjoint-Equivariant Neural Networks for
Semisimple Lie Algebras", arXiv 2310.04521 (ICML 2024); official code ``UMich-CURLY/LieNeurons``
(``data_gen/``). The recipes were re-derived from the paper's abstract and ICML poster and from
reading that code; no code is copied. The other Lie Neurons tasks and the shared conventions
(feature layout ``(n, C, K, N)`` with the algebra on axis 2, explicit generators, float64
sampling) are in `perceptrons.data.lie`.

Dimension legend: ``n`` samples, ``C`` feature channels, ``K = 8`` (dim sl(3)), ``N`` points
per sample, ``E`` ordered edges of a solid.

* `platonic_homographies`: the data set; `platonic_solid_homographies` gives the geometry of one
  solid. `random_rotations` and `rotate_camera` give the rotated-camera test set.

Reconstructions and deviations (our decisions, not the paper's)
---------------------------------------------------------------
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

from perceptrons.checks import check_int, check_tensor
from perceptrons.data.lie import as_generator, check_dtype, check_features, conjugate
from perceptrons.lie import sl3

__all__ = [
    "PLATONIC_CENTER",
    "PLATONIC_CLASSES",
    "PlatonicSolidHomographies",
    "platonic_homographies",
    "platonic_solid_homographies",
    "random_rotations",
    "rotate_camera",
]

PLATONIC_CLASSES: tuple[str, ...] = ("tetrahedron", "octahedron", "icosahedron")
"""Class names of `platonic_homographies`; the label is the index in this tuple."""

PLATONIC_CENTER: tuple[float, float, float] = (5.0, 3.0, 10.0)
"""Centre of every solid in camera coordinates (official value); the camera sits at the origin."""


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
    dtype = check_dtype(dtype)
    q = torch.randn((num_rotations, 4), generator=as_generator(generator), dtype=torch.float64)
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
    x = check_features(algebra, x)
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
    dtype = check_dtype(dtype)
    gen = as_generator(generator)
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
