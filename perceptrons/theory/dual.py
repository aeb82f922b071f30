"""Dual activations (V-maps), the ReLU correlation map and the standard MLP NNGP recursion.

Paper: Li & Nica (2023), *Differential Equation Scaling Limits of Shaped and Unshaped Neural
Networks*, arXiv:2310.12079. This module holds the infinite-width building blocks its limits are
made of.

Implemented: for :math:`u \\sim N(0, K)` with :math:`K = \\begin{pmatrix} k_{11} & k_{12} \\\\
k_{12} & k_{22}\\end{pmatrix}`, :math:`\\rho = k_{12}/\\sqrt{k_{11}k_{22}}` and
:math:`\\theta = \\arccos\\rho`, the dual activation
:math:`V_\\phi(K) = \\mathbb E[\\phi(u_1)\\phi(u_2)]` in closed form for

* ReLU (arc-cosine kernel of degree 1, Cho & Saul 2009):
  :math:`\\frac{\\sqrt{k_{11}k_{22}}}{2\\pi}(\\sin\\theta + (\\pi - \\theta)\\cos\\theta)`;
* step :math:`1\\{x > 0\\}` (degree 0): :math:`(\\pi - \\theta)/(2\\pi)`;
* sign: :math:`\\frac 2\\pi \\arcsin\\rho`;
* shaped ("AB") ReLU :math:`b\\max(x,0) + a\\min(x,0)` (neural-tangents' ``ABRelu(a, b)``):
  :math:`\\sqrt{k_{11}k_{22}}\\,[\\rho(a^2+b^2)/2 + (b-a)^2 g(\\rho)/(2\\pi)]`;
* erf (Williams 1997): :math:`\\frac 2\\pi\\arcsin\\frac{2k_{12}}{\\sqrt{(1+2k_{11})(1+2k_{22})}}`,
  and its derivative :math:`\\frac 4\\pi((1+2k_{11})(1+2k_{22}) - 4k_{12}^2)^{-1/2}`;
* any elementwise torch function by 2-D Gauss–Hermite quadrature (`gauss_hermite_dual`);

plus the normalised ReLU correlation map :math:`J`, the gap :math:`g`, a cancellation-free
:math:`1 - J(1 - \\varepsilon)`, the shaped correlation drift :math:`\\nu` and the NNGP recursion
of a standard MLP (Lee et al. 2018).

Reconstruction: only the abstract of the paper was available; the classical kernels are taken
from the literature cited above and the shaped map is our derivation; every closed form is
checked against quadrature and Monte Carlo in ``tests/theory/test_dual.py``.

Conventions: inputs are numbers or tensors broadcast against each other (any leading shape
``...``); results are float64 tensors of the broadcast shape. Correlations are clipped to
:math:`[-1, 1]`; a zero variance gives correlation 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeAlias

import numpy as np
import torch

__all__ = [
    "ab_relu_dual",
    "correlation_gap",
    "dual_matrix",
    "erf_dual",
    "erf_prime_dual",
    "gauss_hermite_dual",
    "nngp_recursion",
    "one_minus_j",
    "relu_correlation_map",
    "relu_dual",
    "shaped_correlation_drift",
    "shaped_relu_correlation_map",
    "sign_dual",
    "step_dual",
]

TensorLike: TypeAlias = float | torch.Tensor
"""A number or a tensor (converted to float64)."""

DualFn: TypeAlias = Callable[[TensorLike, TensorLike, TensorLike], torch.Tensor]
"""An elementwise dual ``(k11, k22, k12) -> E[phi(u1) phi(u2)]``."""


def _f64(x: TensorLike) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float64)


def _polar(k11: TensorLike, k22: TensorLike, k12: TensorLike) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sqrt(k11 k22), rho)`` broadcast, with rho clipped to [-1, 1] (0 where a variance is 0)."""
    k11, k22, k12 = torch.broadcast_tensors(_f64(k11), _f64(k22), _f64(k12))
    norm = torch.sqrt(k11.clamp_min(0) * k22.clamp_min(0))
    safe = torch.where(norm > 0, norm, torch.ones_like(norm))
    rho = torch.where(norm > 0, k12 / safe, torch.zeros_like(norm)).clamp(-1.0, 1.0)
    return norm, rho


def correlation_gap(rho: TensorLike) -> torch.Tensor:
    """:math:`g(\\rho) = \\sqrt{1-\\rho^2} - \\rho\\arccos\\rho \\ge 0`, shape of ``rho``.

    The nonlinear part of the ReLU correlation map: :math:`J(\\rho) = \\rho + g(\\rho)/\\pi`.
    :math:`g(1) = 0`, :math:`g(0) = 1`, :math:`g(-1) = \\pi`, and :math:`g` is decreasing.
    """
    rho = _f64(rho).clamp(-1.0, 1.0)
    return torch.sqrt(1 - rho * rho) - rho * torch.arccos(rho)


