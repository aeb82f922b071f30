"""The DEQ NNGP kernel of Gao et al. (2023), arXiv:2310.10767, and its finite-depth iterates.

`deq_kernel` is the fixed point :math:`K^* = \\sigma_w^2 V_\\phi(K^*) + \\Sigma^1`;
`deq_depth_kernels` the iterates :math:`K^1 = \\Sigma^1`,
:math:`K^{\\ell+1} = \\sigma_w^2 V_\\phi(K^\\ell) + \\Sigma^1` that converge to it (the kernel of
an untied MLP with input injection at every layer, or of the :math:`\\ell`-th Picard iterate of
the DEQ); docs/kernels.md, "The DEQ kernel".

Dimension legend: ``n1``, ``n2`` numbers of inputs in ``x1`` and ``x2``; ``d`` input features;
``p`` inputs of `deq_depth_kernels`; ``L`` its number of iterates.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import torch

from perceptrons.theory.dual import dual_matrix
from perceptrons.theory.kernels.activations import Activation, ReLU
from perceptrons.theory.kernels.core import (
    Dense,
    KernelState,
    check_block_size,
    check_inputs,
    check_nonnegative,
    check_positive,
    input_state,
    symmetrize_,
)

__all__ = ["DEQKernelInfo", "deq_depth_kernels", "deq_kernel"]


@dataclasses.dataclass(frozen=True)
class DEQKernelInfo:
    """Convergence report of `deq_kernel`.

    Attributes:
        residual: Final relative residual :math:`\\max|K_{t+1} - K_t| / \\max|K_{t+1}|`
            (worst block).
        num_iter: Picard iterations used (worst block).
        converged: ``residual <= tol``.
    """

    residual: float
    num_iter: int
    converged: bool


def deq_kernel(
    x1: torch.Tensor,
    x2: torch.Tensor | None = None,
    *,
    weight_std: float,
    input_std: float,
    bias_std: float = 0.0,
    activation: Activation | None = None,
    output: Literal["preactivation", "hidden"] = "preactivation",
    tol: float = 1e-10,
    max_iter: int = 1000,
    init_scale: float = 1.0,
    block_size: int = 1024,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, DEQKernelInfo]:
    """DEQ NNGP kernel :math:`K^*` of :math:`h^* = \\phi(W h^* + Ux + b)` (Gao et al. 2023).

    .. math::

        K^* = \\sigma_w^2 V_\\phi(K^*) + \\Sigma^1, \\qquad
        \\Sigma^1 = \\sigma_u^2 \\frac{x\\cdot x'}{d} + \\sigma_b^2,

    found by Picard iteration from :math:`K^0 = \\text{init\\_scale}\\cdot\\Sigma^1` (the
    diagonals of ``x1`` and ``x2`` are iterated alongside the cross kernel). For positively
    homogeneous :math:`\\phi` (ReLU, ABReLU, LeakyReLU, Identity) with gain
    :math:`c = V_\\phi(q)/q` (1/2 for ReLU) the fixed point exists iff
    :math:`\\sigma_w^2 c < 1` (the diagonal is :math:`\\Sigma^1(x,x)/(1 - \\sigma_w^2 c)`);
    otherwise divergence is detected during the iteration.

    Args:
        x1: Inputs, shape ``(n1, d)``.
        x2: Inputs, shape ``(n2, d)``; ``None`` means ``x1``.
        weight_std: :math:`\\sigma_w > 0`.
        input_std: :math:`\\sigma_u > 0`.
        bias_std: :math:`\\sigma_b \\ge 0`.
        activation: :math:`\\phi` (default `ReLU`).
        output: ``"preactivation"`` returns :math:`K^*`; ``"hidden"`` returns
            :math:`V_\\phi(K^*)`, the limit of the Gram :math:`h^{*\\top}h^*/n` (times
            :math:`\\sigma_v^2`: the kernel of a readout :math:`\\sigma_v v^\\top h^*/\\sqrt n`).
        tol: Relative residual to stop at.
        max_iter: Maximum number of Picard iterations.
        init_scale: Starting point :math:`K^0 = \\text{init\\_scale}\\cdot\\Sigma^1` (>= 0);
            the fixed point does not depend on it.
        block_size: Rows of ``x1`` per block; peak memory is O(block_size · n2).
        dtype: Computation dtype.

    Returns:
        ``(kernel, info)``: kernel of shape ``(n1, n2)`` and a `DEQKernelInfo`.

    Raises:
        ValueError: bad inputs or parameters, or no fixed point (the condition above, or
            the iteration diverged).
        RuntimeError: not converged to ``tol`` within ``max_iter`` iterations.
    """
    same = x2 is None
    x1, x2 = check_inputs(x1, x2, dtype)
    weight_std = check_positive("weight_std", weight_std)
    input_std = check_positive("input_std", input_std)
    bias_std = check_nonnegative("bias_std", bias_std)
    tol = check_positive("tol", tol)
    init_scale = check_nonnegative("init_scale", init_scale)
    check_block_size(block_size)
    if not isinstance(max_iter, int) or isinstance(max_iter, bool) or max_iter < 1:
        raise ValueError(f"max_iter: expected an int >= 1, got {max_iter!r}")
    if output not in ("preactivation", "hidden"):
        raise ValueError(f"output: expected 'preactivation' or 'hidden', got {output!r}")
    activation = ReLU() if activation is None else activation
    if not isinstance(activation, Activation):
        raise TypeError(f"activation: expected an Activation, got {activation!r}")
    w2 = weight_std**2
    gain = activation.homogeneous_gain
    if gain is not None and w2 * gain >= 1:
        raise ValueError(
            f"weight_std: the DEQ kernel has no fixed point for {activation!r} when "
            f"weight_std**2 * {gain:g} >= 1 (weight_std < {1 / math.sqrt(gain):.6g} needed), "
            f"got weight_std={weight_std!r}"
        )
    source = Dense(input_std, bias_std)
    kernel = x1.new_empty(x1.shape[0], x2.shape[0])  # filled block by block, never copied
    residual, num_iter = 0.0, 0
    for start in range(0, x1.shape[0], block_size):
        sigma = source._apply(
            input_state(
                x1[start : start + block_size], x2, False, None, None, start if same else None
            )
        )
        k, block_residual, steps = _picard(sigma, activation, w2, tol, max_iter, init_scale)
        residual, num_iter = max(residual, block_residual), max(num_iter, steps)
        kernel[start : start + block_size] = (
            activation._apply(k).nngp if output == "hidden" else k.nngp
        )
    if same:  # blocks stop at tol after different numbers of iterations
        symmetrize_(kernel, block_size)
    return kernel, DEQKernelInfo(residual, num_iter, True)


def deq_depth_kernels(
    x: torch.Tensor,
    num_iter: int,
    *,
    weight_std: float,
    input_std: float,
    bias_std: float = 0.0,
    activation: Activation | None = None,
    output: Literal["preactivation", "hidden"] = "preactivation",
) -> torch.Tensor:
    """Finite-depth DEQ kernels :math:`K^1, \\dots, K^L` (or :math:`V_\\phi(K^\\ell)`).

    .. math::

        K^1 = \\Sigma^1, \\qquad K^{\\ell+1} = \\sigma_w^2 V_\\phi(K^\\ell) + \\Sigma^1, \\qquad
        \\Sigma^1 = \\sigma_u^2 \\frac{x\\cdot x'}{d} + \\sigma_b^2.

    :math:`K^\\ell` is the infinite-width pre-activation kernel of the :math:`\\ell`-th Picard
    iterate :math:`h^\\ell = \\phi(W h^{\\ell-1} + Ux + b)` of the DEQ from :math:`h^0 = 0`, and
    equally of layer :math:`\\ell` of the untied MLP with input injection at every layer (a
    fresh :math:`W_\\ell` per layer): weight tying does not change the kernel at any depth
    (docs/kernels.md, "The DEQ kernel"). :math:`V_\\phi(K^\\ell)` is the limit of the finite
    Gram :math:`h^\\ell h^{\\ell\\top}/n` (`perceptrons.theory.deq_montecarlo.
    sample_deq_iterate_grams`). The iterates converge to `deq_kernel`'s fixed point when it
    exists; for ReLU the relative squared Frobenius error of :math:`V_\\phi(K^\\ell)` decays
    like :math:`((\\sigma_w^2/2)^2)^\\ell`.

    Computed in float64 on the whole ``(p, p)`` matrix at once (no blocks: meant for the
    moderate ``p`` of Monte Carlo checks), with `perceptrons.theory.dual.dual_matrix` and the
    activation's closed-form or quadrature dual.

    Args:
        x: Inputs as rows, shape ``(p, d)``.
        num_iter: Number :math:`L \\ge 1` of iterates.
        weight_std: :math:`\\sigma_w > 0`.
        input_std: :math:`\\sigma_u > 0`.
        bias_std: :math:`\\sigma_b \\ge 0`.
        activation: :math:`\\phi` (default `ReLU`).
        output: ``"preactivation"`` returns :math:`K^1..K^L`; ``"hidden"`` returns
            :math:`V_\\phi(K^1)..V_\\phi(K^L)`.

    Returns:
        Float64 tensor of shape ``(L, p, p)`` on the device of ``x``.

    Raises:
        TypeError: ``x`` is not a tensor, or ``activation`` is not an `Activation`.
        ValueError: a bad shape, non-finite inputs, ``num_iter < 1``, a bad standard deviation
            or ``output``.
    """
    x, _ = check_inputs(x, None, torch.float64)
    weight_std = check_positive("weight_std", weight_std)
    input_std = check_positive("input_std", input_std)
    bias_std = check_nonnegative("bias_std", bias_std)
    if not isinstance(num_iter, int) or isinstance(num_iter, bool) or num_iter < 1:
        raise ValueError(f"num_iter: expected an int >= 1, got {num_iter!r}")
    if output not in ("preactivation", "hidden"):
        raise ValueError(f"output: expected 'preactivation' or 'hidden', got {output!r}")
    activation = ReLU() if activation is None else activation
    if not isinstance(activation, Activation):
        raise TypeError(f"activation: expected an Activation, got {activation!r}")
    sigma = input_std**2 * (x @ x.T) / x.shape[1] + bias_std**2  # (p, p)
    k, out = sigma, []
    for _ in range(num_iter):
        v = dual_matrix(k, activation.dual)
        out.append(v if output == "hidden" else k)
        k = weight_std**2 * v + sigma
    return torch.stack(out)


def _sup(*tensors: torch.Tensor) -> float:
    """The largest absolute entry of the tensors (0 for empty ones)."""
    return max((float(t.abs().max()) for t in tensors if t.numel()), default=0.0)


def _picard(
    sigma: KernelState,
    activation: Activation,
    w2: float,
    tol: float,
    max_iter: int,
    init_scale: float,
) -> tuple[KernelState, float, int]:
    """Iterate :math:`K \\mapsto \\sigma_w^2 V_\\phi(K) + \\Sigma^1` until ``tol``.

    Returns ``(K*, relative residual, iterations)``; raises on divergence or ``max_iter``.
    """
    k = KernelState(init_scale * sigma.nngp, init_scale * sigma.var1, init_scale * sigma.var2, None)
    residual = math.inf
    for step in range(1, max_iter + 1):
        v = activation._apply(k.clone())
        new = KernelState(
            w2 * v.nngp + sigma.nngp, w2 * v.var1 + sigma.var1, w2 * v.var2 + sigma.var2, None
        )
        scale = _sup(new.nngp, new.var1, new.var2)
        if not math.isfinite(scale):
            raise ValueError(
                f"weight_std: the DEQ kernel iteration diverged for {activation!r} with "
                f"weight_std={math.sqrt(w2)!r}; no fixed point"
            )
        diff = _sup(new.nngp - k.nngp, new.var1 - k.var1, new.var2 - k.var2)
        k, residual = new, diff / scale if scale > 0 else 0.0
        if residual <= tol:
            return k, residual, step
    raise RuntimeError(
        f"deq_kernel: not converged within max_iter={max_iter} iterations "
        f"(relative residual {residual:.3g} > tol={tol:g}); increase max_iter"
    )
