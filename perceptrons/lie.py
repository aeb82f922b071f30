"""Semisimple matrix Lie algebras in coordinates: hat/vee, bracket, Killing form, adjoint action.

Used by the Lie Neurons layers (`perceptrons.layers.lie`; Lin, Zhu & Ghaffari, "Lie Neurons:
Adjoint-Equivariant Neural Networks for Semisimple Lie Algebras", arXiv:2310.04521).

Dimension legend: ``K`` = `LieAlgebra.dim` (dimension of the algebra), ``m`` =
`LieAlgebra.matrix_size` (its elements are ``m x m`` matrices), ``...`` any leading dimensions.

An algebra is given by a basis :math:`E_1, \\dots, E_K` of ``m x m`` matrices. An element is a
coordinate vector :math:`x \\in \\mathbb R^K` with matrix :math:`\\hat x = \\sum_i x_i E_i`
(`LieAlgebra.hat`); `LieAlgebra.vee` inverts it with the pseudo-inverse of the flattened basis.
From the basis, `LieAlgebra.from_basis` computes

.. math::

    [E_i, E_j] = \\sum_k C_{ijk} E_k, \\qquad (\\mathrm{ad}_i)_{kj} = C_{ijk}, \\qquad
    \\kappa_{ij} = \\mathrm{tr}(\\mathrm{ad}_i\\, \\mathrm{ad}_j), \\qquad
    B(x, y) = x^\\top \\kappa\\, y,

the structure constants ``C`` ``(K, K, K)``, adjoint matrices ``ad`` ``(K, K, K)``, Killing
matrix :math:`\\kappa` ``(K, K)`` and Killing form ``B``. By Cartan's criterion the algebra is
semisimple iff :math:`\\kappa` is non-degenerate; `from_basis` rejects algebras where it is not
(e.g. se(3)), since the Lie Neurons layers need a non-degenerate invariant form.

A group element ``g`` (an invertible ``m x m`` matrix of the group) acts by conjugation,
:math:`\\hat x \\mapsto g \\hat x g^{-1}`, i.e. :math:`x \\mapsto \\mathrm{Ad}_g x` with
``Ad_g[:, i] = vee(g E_i g^-1)`` (`LieAlgebra.Ad`). Two ways to apply it:

* `LieAlgebra.conjugate` ``(x, g)``: vectors on the **last** axis, ``x (..., K)`` with ``g
  (..., m, m)`` broadcast against the leading dimensions;
* `LieAlgebra.act` ``(g, x, axis=2)`` / `LieAlgebra.apply_adjoint` ``(Ad, x, axis=2)``: feature
  tensors in the layer layout ``(batch, channels, K)`` or ``(batch, channels, K, num_points)``,
  where the algebra axis is **axis 2**. ``g`` is one element ``(m, m)`` for the whole tensor,
  or one per sample ``(batch, m, m)``; the same ``Ad_g`` is applied to every channel and point.

Killing form scales (checked by the tests): :math:`B(X, Y) = (n-2)\\,\\mathrm{tr}(XY)` on so(n),
:math:`2n\\,\\mathrm{tr}(XY)` on sl(n) and :math:`(2n+2)\\,\\mathrm{tr}(XY)` on sp(2n); so so3:
``tr(XY)`` (:math:`= -2\\, x \\cdot y`, negative definite), sl3: ``6 tr(XY)`` (signature
(5, 3, 0)), sp4: ``6 tr(XY)`` (signature (6, 4, 0)).

Invariants under conjugation :math:`X \\mapsto g X g^{-1}`:

* the Killing form :math:`B(x, y)`, in particular the self-Killing form :math:`B(x, x)`, for
  every semisimple algebra (:math:`\\mathrm{Ad}_g^\\top \\kappa\\, \\mathrm{Ad}_g = \\kappa`);
* :math:`\\det \\hat x` and every :math:`\\mathrm{tr}(\\hat x^p)` (for simple matrix algebras
  :math:`\\mathrm{tr}(\\hat x^2)` is proportional to :math:`B(x, x)`), for any invertible g;
* **not** :math:`\\mathrm{tr}(\\hat x^\\top \\hat x)` (the Frobenius norm): it is invariant only
  under orthogonal ``g``, so it is invariant on so(n) but not on sl(3) or sp(4). It is therefore
  not offered as an invariant.

Built-ins: `so3`, `sl3` and `sp4` with the bases of the official Lie Neurons code (so their
coordinates match the authors' data), plus generic `so` and `sl`; `get_algebra` maps names
(``"so3"``, ``"sl3"``, ``"sp4"``, ``"so(n)"``, ``"sl(n)"``) to algebras.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

import torch

from perceptrons.checks import check_int, check_number, check_tensor

__all__ = ["ALGEBRA_NAMES", "LieAlgebra", "get_algebra", "sl", "sl3", "so", "so3", "sp4"]

ALGEBRA_NAMES = ("so3", "sl3", "sp4")
"""Names of the built-in algebras of the paper (`get_algebra` also accepts so(n), sl(n))."""

_F64 = torch.float64
_DEPENDENCE_TOL = 1e-10  # smallest / largest singular value of the flattened basis
_CLOSURE_TOL = 1e-8  # residual of the bracket's vee-reconstruction, relative (float64 input)
_CARTAN_TOL = 1e-8  # smallest / largest |eigenvalue| of the Killing matrix


class LieAlgebra:
    """A semisimple matrix Lie algebra with a fixed basis (immutable; build with `from_basis`).

    Tensors are stored in float64 on the CPU and cast (with a cache) to the dtype and device of
    the inputs; every method returns tensors in its input's dtype and on its device.

    Attributes:
        name: Name used in messages and ``repr``.
    """

    def __init__(
        self,
        name: str,
        basis: torch.Tensor,
        vee_matrix: torch.Tensor,
        structure_constants: torch.Tensor,
        killing_matrix: torch.Tensor,
    ) -> None:
        """Store precomputed tensors; use `from_basis`, which validates and computes them."""
        self.name = name
        self._tensors = {
            "basis": basis,
            "basis_flat": basis.reshape(basis.shape[0], -1),
            "vee_matrix": vee_matrix,
            "structure_constants": structure_constants,
            "ad": structure_constants.permute(0, 2, 1).contiguous(),
            "ad_flat": structure_constants.permute(0, 2, 1).reshape(basis.shape[0], -1),
            "killing_matrix": killing_matrix,
        }
        self._cache: dict[tuple[str, torch.dtype, torch.device], torch.Tensor] = {}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_basis(cls, basis: torch.Tensor, name: str | None = None) -> LieAlgebra:
        """Build an algebra from its basis and check that it is a semisimple Lie algebra.

        Args:
            basis: ``(K, m, m)`` basis matrices :math:`E_i` (any real dtype; stored as float64).
                Closure under the bracket is checked to a relative ``1e-8``, or ``1000 eps``
                of a lower-precision floating dtype (a float32 basis is closed only to
                float32 precision; pass float64 for exact structure constants).
            name: Name for messages and ``repr`` (default ``"custom"``).

        Returns:
            The algebra, with structure constants and Killing matrix computed from ``basis``.

        Raises:
            TypeError: ``basis`` is not a tensor.
            ValueError: ``basis`` is not ``(K, m, m)`` or not finite, is linearly dependent, is
                not closed under the bracket, or spans a Lie algebra that is not semisimple
                (degenerate Killing form, Cartan's criterion; e.g. se(3)).
        """
        label = "custom" if name is None else str(name)
        check_tensor(basis, "basis", ("K", "m", "m"), floating=False)
        if basis.is_complex():
            raise TypeError(f"basis: expected a real tensor of shape (K, m, m), got {basis.dtype}")
        if basis.shape[1] != basis.shape[2]:
            raise ValueError(f"basis: expected shape (K, m, m), got {tuple(basis.shape)}")
        # A basis rounded to a low precision is closed only up to that precision.
        eps = torch.finfo(basis.dtype).eps if basis.is_floating_point() else 0.0
        closure_tol = max(_CLOSURE_TOL, 1000 * eps)
        e = basis.detach().to("cpu", _F64).clone()
        k, m = e.shape[0], e.shape[1]
        if k == 0 or m == 0 or not bool(torch.isfinite(e).all()):
            raise ValueError(f"basis of {label}: expected a finite (K, m, m) tensor with K, m >= 1")
        flat = e.reshape(k, m * m)
        singular = torch.linalg.svdvals(flat)
        if singular[-1] <= _DEPENDENCE_TOL * singular[0] or k > m * m:
            raise ValueError(f"basis of {label}: the {k} matrices are linearly dependent")
        vee_matrix = torch.linalg.pinv(flat)  # (m*m, K)
        brackets = e[:, None] @ e[None, :] - e[None, :] @ e[:, None]  # (K, K, m, m)
        coeffs = brackets.reshape(k, k, m * m) @ vee_matrix  # (K, K, K)
        residual = torch.linalg.vector_norm(coeffs @ flat - brackets.reshape(k, k, m * m))
        scale = torch.linalg.vector_norm(flat, dim=-1).max() ** 2
        if residual > closure_tol * scale:
            raise ValueError(
                f"basis of {label}: not closed under the bracket [X, Y] = XY - YX (relative "
                f"residual {float(residual / scale):.2e}); it does not span a Lie algebra"
            )
        ad = coeffs.permute(0, 2, 1)  # ad[i, k, j] = C[i, j, k]
        killing = torch.einsum("ikj,ljk->il", ad, ad)
        killing = 0.5 * (killing + killing.T)
        eig = torch.linalg.eigvalsh(killing).abs()
        if eig.min() <= _CARTAN_TOL * eig.max():
            raise ValueError(
                f"{label} is not semisimple: its Killing form is degenerate (smallest/largest "
                f"|eigenvalue| = {float(eig.min()):.2e}/{float(eig.max()):.2e}); Lie Neurons "
                "need a non-degenerate invariant form (Cartan's criterion)"
            )
        return cls(label, e, vee_matrix, coeffs, killing)

    # ------------------------------------------------------------------ copying and display
    def __repr__(self) -> str:
        return f"LieAlgebra({self.name!r}, dim={self.dim}, matrix_size={self.matrix_size})"

    def __copy__(self) -> LieAlgebra:
        return self

    def __deepcopy__(self, memo: dict) -> LieAlgebra:
        return self  # immutable: modules holding an algebra share it when copied

    # ------------------------------------------------------------------ stored tensors
    @property
    def dim(self) -> int:
        """K, the dimension of the algebra."""
        return int(self._tensors["basis"].shape[0])

    @property
    def matrix_size(self) -> int:
        """m: elements are ``m x m`` matrices."""
        return int(self._tensors["basis"].shape[1])

    @property
    def basis(self) -> torch.Tensor:
        """The basis ``(K, m, m)``, float64 (a copy)."""
        return self._tensors["basis"].clone()

    @property
    def structure_constants(self) -> torch.Tensor:
        """``C`` ``(K, K, K)`` with :math:`[E_i, E_j] = \\sum_k C_{ijk} E_k`, float64 (a copy)."""
        return self._tensors["structure_constants"].clone()

    @property
    def ad(self) -> torch.Tensor:
        """Adjoint matrices ``(K, K, K)``: ``ad[i]`` is the matrix of :math:`[E_i, \\cdot]`."""
        return self._tensors["ad"].clone()

    @property
    def killing_matrix(self) -> torch.Tensor:
        """Killing matrix ``(K, K)``, :math:`\\kappa_{ij} = \\mathrm{tr}(ad_i\\, ad_j)`, float64."""
        return self._tensors["killing_matrix"].clone()

    def tensor(
        self, name: str, dtype: torch.dtype = _F64, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """A stored tensor cast to ``dtype`` and ``device`` (cached; do not modify it).

        Args:
            name: One of ``"basis"``, ``"basis_flat"`` ``(K, m*m)``, ``"vee_matrix"``
                ``(m*m, K)``, ``"structure_constants"``, ``"ad"``, ``"ad_flat"`` ``(K, K*K)``,
                ``"killing_matrix"``.
            dtype: Floating dtype.
            device: Device (default CPU).
        """
        dev = torch.device("cpu" if device is None else device)
        key = (name, dtype, dev)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._tensors[name].to(device=dev, dtype=dtype)
            self._cache[key] = cached
        return cached

    def _like(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return self.tensor(name, x.dtype, x.device)

    # ------------------------------------------------------------------ coordinates
    def _check_vectors(self, x: object, name: str) -> torch.Tensor:
        if isinstance(x, torch.Tensor) and x.dim() >= 1:
            return check_tensor(x, name, (*(None,) * (x.dim() - 1), self.dim))
        return check_tensor(x, name, ("...", self.dim))

    def _check_matrices(self, x: object, name: str) -> torch.Tensor:
        m = self.matrix_size
        if isinstance(x, torch.Tensor) and x.dim() >= 2:
            return check_tensor(x, name, (*(None,) * (x.dim() - 2), m, m))
        return check_tensor(x, name, ("...", m, m))

    def hat(self, x: torch.Tensor) -> torch.Tensor:
        """Matrix of a coordinate vector: ``(..., K) -> (..., m, m)``, :math:`\\sum_i x_i E_i`."""
        x = self._check_vectors(x, "x")
        m = self.matrix_size
        return (x @ self._like("basis_flat", x)).unflatten(-1, (m, m))

    def vee(self, matrix: torch.Tensor) -> torch.Tensor:
        """Coordinates of a matrix: ``(..., m, m) -> (..., K)`` (least squares for non-members).

        Args:
            matrix: ``(..., m, m)`` elements of the algebra.
        """
        matrix = self._check_matrices(matrix, "matrix")
        return matrix.flatten(-2) @ self._like("vee_matrix", matrix)

    def exp(self, x: torch.Tensor) -> torch.Tensor:
        """Group element ``matrix_exp(hat(x))``: ``(..., K) -> (..., m, m)``."""
        return torch.linalg.matrix_exp(self.hat(x))

    def ad_matrix(self, x: torch.Tensor) -> torch.Tensor:
        """Matrix of :math:`\\mathrm{ad}_x = [x, \\cdot]`: ``(..., K) -> (..., K, K)``."""
        x = self._check_vectors(x, "x")
        return (x @ self._like("ad_flat", x)).unflatten(-1, (self.dim, self.dim))

    def bracket(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Lie bracket in coordinates: ``(..., K), (..., K) -> (..., K)`` (broadcast).

        Computed with the structure constants, :math:`[x, y]_k = \\sum_{ij} x_i y_j C_{ijk}`;
        equal to ``vee(hat(x) @ hat(y) - hat(y) @ hat(x))``.
        """
        y = self._check_vectors(y, "y")
        return (self.ad_matrix(x) @ y.unsqueeze(-1)).squeeze(-1)

    def killing(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Killing form :math:`B(x, y) = x^\\top \\kappa\\, y`: ``(..., K), (..., K) -> (...)``."""
        x = self._check_vectors(x, "x")
        y = self._check_vectors(y, "y")
        return ((x @ self._like("killing_matrix", x)) * y).sum(-1)

    # ------------------------------------------------------------------ the group
    def Ad(self, g: torch.Tensor, *, check: bool = False) -> torch.Tensor:  # noqa: N802
        """Adjoint matrices of group elements: ``(..., m, m) -> (..., K, K)``.

        Column ``i`` is ``vee(g E_i g^-1)``, so ``Ad(g) @ x == vee(g hat(x) g^-1)``.

        Args:
            g: ``(..., m, m)`` invertible matrices, elements of the algebra's group.
            check: Raise when conjugation by ``g`` leaves the algebra (``vee`` would then
                silently return a least-squares projection): the reconstruction
                ``hat(vee(g E_i g^-1))`` must match ``g E_i g^-1`` to a relative ``1e-5``.

        Raises:
            ValueError: ``check`` and some ``g`` does not preserve the algebra.
        """
        g = self._check_matrices(g, "g")
        basis = self._like("basis", g)
        images = g.unsqueeze(-3) @ basis @ torch.linalg.inv(g).unsqueeze(-3)  # (..., K, m, m)
        coords = self.vee(images)  # (..., K_i, K_k)
        if check:
            residual = float(torch.linalg.matrix_norm(self.hat(coords) - images).amax())
            size = float(torch.linalg.matrix_norm(images).amax())
            if residual > 1e-5 * max(1.0, size):
                raise ValueError(
                    f"g: conjugation by g leaves the algebra {self.name} (residual "
                    f"{residual:.2e}); g must be an element of the algebra's group"
                )
        return coords.transpose(-1, -2)

    def conjugate(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """Conjugate vectors on the last axis: ``x (..., K), g (..., m, m) -> (..., K)``.

        Returns ``vee(g hat(x) g^-1)`` (``= Ad_g x``); the leading dimensions broadcast.
        """
        g = self._check_matrices(g, "g")
        return self.vee(g @ self.hat(x) @ torch.linalg.inv(g))

    def apply_adjoint(
        self, adjoint: torch.Tensor, x: torch.Tensor, *, axis: int = 2
    ) -> torch.Tensor:
        """Apply adjoint matrices along one axis of a feature tensor.

        Args:
            adjoint: ``(K, K)`` applied everywhere, or ``(batch, K, K)``, one per sample (row
                ``b`` of ``x``'s first axis), e.g. from `Ad`.
            x: Feature tensor with ``K`` at ``axis``; the layer layout is ``(batch, channels,
                K)`` or ``(batch, channels, K, num_points)`` (``axis=2``).
            axis: The algebra axis of ``x``.

        Returns:
            ``x`` with every K-vector along ``axis`` replaced by ``Ad @ vector``, same shape.
        """
        k = self.dim
        if not isinstance(x, torch.Tensor) or x.dim() == 0:
            check_tensor(x, "x", ("...", k))  # raises: not a tensor, or a scalar
        if not -x.dim() <= axis < x.dim():
            raise ValueError(f"x: axis {axis} out of range for a tensor of shape {tuple(x.shape)}")
        expected: list[int | None] = [None] * x.dim()
        expected[axis] = k
        check_tensor(x, "x", expected)
        if not isinstance(adjoint, torch.Tensor) or adjoint.dim() not in (2, 3):
            check_tensor(adjoint, "adjoint", (k, k))  # raises, naming the expected shape
        moved = x.movedim(axis, -1)
        if adjoint.dim() == 2:
            check_tensor(adjoint, "adjoint", (k, k))
            out = moved @ adjoint.transpose(-1, -2)
        else:
            if axis % x.dim() == 0:
                raise ValueError("x: axis 0 is the batch axis; per-sample adjoints need axis >= 1")
            check_tensor(adjoint, "adjoint", (x.shape[0], k, k))
            # one batched matmul per sample, without broadcasting Ad to every channel/point
            out = torch.einsum("bkl,b...l->b...k", adjoint, moved)
        return out.movedim(-1, axis)

    def act(self, g: torch.Tensor, x: torch.Tensor, *, axis: int = 2) -> torch.Tensor:
        """Act by group elements on a feature tensor: `apply_adjoint` with ``Ad(g)``.

        Args:
            g: ``(m, m)`` one element for the whole tensor, or ``(batch, m, m)`` one per sample.
            x: Feature tensor with ``K`` at ``axis`` (layer layout: ``axis=2``).
            axis: The algebra axis of ``x``.

        Returns:
            The transformed tensor, same shape as ``x``.
        """
        g = self._check_matrices(g, "g")
        if g.dim() > 3:
            raise ValueError(f"g: expected shape (m, m) or (batch, m, m), got {tuple(g.shape)}")
        return self.apply_adjoint(self.Ad(g.to(x.dtype)), x, axis=axis)

    def random_group_element(
        self,
        batch_shape: Sequence[int] = (),
        *,
        scale: float = 0.5,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = _F64,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """Random group elements ``matrix_exp(hat(h))``, :math:`h \\sim U[-s, s]^K`.

        The recipe of the official equivariance tests (``s = 0.5`` keeps the condition number
        of sl(3) elements around 3-7); for so3 it gives rotations by angles up to
        :math:`\\sqrt 3\\, s`. ``h`` is drawn in float64 on the generator's device (CPU without
        one), so the draws do not depend on ``dtype`` or ``device``.

        Args:
            batch_shape: Leading shape of the result.
            scale: ``s > 0``.
            generator: Generator to draw from (``None``: torch's global generator).
            dtype: Floating dtype of the result.
            device: Device of the result (default: the generator's, else CPU).

        Returns:
            ``(*batch_shape, m, m)`` group elements.
        """
        s = check_number("scale", scale, low=0.0, strict=True)
        shape = tuple(check_int("batch_shape", n, low=0) for n in batch_shape)
        draw_device = generator.device if generator is not None else torch.device("cpu")
        h = torch.rand((*shape, self.dim), generator=generator, dtype=_F64, device=draw_device)
        g = self.exp((2 * h - 1) * s)
        return g.to(device=draw_device if device is None else device, dtype=dtype)

    def killing_scale(self) -> float:
        """``c`` with :math:`B(x, y) = c\\, \\mathrm{tr}(\\hat x \\hat y)`.

        Raises:
            ValueError: the Killing form is not a multiple of the trace form (possible for a
                semisimple algebra that is not simple, or in a reducible representation).
        """
        e = self._tensors["basis"]
        trace_form = torch.einsum("iab,jba->ij", e, e)
        kf = self._tensors["killing_matrix"]
        c = float((kf * trace_form).sum() / (trace_form * trace_form).sum())
        if torch.linalg.vector_norm(kf - c * trace_form) > 1e-9 * torch.linalg.vector_norm(kf):
            raise ValueError(f"{self.name}: the Killing form is not a multiple of tr(XY)")
        return c


# ---------------------------------------------------------------------- built-in algebras
def _unit(m: int, i: int, j: int) -> torch.Tensor:
    e = torch.zeros(m, m, dtype=_F64)
    e[i, j] = 1.0
    return e


@functools.cache
def so3() -> LieAlgebra:
    """so(3), K = 3, m = 3: the hat-map basis (x, y, z generators), ``hat(w) v = w x v``.

    :math:`B(x, y) = \\mathrm{tr}(\\hat x \\hat y) = -2\\, x \\cdot y` (negative definite).
    """
    basis = [_unit(3, 2, 1) - _unit(3, 1, 2), _unit(3, 0, 2) - _unit(3, 2, 0)]
    basis.append(_unit(3, 1, 0) - _unit(3, 0, 1))
    return LieAlgebra.from_basis(torch.stack(basis), name="so3")


@functools.cache
def sl3() -> LieAlgebra:
    """sl(3), K = 8, m = 3, in the official order.

    ``diag(1, -1, 0)``, ``e12 + e21``, ``e21 - e12``, ``diag(1, 1, -2)``, ``e13``, ``e23``,
    ``e31``, ``e32`` (``eij`` the matrix unit, 1-based). :math:`B = 6\\,\\mathrm{tr}(XY)`,
    signature (5, 3, 0).
    """
    u = functools.partial(_unit, 3)
    basis = [
        u(0, 0) - u(1, 1),
        u(0, 1) + u(1, 0),
        u(1, 0) - u(0, 1),
        u(0, 0) + u(1, 1) - 2 * u(2, 2),
        u(0, 2),
        u(1, 2),
        u(2, 0),
        u(2, 1),
    ]
    return LieAlgebra.from_basis(torch.stack(basis), name="sl3")


@functools.cache
def sp4() -> LieAlgebra:
    """sp(4), K = 10, m = 4: :math:`X^\\top J + J X = 0`, :math:`J = [[0, I], [-I, 0]]`.

    Its elements are :math:`X = [[A, B], [C, -A^\\top]]` with ``B``, ``C`` symmetric ``2 x 2``.
    The basis, in the order of the official code: ``A`` = ``e11``, ``e12``, ``e21``, ``e22``
    (with ``B = C = 0``); then ``C`` = ``e11``, ``e12 + e21``, ``e22``; then ``B`` = ``e11``,
    ``e12 + e21``, ``e22`` (the other blocks 0). :math:`B = 6\\,\\mathrm{tr}(XY)`, signature
    (6, 4, 0).
    """
    two = functools.partial(_unit, 2)
    zero = torch.zeros(2, 2, dtype=_F64)
    symmetric = [two(0, 0), two(0, 1) + two(1, 0), two(1, 1)]
    basis = [torch.block_diag(a, -a.T) for a in (two(0, 0), two(0, 1), two(1, 0), two(1, 1))]
    basis += [torch.cat([torch.cat([zero, zero], 1), torch.cat([c, zero], 1)]) for c in symmetric]
    basis += [torch.cat([torch.cat([zero, b], 1), torch.cat([zero, zero], 1)]) for b in symmetric]
    return LieAlgebra.from_basis(torch.stack(basis), name="sp4")


@functools.cache
def so(n: int) -> LieAlgebra:
    """so(n), K = n(n-1)/2, m = n; ``so(3)`` is `so3`.

    Basis ``e_ji - e_ij`` for ``i < j`` in row-major order. :math:`B = (n-2)\\,\\mathrm{tr}(XY)`.

    Raises:
        ValueError: ``n < 3`` (so(2) is abelian, not semisimple).
    """
    check_int("n", n, low=3)
    if n == 3:
        return so3()
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    basis = torch.stack([_unit(n, j, i) - _unit(n, i, j) for i, j in pairs])
    return LieAlgebra.from_basis(basis, name=f"so({n})")


@functools.cache
def sl(n: int) -> LieAlgebra:
    """sl(n), K = n^2 - 1, m = n; ``sl(3)`` is `sl3`.

    Basis: ``e_ii - e_(i+1)(i+1)`` for ``i < n - 1``, then ``e_ij`` for ``i != j`` in row-major
    order. :math:`B = 2n\\,\\mathrm{tr}(XY)`.

    Raises:
        ValueError: ``n < 2``.
    """
    check_int("n", n, low=2)
    if n == 3:
        return sl3()
    diagonal = [_unit(n, i, i) - _unit(n, i + 1, i + 1) for i in range(n - 1)]
    off = [_unit(n, i, j) for i in range(n) for j in range(n) if i != j]
    return LieAlgebra.from_basis(torch.stack(diagonal + off), name=f"sl({n})")


_PATTERN = re.compile(r"^(so|sl)\(?(\d+)\)?$")


def get_algebra(algebra: LieAlgebra | str) -> LieAlgebra:
    """The algebra named ``algebra`` (an algebra is returned unchanged).

    Args:
        algebra: ``"so3"``, ``"sl3"``, ``"sp4"``, ``"so(n)"`` / ``"son"`` or ``"sl(n)"`` /
            ``"sln"``, or a `LieAlgebra`.

    Raises:
        ValueError: an unknown name.
    """
    if isinstance(algebra, LieAlgebra):
        return algebra
    if algebra == "sp4":
        return sp4()
    match = _PATTERN.match(algebra) if isinstance(algebra, str) else None
    if match is None:
        raise ValueError(
            f"algebra: expected a LieAlgebra or one of {', '.join(ALGEBRA_NAMES)}, so(n), "
            f"sl(n), got {algebra!r}"
        )
    n = int(match.group(2))
    return so(n) if match.group(1) == "so" else sl(n)