def relu_correlation_map(rho: TensorLike) -> torch.Tensor:
    """:math:`J(\\rho) = (\\sqrt{1-\\rho^2} + (\\pi - \\arccos\\rho)\\rho)/\\pi`, shape of ``rho``.

    The correlation after one ReLU layer with :math:`\\sigma_w^2 = 2` at infinite width:
    :math:`J(1) = 1`, :math:`J(0) = 1/\\pi`, :math:`J(-1) = 0`. Near 1 use `one_minus_j`.
    """
    rho = _f64(rho).clamp(-1.0, 1.0)
    return rho + correlation_gap(rho) / math.pi


# Taylor coefficients of sin(t) - t cos(t) = sum_k (-1)^(k+1) 2k t^(2k+1) / (2k+1)!, k = 1..8:
# below t = 0.5 the 9th term is < 1e-18 of the sum, so 8 terms reach float64 precision.
_SERIES = tuple((-1) ** (k + 1) * 2 * k / math.factorial(2 * k + 1) for k in range(1, 9))


def _sin_minus_theta_cos(theta: torch.Tensor) -> torch.Tensor:
    """:math:`\\sin\\theta - \\theta\\cos\\theta` without cancellation for small theta.

    Below 0.5 (where the direct form loses about log10(1/theta^2) digits) a Horner evaluation
    of the Taylor series is used; the direct form is only computed when some theta >= 0.5.
    This function sits in the inner loop of deep chains, hence the in-place arithmetic.
    """
    small = theta.clamp(max=0.5)
    t2 = small * small
    series = torch.full_like(theta, _SERIES[-1])
    for coefficient in reversed(_SERIES[:-1]):
        series.mul_(t2).add_(coefficient)
    series.mul_(t2).mul_(small)  # theta^3 * P(theta^2)
    large = theta >= 0.5
    if not bool(large.any()):
        return series
    direct = torch.sin(theta) - theta * torch.cos(theta)
    return torch.where(large, direct, series)


def one_minus_j(eps: TensorLike) -> torch.Tensor:
    """:math:`1 - J(1 - \\varepsilon)` for :math:`\\varepsilon = 1 - \\rho \\in [0, 2]`, stably.

    .. math::

        1 - J(1-\\varepsilon) = \\varepsilon - \\frac{\\sin\\theta - \\theta\\cos\\theta}{\\pi},
        \\qquad \\theta = 2\\arcsin\\sqrt{\\varepsilon/2} = \\arccos(1 - \\varepsilon),

    with a Taylor series for :math:`\\sin\\theta - \\theta\\cos\\theta` at small
    :math:`\\theta`, so the relative error stays near machine precision as
    :math:`\\varepsilon \\to 0` (the direct :math:`1 - J(\\rho)` loses every digit).
    Near 0 it is :math:`\\varepsilon - a\\varepsilon^{3/2} + O(\\varepsilon^2)`,
    :math:`a = 2\\sqrt 2/(3\\pi)`.

    Args:
        eps: :math:`\\varepsilon`, clipped to :math:`[0, 2]`; any shape.

    Returns:
        Float64 tensor of the shape of ``eps``.
    """
    eps = _f64(eps).clamp(0.0, 2.0)
    theta = 2 * torch.arcsin(torch.sqrt(eps / 2))
    return eps - _sin_minus_theta_cos(theta) / math.pi


def shaped_correlation_drift(rho: TensorLike, c2: TensorLike) -> torch.Tensor:
    """:math:`\\nu(\\rho) = \\frac{C^2}{2\\pi} g(\\rho)`, the drift of the correlation ODE/SDE.

    :math:`\\nu(1) = 0` and :math:`\\nu(-1) = C^2/2`. Shape: broadcast of ``rho`` and ``c2``.
    """
    return _f64(c2) / (2 * math.pi) * correlation_gap(rho)


def shaped_relu_correlation_map(
    rho: TensorLike, s_plus: TensorLike, s_minus: TensorLike
) -> torch.Tensor:
    """One infinite-width layer of the shaped ReLU MLP: :math:`\\rho + \\kappa g(\\rho)/(2\\pi)`.

    :math:`\\kappa = 2(s_+ - s_-)^2/(s_+^2 + s_-^2)`; the identity when :math:`s_+ = s_-`.
    Equals ``ab_relu_dual(1, 1, rho, a=s_minus, b=s_plus)`` divided by its value at
    :math:`\\rho = 1`. Shape: broadcast of the arguments.
    """
    s_plus, s_minus = _f64(s_plus), _f64(s_minus)
    kappa = 2 * (s_plus - s_minus) ** 2 / (s_plus**2 + s_minus**2)
    rho = _f64(rho).clamp(-1.0, 1.0)
    return rho + kappa * correlation_gap(rho) / (2 * math.pi)


