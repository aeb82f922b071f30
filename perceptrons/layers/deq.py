"""A weight-tied deep equilibrium (DEQ) layer with implicit-function-theorem gradients.

Dimension legend: ``b`` batch, ``d`` = ``in_features``, ``n`` = ``width``.

The layer returns the fixed point

.. math::

    h^* = \\phi(W h^* + U x + b), \\qquad W_{ij} \\sim \\mathcal N(0, \\sigma_w^2 / n),
    \\quad U_{ij} \\sim \\mathcal N(0, \\sigma_u^2 / d),
    \\quad b_i \\sim \\mathcal N(0, \\sigma_b^2),

with :math:`\\sigma_w` = ``weight_std``, :math:`\\sigma_u` = ``input_std`` and
:math:`\\sigma_b` = ``bias_std`` (the model of Gao et al. 2023, arXiv:2310.10767; their code has
no bias). It is found from :math:`h^0 = 0` by Picard iteration
:math:`h^{\\ell} = \\phi(W h^{\\ell-1} + Ux + b)` or by Anderson acceleration.

Convergence. Picard iteration is a global contraction when
:math:`\\mathrm{Lip}(\\phi)\\,\\sigma_w \\|G\\|_{op}/\\sqrt n < 1`
(:math:`W = \\sigma_w G/\\sqrt n`), i.e. :math:`\\sigma_w < 1/(2\\,\\mathrm{Lip}\\,\\phi)` with
high probability at large width
(0.5 for ReLU and tanh). What governs it in practice is the local rate
:math:`\\sigma_w\\sqrt{E[\\phi'(u)^2]}` (:math:`\\sigma_w/\\sqrt 2` for ReLU), so ReLU needs
:math:`\\sigma_w < \\sqrt 2`. The residual of an iterate :math:`z` is, per sample,
:math:`\\|f(z) - z\\|_2 / \\max(\\|f(z)\\|_2, \\varepsilon)` (:math:`\\varepsilon` the dtype's
machine epsilon, so a zero fixed point counts as converged), and `SolverInfo.residual` is its
maximum over the batch. A solve that ends above ``tol`` (or goes non-finite) raises
`FixedPointError` naming the residual and the bound, or, with ``on_divergence="flag"``, returns
the lowest-residual iterate with ``last_info.converged = False``.

Solvers. ``"picard"`` is the default (the authors' choice). ``"anderson"`` is offered for
trained or structured weights; at a random initialisation it gives no speed-up: the spectrum of
the Jacobian :math:`J = D_{\\phi'} W` fills a disc centred at 0, where the best polynomial
acceleration is plain Picard iteration (measured: the same ~30 iterations to 1e-10 at
:math:`\\sigma_w = 0.6`, and slower than Picard near :math:`\\sigma_w = \\sqrt 2`). Broyden is
not implemented for the same reason.

Gradients (the backward-hook form of torchdeq's ``hook_ift`` and locuslab/deq): the forward
solves for :math:`z^*` without autograd, then applies one tracked step :math:`h = f(z^*)`. A
hook on :math:`h` replaces its incoming gradient :math:`\\bar h` by the solution of the adjoint
fixed point :math:`g = J^\\top g + \\bar h` (:math:`J = \\partial f/\\partial z` at :math:`z^*`,
products :math:`J^\\top g` by ``torch.autograd.grad``), solved with the same solver and
tolerance, so every parameter and the input get the implicit-function-theorem gradient
:math:`g^\\top \\partial f/\\partial\\theta`. The hook stays registered, so repeated backward
passes (``retain_graph=True``, ``gradcheck``) give the same result; the adjoint solve's info is
``last_backward_info``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeAlias

import torch
from torch import nn

from perceptrons.layers.activations import ActivationLike, get_activation
from perceptrons.layers.linear import DenseLinear

__all__ = [
    "DEQLayer",
    "DivergenceMode",
    "FixedPointError",
    "SolverInfo",
    "SolverName",
    "anderson_solve",
    "picard_solve",
]

SolverName: TypeAlias = Literal["picard", "anderson"]
DivergenceMode: TypeAlias = Literal["raise", "flag"]
_SOLVERS = ("picard", "anderson")
_DIVERGENCE_MODES = ("raise", "flag")


def _check_finite_input(x: torch.Tensor) -> None:
    """Raise a `ValueError` naming the rows of ``x`` ``(b, d)`` that are not finite."""
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        rows = bad.reshape(x.shape[0], -1).any(1).nonzero().flatten() if x.dim() else bad
        shown = ", ".join(str(int(r)) for r in rows[:5]) + (", ..." if rows.numel() > 5 else "")
        kinds = " and ".join(
            k for k, m in (("NaN", x.isnan()), ("infinite", x.isinf())) if bool(m.any())
        )
        raise ValueError(
            f"DEQLayer: input x of shape {tuple(x.shape)} has {kinds} values "
            f"({int(bad.sum())} entries, rows {shown}); a fixed point exists only for finite "
            "inputs: clean or impute the data first"
        )


class FixedPointError(RuntimeError):
    """A DEQ solve ended above its tolerance or went non-finite."""


@dataclass(frozen=True)
class SolverInfo:
    """Outcome of one fixed-point solve.

    Attributes:
        residual: Largest per-sample relative residual ``|f(z) - z| / |f(z)|`` of the returned
            iterate (``inf`` or ``nan`` when the iteration blew up).
        iterations: Number of evaluations of ``f``.
        converged: Whether ``residual <= tol``.
    """

    residual: float
    iterations: int
    converged: bool


def _residual(fz: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Per-sample relative residual ``(b, n), (b, n) -> (b,)``."""
    eps = torch.finfo(fz.dtype).eps
    num = torch.linalg.vector_norm(fz - z, dim=-1)
    return num / torch.linalg.vector_norm(fz, dim=-1).clamp_min(eps)