# ---------------------------------------------------------------------- closed-form duals
def relu_dual(k11: TensorLike, k22: TensorLike, k12: TensorLike) -> torch.Tensor:
    """ReLU: :math:`\\frac{\\sqrt{k_{11}k_{22}}}{2\\pi}(\\sin\\theta + (\\pi-\\theta)\\cos\\theta)`.

    Equals :math:`\\sqrt{k_{11}k_{22}}\\,J(\\rho)/2`; the diagonal is :math:`k_{11}/2`.
    Shape: broadcast of the arguments.
    """
    norm, rho = _polar(k11, k22, k12)
    return norm * relu_correlation_map(rho) / 2


def step_dual(k11: TensorLike, k22: TensorLike, k12: TensorLike) -> torch.Tensor:
    """Step :math:`1\\{x > 0\\}` (= ReLU′): :math:`(\\pi - \\theta)/(2\\pi)`.

    Shape: broadcast of the arguments.
    """
    _, rho = _polar(k11, k22, k12)
    return (math.pi - torch.arccos(rho)) / (2 * math.pi)


def sign_dual(k11: TensorLike, k22: TensorLike, k12: TensorLike) -> torch.Tensor:
    """Sign: :math:`\\frac 2\\pi\\arcsin\\rho`. Shape: broadcast of the arguments."""
    _, rho = _polar(k11, k22, k12)
    return 2 / math.pi * torch.arcsin(rho)


def ab_relu_dual(
    k11: TensorLike, k22: TensorLike, k12: TensorLike, *, a: float, b: float
) -> torch.Tensor:
    """Shaped ReLU :math:`\\phi(x) = b\\max(x,0) + a\\min(x,0)` (``a`` = negative slope).

    .. math::

        \\sqrt{k_{11}k_{22}}\\Bigl[\\rho\\frac{a^2+b^2}{2} + \\frac{(b-a)^2}{2\\pi}g(\\rho)\\Bigr]

    neural-tangents' ``stax.ABRelu(a, b)`` convention; the shaped ReLU of Li & Nica has
    ``a = s_minus``, ``b = s_plus``. Shape: broadcast of the arguments.
    """
    norm, rho = _polar(k11, k22, k12)
    return norm * (rho * (a * a + b * b) / 2 + (b - a) ** 2 * correlation_gap(rho) / (2 * math.pi))


def erf_dual(k11: TensorLike, k22: TensorLike, k12: TensorLike) -> torch.Tensor:
    """erf: :math:`\\frac 2\\pi\\arcsin\\frac{2k_{12}}{\\sqrt{(1+2k_{11})(1+2k_{22})}}`.

    Shape: broadcast of the arguments.
    """
    k11, k22, k12 = torch.broadcast_tensors(_f64(k11), _f64(k22), _f64(k12))
    arg = 2 * k12 / torch.sqrt((1 + 2 * k11) * (1 + 2 * k22))
    return 2 / math.pi * torch.arcsin(arg.clamp(-1.0, 1.0))


def erf_prime_dual(k11: TensorLike, k22: TensorLike, k12: TensorLike) -> torch.Tensor:
    """erf′ (for the NTK): :math:`\\frac 4\\pi((1+2k_{11})(1+2k_{22}) - 4k_{12}^2)^{-1/2}`.

    Shape: broadcast of the arguments.
    """
    k11, k22, k12 = torch.broadcast_tensors(_f64(k11), _f64(k22), _f64(k12))
    return 4 / math.pi / torch.sqrt((1 + 2 * k11) * (1 + 2 * k22) - 4 * k12 * k12)


def gauss_hermite_dual(
    fn: Callable[[torch.Tensor], torch.Tensor],
    k11: TensorLike,
    k22: TensorLike,
    k12: TensorLike,
    num_nodes: int = 80,
) -> torch.Tensor:
    """:math:`\\mathbb E[\\phi(u_1)\\phi(u_2)]` by 2-D Gauss–Hermite quadrature, for any ``fn``.

    Writes :math:`u_1 = \\sqrt{k_{11}}z_1`,
    :math:`u_2 = \\sqrt{k_{22}}(\\rho z_1 + \\sqrt{1-\\rho^2}z_2)` with
    :math:`z_1, z_2` on a ``num_nodes`` × ``num_nodes`` probabilists' Hermite grid. Exact to
    float64 precision for smooth ``fn`` at 40–80 nodes; slowly convergent (about 1e-3) for
    kinks such as ReLU.

    Args:
        fn: Elementwise torch function (float64 in, float64 out), e.g. ``torch.tanh``.
        k11, k22, k12: Kernel entries, broadcast against each other; any shape ``...``.
        num_nodes: Quadrature nodes per axis (>= 1).

    Returns:
        Float64 tensor of shape ``...``.

    Raises:
        ValueError: ``num_nodes`` < 1.
    """
    if not isinstance(num_nodes, int) or isinstance(num_nodes, bool) or num_nodes < 1:
        raise ValueError(f"num_nodes: expected an int >= 1, got {num_nodes!r}")
    k11, k22, _ = torch.broadcast_tensors(_f64(k11), _f64(k22), _f64(k12))
    _, rho = _polar(k11, k22, k12)
    nodes, weights = np.polynomial.hermite_e.hermegauss(num_nodes)
    z = torch.as_tensor(nodes, dtype=torch.float64, device=rho.device)
    w = torch.as_tensor(weights / math.sqrt(2 * math.pi), dtype=torch.float64, device=rho.device)
    root11 = torch.sqrt(k11.clamp_min(0))[..., None, None]
    root22 = torch.sqrt(k22.clamp_min(0))[..., None, None]
    r = rho[..., None, None]
    z1, z2 = z[:, None], z[None, :]  # (N, 1), (1, N)
    first = fn(root11 * z1)  # (..., N, 1)
    second = fn(root22 * (r * z1 + torch.sqrt(1 - r * r) * z2))  # (..., N, N)
    return torch.einsum("...ij,i,j->...", first * second, w, w)


def dual_matrix(kernel: TensorLike, dual: DualFn = relu_dual) -> torch.Tensor:
    """The k×k dual :math:`V_\\phi(K)_{ij} = \\mathrm{dual}(K_{ii}, K_{jj}, K_{ij})`.

    Args:
        kernel: PSD matrices :math:`K` of shape ``(..., k, k)``.
        dual: Elementwise dual, e.g. `relu_dual`, ``functools.partial(ab_relu_dual, a=.., b=..)``
            or ``functools.partial(gauss_hermite_dual, torch.tanh)``.

    Returns:
        Float64 tensor of shape ``(..., k, k)``, exactly symmetric (``kernel`` is symmetrised
        first).

    Raises:
        ValueError: ``kernel`` is not a batch of square matrices.
    """
    kernel = _f64(kernel)
    if kernel.dim() < 2 or kernel.shape[-1] != kernel.shape[-2]:
        raise ValueError(f"kernel: expected shape (..., k, k), got {tuple(kernel.shape)}")
    kernel = (kernel + kernel.transpose(-1, -2)) / 2  # exact symmetry of the result
    diag = torch.diagonal(kernel, dim1=-2, dim2=-1)
    return dual(diag[..., :, None], diag[..., None, :], kernel)


def nngp_recursion(
    x: TensorLike,
    depth: int,
    *,
    weight_var: float = 2.0,
    bias_var: float = 0.0,
    dual: DualFn = relu_dual,
) -> torch.Tensor:
    """Infinite-width kernels of a standard MLP (Lee et al. 2018).

    .. math::

        K^1 = \\sigma_w^2 \\frac{X X^\\top}{d} + \\sigma_b^2, \\qquad
        K^{\\ell+1} = \\sigma_w^2 V_\\phi(K^\\ell) + \\sigma_b^2 \\quad (\\ell = 1..L),

    for :math:`z^{\\ell+1} = (\\sigma_w/\\sqrt n) W \\phi(z^\\ell) + \\sigma_b b`. ``depth``
    :math:`L` is the number of hidden layers (activations); :math:`K^{L+1}` is the output GP
    kernel. With ReLU, :math:`\\sigma_w^2 = 2`, :math:`\\sigma_b = 0` the diagonal is preserved
    and correlations follow :math:`\\rho^{\\ell+1} = J(\\rho^\\ell)`.

    Args:
        x: Inputs of shape ``(..., k, d)``.
        depth: Number :math:`L \\ge 0` of hidden layers.
        weight_var: :math:`\\sigma_w^2 \\ge 0`.
        bias_var: :math:`\\sigma_b^2 \\ge 0`.
        dual: Elementwise dual of the activation (default ReLU).

    Returns:
        Float64 tensor of shape ``(depth + 1, ..., k, k)``: :math:`K^1, \\dots, K^{L+1}`.

    Raises:
        ValueError: a wrong input rank, a negative depth or variance.
    """
    x = _f64(x)
    if x.dim() < 2:
        raise ValueError(f"x: expected shape (..., k, d), got {tuple(x.shape)}")
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0:
        raise ValueError(f"depth: expected an int >= 0, got {depth!r}")
    for name, value in (("weight_var", weight_var), ("bias_var", bias_var)):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    kernel = weight_var * (x @ x.transpose(-1, -2)) / x.shape[-1] + bias_var
    kernels = [kernel]
    for _ in range(depth):
        kernel = weight_var * dual_matrix(kernel, dual) + bias_var
        kernels.append(kernel)
    return torch.stack(kernels)