def _keep_best(
    best: torch.Tensor, best_res: torch.Tensor, z: torch.Tensor, res: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample, keep ``z`` where its residual beats the best so far (NaN never wins)."""
    better = res < best_res
    return torch.where(better[:, None], z, best), torch.where(better, res, best_res)


def _finish(
    best: torch.Tensor, best_res: torch.Tensor, iterations: int, tol: float
) -> tuple[torch.Tensor, SolverInfo]:
    residual = float(best_res.max()) if best_res.numel() else 0.0
    return best, SolverInfo(residual, iterations, bool(residual <= tol))


def picard_solve(
    f: Callable[[torch.Tensor], torch.Tensor],
    z0: torch.Tensor,
    *,
    tol: float,
    max_iter: int,
) -> tuple[torch.Tensor, SolverInfo]:
    """Fixed point of ``f`` by Picard iteration ``z <- f(z)``: ``(b, n) -> (b, n)``.

    Args:
        f: The map, ``(b, n) -> (b, n)``, applied row by row.
        z0: Starting point ``(b, n)``.
        tol: Stop once every sample's relative residual is at most ``tol``.
        max_iter: Maximum number of evaluations of ``f``.

    Returns:
        The lowest-residual iterate per sample ``(b, n)`` and its `SolverInfo`.
    """
    z = z0
    best = z0
    best_res = torch.full(z0.shape[:1], math.inf, dtype=z0.dtype, device=z0.device)
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 (used after the loop)
        fz = f(z)
        res = _residual(fz, z)
        best, best_res = _keep_best(best, best_res, z, res)
        if bool((best_res <= tol).all()) or not bool(torch.isfinite(res).all()):
            break
        z = fz
    return _finish(best, best_res, iterations, tol)


def anderson_solve(
    f: Callable[[torch.Tensor], torch.Tensor],
    z0: torch.Tensor,
    *,
    tol: float,
    max_iter: int,
    memory: int = 5,
    lam: float = 1e-4,
) -> tuple[torch.Tensor, SolverInfo]:
    """Fixed point of ``f`` by Anderson acceleration (type II, undamped): ``(b, n) -> (b, n)``.

    Each step takes the affine combination :math:`\\sum_i \\alpha_i f(z_i)` of the last
    ``memory`` images that minimises :math:`\\|\\sum_i \\alpha_i (f(z_i) - z_i)\\|^2 +
    \\lambda\\|\\alpha\\|^2` (per sample, :math:`\\sum_i\\alpha_i = 1`). Unlike locuslab/deq,
    the residual matrix is normalised before the ridge :math:`\\lambda` is added, so the
    regularisation is scale-free and does not stall the iteration at tight tolerances (nor
    make the system singular when a sample has converged exactly).

    Args:
        f: The map, ``(b, n) -> (b, n)``, applied row by row.
        z0: Starting point ``(b, n)``.
        tol: Stop once every sample's relative residual is at most ``tol``.
        max_iter: Maximum number of evaluations of ``f``.
        memory: Number ``m >= 1`` of past iterates combined.
        lam: Relative ridge regularisation of the least-squares problem.

    Returns:
        The lowest-residual iterate per sample ``(b, n)`` and its `SolverInfo`.
    """
    b, n = z0.shape
    factory = {"dtype": z0.dtype, "device": z0.device}
    xs = torch.zeros(b, memory, n, **factory)
    fs = torch.zeros(b, memory, n, **factory)
    best = z0
    best_res = torch.full((b,), math.inf, **factory)
    z = z0
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 (used after the loop)
        fz = f(z)
        res = _residual(fz, z)
        best, best_res = _keep_best(best, best_res, z, res)
        if bool((best_res <= tol).all()) or not bool(torch.isfinite(res).all()):
            break
        slot = (iterations - 1) % memory
        xs[:, slot] = z
        fs[:, slot] = fz
        k = min(iterations, memory)
        g = fs[:, :k] - xs[:, :k]  # (b, k, n)
        g = g / torch.linalg.vector_norm(g, dim=(1, 2), keepdim=True).clamp_min(
            torch.finfo(z0.dtype).tiny
        )
        system = torch.zeros(b, k + 1, k + 1, **factory)
        system[:, 0, 1:] = 1
        system[:, 1:, 0] = 1
        system[:, 1:, 1:] = g @ g.transpose(1, 2) + lam * torch.eye(k, **factory)
        rhs = torch.zeros(b, k + 1, 1, **factory)
        rhs[:, 0] = 1
        alpha = torch.linalg.solve(system, rhs)[:, 1:]  # (b, k, 1)
        z = (alpha.transpose(1, 2) @ fs[:, :k]).squeeze(1)
    return _finish(best, best_res, iterations, tol)


def _check_positive_int(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {value!r}")


class DEQLayer(nn.Module):
    """Deep equilibrium layer ``(b, in_features) -> (b, width)``: :math:`h^* = \\phi(Wh^*+Ux+b)`.

    Parameters (standard parameterisation, see `DenseLinear`): ``recurrent.weight`` :math:`W`
    ``(n, n)``, ``input.weight`` :math:`U` ``(n, d)`` and ``input.bias`` :math:`b` ``(n,)``
    (initialised to 0 when ``bias_std == 0``; always trainable). They are drawn in that order.

    Args:
        in_features: Input size :math:`d`.
        width: Width :math:`n` of the hidden state.
        weight_std: :math:`\\sigma_w`: :math:`W_{ij} \\sim N(0, \\sigma_w^2/n)`.
        input_std: :math:`\\sigma_u`: :math:`U_{ij} \\sim N(0, \\sigma_u^2/d)`.
        bias_std: :math:`\\sigma_b`: :math:`b_i \\sim N(0, \\sigma_b^2)`.
        act_layer: Activation :math:`\\phi`: a name in `ACTIVATIONS` or a factory.
        solver: ``"picard"`` or ``"anderson"`` (forward and adjoint solves).
        tol: Relative residual at which a solve stops (see the module docstring).
        max_iter: Maximum evaluations of :math:`f` per solve.
        on_divergence: ``"raise"`` raises `FixedPointError` when a solve ends above ``tol``;
            ``"flag"`` returns the best iterate and sets ``converged=False`` in the info.
        anderson_memory: Number of past iterates Anderson combines.
        device: Device of the parameters.
        dtype: Floating dtype of the parameters.
        generator: Generator the initial parameters are drawn from (``None``: global).

    Attributes:
        last_info: `SolverInfo` of the latest forward solve (``None`` before the first).
        last_backward_info: `SolverInfo` of the latest adjoint solve (``None`` before one).

    Raises:
        ValueError: a size or ``max_iter``/``anderson_memory`` below 1, a negative or
            non-finite std, ``tol`` not in (0, 1), or an unknown solver or divergence mode.
    """

    def __init__(
        self,
        in_features: int,
        width: int,
        *,
        weight_std: float,
        input_std: float,
        bias_std: float = 0.0,
        act_layer: ActivationLike = nn.ReLU,
        solver: SolverName = "picard",
        tol: float = 1e-6,
        max_iter: int = 100,
        on_divergence: DivergenceMode = "raise",
        anderson_memory: int = 5,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if solver not in _SOLVERS:
            raise ValueError(f"solver: expected one of {_SOLVERS}, got {solver!r}")
        if on_divergence not in _DIVERGENCE_MODES:
            raise ValueError(
                f"on_divergence: expected one of {_DIVERGENCE_MODES}, got {on_divergence!r}"
            )
        if not isinstance(tol, int | float) or isinstance(tol, bool) or not 0 < tol < 1:
            raise ValueError(f"tol: expected a number in (0, 1), got {tol!r}")
        _check_positive_int("max_iter", max_iter)
        _check_positive_int("anderson_memory", anderson_memory)
        factory = {"device": device, "dtype": dtype}
        # DenseLinear validates the sizes and stds (its messages name in/out_features).
        _check_positive_int("in_features", in_features)
        _check_positive_int("width", width)
        self.recurrent = DenseLinear(
            width, width, bias=False, weight_std=weight_std, **factory, generator=generator
        )
        self.input = DenseLinear(
            in_features,
            width,
            weight_std=input_std,
            bias_std=bias_std,
            **factory,
            generator=generator,
        )
        self.act = get_activation(act_layer)()
        self.in_features = in_features
        self.width = width
        self.weight_std = float(weight_std)
        self.input_std = float(input_std)
        self.bias_std = float(bias_std)
        self.solver: SolverName = solver
        self.tol = float(tol)
        self.max_iter = max_iter
        self.on_divergence: DivergenceMode = on_divergence
        self.anderson_memory = anderson_memory
        self.last_info: SolverInfo | None = None
        self.last_backward_info: SolverInfo | None = None

    def _solve(
        self, f: Callable[[torch.Tensor], torch.Tensor], z0: torch.Tensor, what: str
    ) -> tuple[torch.Tensor, SolverInfo]:
        if self.solver == "picard":
            z, info = picard_solve(f, z0, tol=self.tol, max_iter=self.max_iter)
        else:
            z, info = anderson_solve(
                f, z0, tol=self.tol, max_iter=self.max_iter, memory=self.anderson_memory
            )
        if not info.converged and self.on_divergence == "raise":
            raise FixedPointError(
                f"DEQLayer: the {what} solve ({self.solver}) did not converge: relative "
                f"residual {info.residual:.3e} > tol {self.tol:.1e} after {info.iterations} "
                f"iterations (max_iter={self.max_iter}). With weight_std={self.weight_std:g}, "
                "Picard iteration contracts when weight_std * sqrt(E[phi'(u)^2]) < 1 "
                "(weight_std < sqrt(2) ~ 1.414 for ReLU) and is guaranteed to when "
                "weight_std < 1 / (2 Lip(phi)) (0.5 for ReLU and tanh). Lower weight_std, "
                "raise max_iter or tol, or pass on_divergence='flag'."
            )
        return z, info

    def _step(self, z: torch.Tensor, injection: torch.Tensor) -> torch.Tensor:
        """One application of the map: ``phi(z W^T + injection)``, ``(b, n) -> (b, n)``."""
        return self.act(self.recurrent(z) + injection)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Fixed point ``(b, in_features) -> (b, width)``; sets ``last_info``.

        Raises:
            ValueError: ``x`` has NaN or infinite entries (no equilibrium exists for them).
            FixedPointError: the solve did not converge and ``on_divergence == "raise"``.
        """
        _check_finite_input(x)
        injection = self.input(x)  # (b, n), tracked
        z0 = torch.zeros_like(injection)
        with torch.no_grad():
            z_star, self.last_info = self._solve(lambda z: self._step(z, injection), z0, "forward")
        # One tracked step re-attaches the parameters and the input to the graph.
        h = self._step(z_star, injection)
        if h.requires_grad:
            self._attach_implicit_backward(h, z_star, injection.detach())
        return h

    def _attach_implicit_backward(
        self, h: torch.Tensor, z_star: torch.Tensor, injection: torch.Tensor
    ) -> None:
        """Register the hook that turns ``h``'s gradient into the IFT adjoint solution."""
        with torch.enable_grad():
            z0 = z_star.detach().requires_grad_()
            weight = self.recurrent.weight.detach()
            f0 = self.act(torch.nn.functional.linear(z0, weight) + injection)

        def implicit_grad(grad: torch.Tensor | None) -> torch.Tensor | None:
            if grad is None:  # an undefined incoming gradient stays undefined
                return None

            def adjoint(g: torch.Tensor) -> torch.Tensor:
                (vjp,) = torch.autograd.grad(f0, z0, g, retain_graph=True)
                return vjp + grad

            with torch.enable_grad():
                g, self.last_backward_info = self._solve(
                    adjoint, torch.zeros_like(grad), "backward (adjoint)"
                )
            return adjoint(g).detach()

        h.register_hook(implicit_grad)

    def forward_iterates(self, x: torch.Tensor, num_iter: int) -> torch.Tensor:
        """Picard iterates ``h^1..h^L`` from ``h^0 = 0`` (tracked, unrolled): ``(L, b, width)``.

        :math:`h^\\ell = \\phi(W h^{\\ell-1} + Ux + b)`; ``h^1 = phi(Ux + b)``.

        Args:
            x: Input ``(b, in_features)``.
            num_iter: Number :math:`L \\ge 1` of iterates.
        """
        _check_positive_int("num_iter", num_iter)
        injection = self.input(x)
        h = self.act(injection)
        iterates = [h]
        for _ in range(num_iter - 1):
            h = self._step(h, injection)
            iterates.append(h)
        return torch.stack(iterates)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, width={self.width}, "
            f"weight_std={self.weight_std}, input_std={self.input_std}, "
            f"bias_std={self.bias_std}, solver={self.solver!r}, tol={self.tol}, "
            f"max_iter={self.max_iter}, on_divergence={self.on_divergence!r}"
        )
