"""Differential-equation limits of shaped and unshaped MLPs at initialisation, and solvers.

Paper: Li & Nica (2023), *Differential Equation Scaling Limits of Shaped and Unshaped Neural
Networks*, arXiv:2310.12079; the neural covariance SDE is from Li, Nica & Roy (2022),
arXiv:2206.02768.

Implemented (all float64, vectorised over Monte Carlo paths, randomness from an explicit
``torch.Generator``):

* `correlation_ode`: the correlation ODE shared by the shaped MLP at rate :math:`d^{-1/2}` and
  the ReLU ResNet with a :math:`d^{-1/2}` branch,
  :math:`\\dot\\rho = \\nu(\\rho) = \\frac{C^2}{2\\pi}(\\sqrt{1-\\rho^2} - \\rho\\arccos\\rho)`;
* `simulate_correlation_sde`: the two-input correlation SDE of the shaped MLP in the
  proportional limit, :math:`d\\rho = [\\nu(\\rho) - \\rho(1-\\rho^2)/2]dt + (1-\\rho^2)dB`;
* `simulate_covariance_sde`: the k×k neural covariance SDE
  :math:`dV = b(V)dt + L\\,dS\\,L^\\top`, :math:`LL^\\top = V`, with the shaped-ReLU drift
  `shaped_relu_drift`; `smooth_drift` and `explosion_coefficient` give the drift of a shaped
  smooth activation;
* `simulate_q_sde`: the singular SDE of :math:`q_t = \\ell^2(1-\\rho_\\ell)`, :math:`t = \\ell/n`,
  of the unshaped (He-initialised) ReLU MLP, in log form;
* `q_infinite_width`: the deterministic :math:`\\ell^2(1 - \\rho_\\ell)` with
  :math:`\\rho_{\\ell+1} = J(\\rho_\\ell)`, which tends to :math:`9\\pi^2/2`;
* `effective_c2`: the finite-:math:`n` drift constant :math:`2n(s_+-s_-)^2/(s_+^2+s_-^2)`;
* `euler_maruyama`: the generic solver the simulators use.

Reconstruction: only the paper's abstract was available. The covariance and correlation SDEs are
LNR22's, re-derived by us (Itô's formula). The constants of the unshaped
:math:`q_t` SDE (drift :math:`(2q - a q^{3/2})/t + 2q`, :math:`a = 2\\sqrt 2/(3\\pi)`, noise
:math:`2\\sqrt 2 q`, :math:`q_0 = 9\\pi^2/2`) are *our derivation* from a one-step expansion
of the exact Gram chain, not read from the paper, and were checked numerically against exact
finite-width simulation; the paper may use another parameterisation.

Deviations and numerical choices: Euler–Maruyama only (no higher-order scheme; the covariance SDE
has general noise); the correlation is clipped to :math:`[-1, 1]` after each step; the covariance
simulator symmetrises :math:`V` and clips :math:`|V^{\\alpha\\beta}| \\le
\\sqrt{V^{\\alpha\\alpha}V^{\\beta\\beta}}` after each step, and factors :math:`V` with a
pivot-clamped Cholesky so the noise stays defined when rounding leaves :math:`V` slightly
indefinite. The :math:`q` SDE starts at :math:`t_0 > 0` because its drift is singular at 0.

Dimension legend: ``P`` Monte Carlo paths, ``k`` inputs, ``T`` requested times.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy.integrate import solve_ivp

from perceptrons.checks import check_int, check_number
from perceptrons.theory.dual import correlation_gap, shaped_correlation_drift

__all__ = [
    "Q_STAR",
    "correlation_ode",
    "effective_c2",
    "euler_maruyama",
    "explosion_coefficient",
    "q_infinite_width",
    "shaped_relu_drift",
    "simulate_correlation_sde",
    "simulate_covariance_sde",
    "simulate_q_sde",
    "smooth_drift",
]

Q_STAR = 9 * math.pi**2 / 2
"""The limit :math:`q^* = (2/a)^2 = 9\\pi^2/2 \\approx 44.413` of :math:`\\ell^2(1-\\rho_\\ell)`."""

_A = 2 * math.sqrt(2) / (3 * math.pi)  # 1 - J(1 - eps) = eps - _A eps^(3/2) + O(eps^2)

Drift = Callable[[float, torch.Tensor], torch.Tensor]
Diffusion = Callable[[float, torch.Tensor, torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------------- argument checks
def _correlation(name: str, value: object) -> float:
    rho = check_number(name, value)
    if not -1.0 <= rho <= 1.0:
        raise ValueError(f"{name}: expected a correlation in [-1, 1], got {value!r}")
    return rho


# ---------------------------------------------------------------------- generic solver
def euler_maruyama(
    drift: Drift,
    diffusion: Diffusion,
    x0: torch.Tensor,
    t_grid: Sequence[float] | torch.Tensor,
    generator: torch.Generator | None,
    *,
    save_indices: Sequence[int] | None = None,
    project: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Euler–Maruyama for :math:`dX = f(t, X)dt + \\text{(noise)}` on a given time grid.

    Each step draws :math:`\\Delta W` with i.i.d. :math:`N(0, \\Delta t)` entries of the shape of
    :math:`X` and sets

    .. math::

        X_{i+1} = \\mathrm{project}\\bigl(X_i + f(t_i, X_i)\\Delta t_i
            + \\mathrm{diffusion}(t_i, X_i, \\Delta W_i)\\bigr).

    ``diffusion`` returns the noise increment itself: ``g(t, x) * dw`` for diagonal noise, or any
    linear map of ``dw`` for general noise (the covariance SDE uses
    :math:`L\\,\\mathrm{sym}(\\Delta W)L^\\top`).

    Args:
        drift: ``f(t, x) -> tensor`` of the shape of ``x``.
        diffusion: ``diffusion(t, x, dw) -> tensor`` of the shape of ``x``.
        x0: Initial state, any shape ``S`` (e.g. ``(P,)`` or ``(P, k, k)``); its dtype and device
            are used throughout.
        t_grid: Increasing times :math:`t_0 < t_1 < \\dots < t_m`, starting at the time of ``x0``.
        generator: Generator of the Brownian increments (``None``: torch's global generator).
        save_indices: Grid indices at which to return the state (default: every grid point).
        project: Map applied after every step (e.g. clipping to a domain), or ``None``.

    Returns:
        Tensor of shape ``(len(save_indices), *S)`` (``(m + 1, *S)`` by default).

    Raises:
        ValueError: ``t_grid`` has fewer than 2 points or is not strictly increasing, or a save
            index is out of range.
    """
    times = [float(t) for t in (t_grid.tolist() if torch.is_tensor(t_grid) else t_grid)]
    if len(times) < 2 or any(b <= a for a, b in zip(times[:-1], times[1:], strict=True)):
        raise ValueError(f"t_grid: expected >= 2 strictly increasing times, got {times[:5]}...")
    keep = list(range(len(times))) if save_indices is None else [int(i) for i in save_indices]
    if any(not 0 <= i < len(times) for i in keep):
        raise ValueError(f"save_indices: expected indices in [0, {len(times)}), got {keep}")
    wanted = set(keep)
    saved: dict[int, torch.Tensor] = {0: x0} if 0 in wanted else {}
    x = x0
    for i in range(len(times) - 1):
        t, dt = times[i], times[i + 1] - times[i]
        dw = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        x = x + drift(t, x) * dt + diffusion(t, x, dw.mul_(math.sqrt(dt)))
        if project is not None:
            x = project(x)
        if i + 1 in wanted:
            saved[i + 1] = x
    return torch.stack([saved[i] for i in keep])


# ---------------------------------------------------------------------- constants
def effective_c2(s_plus: float, s_minus: float, n: float) -> float:
    """Finite-width drift constant :math:`C^2_{\\text{eff}} = n\\kappa =
    2n(s_+-s_-)^2/(s_+^2+s_-^2)`.

    It replaces :math:`(c_+-c_-)^2` (its :math:`n \\to \\infty` limit for
    :math:`s_\\pm = 1 + c_\\pm/\\sqrt n`) when finite networks are compared with the SDE/ODE;
    for rate-:math:`d` shaping pass ``n = d``.

    Raises:
        ValueError: ``n`` not > 0, non-finite slopes, or :math:`s_+ = s_- = 0`.
    """
    s_plus, s_minus = check_number("s_plus", s_plus), check_number("s_minus", s_minus)
    n = check_number("n", n, low=0.0, strict=True)
    if s_plus == 0 and s_minus == 0:
        raise ValueError("s_plus, s_minus: at least one slope must be non-zero")
    return 2 * n * (s_plus - s_minus) ** 2 / (s_plus**2 + s_minus**2)


def explosion_coefficient(sigma2: float, sigma3: float) -> float:
    """:math:`\\beta = \\sigma'''(0) + \\tfrac34\\sigma''(0)^2` of a shaped smooth activation.

    The diagonal of the covariance SDE has drift :math:`(\\beta/a^2)(V^{\\alpha\\alpha})^2`, so
    the norm explodes in finite time iff :math:`\\beta > 0` (tanh: :math:`\\beta = -2`).
    """
    return float(sigma3) + 0.75 * float(sigma2) ** 2


# ---------------------------------------------------------------------- drifts
def _diagonal_roots(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    diag = torch.diagonal(v, dim1=-2, dim2=-1)
    return diag[..., :, None], diag[..., None, :]


def shaped_relu_drift(v: torch.Tensor, c2: float) -> torch.Tensor:
    """Drift :math:`b(V)^{\\alpha\\beta} = \\nu(\\rho^{\\alpha\\beta})
    \\sqrt{V^{\\alpha\\alpha}V^{\\beta\\beta}}` of the shaped-ReLU covariance SDE.

    The diagonal is 0 (:math:`\\nu(1) = 0`) and only the upper triangle of ``v`` is read.
    Shapes: ``(..., k, k) -> (..., k, k)``.
    """
    v = torch.as_tensor(v, dtype=torch.float64)
    rows, cols = torch.triu_indices(v.shape[-1], v.shape[-1], 1, device=v.device)
    norm = torch.sqrt((v[..., rows, rows] * v[..., cols, cols]).clamp_min(0))
    safe = torch.where(norm > 0, norm, 1.0)
    rho = torch.where(norm > 0, v[..., rows, cols] / safe, 0.0)
    pair = shaped_correlation_drift(rho, c2) * norm
    out = torch.zeros_like(v)
    out[..., rows, cols] = pair
    out[..., cols, rows] = pair
    return out


def smooth_drift(v: torch.Tensor, a: float, sigma2: float, sigma3: float) -> torch.Tensor:
    """Drift of the covariance SDE for a shaped smooth activation :math:`s\\sigma(x/s)`,
    :math:`s = a\\sqrt n` (LNR22, re-derived by us by Taylor expansion).

    .. math::

        b(V)^{\\alpha\\beta} = \\frac{1}{a^2}\\Bigl[\\frac{\\sigma''(0)^2}{4}
        (V^{\\alpha\\alpha}V^{\\beta\\beta} + 2(V^{\\alpha\\beta})^2)
        + \\frac{\\sigma'''(0)}{2}V^{\\alpha\\beta}(V^{\\alpha\\alpha} + V^{\\beta\\beta})\\Bigr].

    Args:
        v: Covariances of shape ``(..., k, k)``.
        a: Shape constant :math:`a > 0`.
        sigma2, sigma3: :math:`\\sigma''(0)`, :math:`\\sigma'''(0)` (e.g. the attributes of
            `perceptrons.layers.ShapedActivation`).

    Returns:
        Float64 tensor of shape ``(..., k, k)``.
    """
    a = check_number("a", a, low=0.0, strict=True)
    v = torch.as_tensor(v, dtype=torch.float64)
    left, right = _diagonal_roots(v)
    quadratic = sigma2**2 / 4 * (left * right + 2 * v * v)
    cubic = sigma3 / 2 * v * (left + right)
    return (quadratic + cubic) / a**2


# ---------------------------------------------------------------------- ODE
def correlation_ode(rho0: float, c2: float, t: float) -> float:
    """:math:`\\rho(t)` for :math:`\\dot\\rho = \\frac{C^2}{2\\pi}(\\sqrt{1-\\rho^2} -
    \\rho\\arccos\\rho)`, :math:`\\rho(0) = \\rho_0`.

    The limit (t = ℓ/d) of the shaped MLP at rate :math:`d^{-1/2}` with :math:`d \\ll n`
    (:math:`C^2 = (c_+-c_-)^2`) and of the ReLU ResNet with branch :math:`\\sigma_r/\\sqrt d`
    (:math:`C^2 = \\sigma_r^2`). Solved with scipy's DOP853 at rtol 1e-12, atol 1e-14 (error
    well below 1e-8). Reference values: 0.14135 (:math:`C^2 = 1, \\rho_0 = 0, t = 1`),
    0.55028 (:math:`C^2 = 1, \\rho_0 = 0.5`), 0.25386 (:math:`C^2 = 2, \\rho_0 = 0`).

    Raises:
        ValueError: ``rho0`` outside [-1, 1], or negative or non-finite ``c2`` or ``t``.
    """
    rho0 = _correlation("rho0", rho0)
    c2 = check_number("c2", c2, low=0.0)
    t = check_number("t", t, low=0.0)
    if t == 0 or c2 == 0 or rho0 == 1.0:
        return rho0

    def rhs(_: float, y: np.ndarray) -> np.ndarray:
        return c2 / (2 * math.pi) * correlation_gap(torch.from_numpy(y)).numpy()

    sol = solve_ivp(rhs, (0.0, t), [rho0], method="DOP853", rtol=1e-12, atol=1e-14)
    if not sol.success:  # pragma: no cover - the right-hand side is smooth and bounded
        raise RuntimeError(f"correlation_ode: solver failed: {sol.message}")
    return float(min(max(sol.y[0, -1], -1.0), 1.0))


# ---------------------------------------------------------------------- SDEs
def simulate_correlation_sde(
    rho0: float,
    c2: float,
    t_end: float,
    num_paths: int,
    num_steps: int,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Final values of :math:`d\\rho = [\\nu(\\rho) - \\rho(1-\\rho^2)/2]dt + (1-\\rho^2)dB`.

    The correlation of two inputs through the shaped-ReLU MLP in the proportional limit
    (:math:`t = \\ell/n`, :math:`s_\\pm = 1 + c_\\pm/\\sqrt n`, :math:`C^2 = (c_+-c_-)^2` or
    `effective_c2`). Euler–Maruyama on a uniform grid, clipped to :math:`[-1, 1]` after each
    step.

    Args:
        rho0: Initial correlation in [-1, 1].
        c2: :math:`C^2 \\ge 0`.
        t_end: Final time :math:`T > 0`.
        num_paths: Number :math:`P` of independent paths.
        num_steps: Number of Euler steps of size ``t_end / num_steps``.
        generator: Generator of the Brownian increments.

    Returns:
        Float64 tensor of shape ``(P,)``: :math:`\\rho_T` of each path.

    Raises:
        ValueError: an argument out of range (the message names it).
    """
    rho0 = _correlation("rho0", rho0)
    c2 = check_number("c2", c2, low=0.0)
    t_end = check_number("t_end", t_end, low=0.0, strict=True)
    num_paths, num_steps = check_int("num_paths", num_paths), check_int("num_steps", num_steps)

    def drift(_: float, rho: torch.Tensor) -> torch.Tensor:
        return shaped_correlation_drift(rho, c2) - rho * (1 - rho * rho) / 2

    def diffusion(_: float, rho: torch.Tensor, dw: torch.Tensor) -> torch.Tensor:
        return (1 - rho * rho) * dw

    x0 = torch.full((num_paths,), rho0, dtype=torch.float64)
    grid = torch.linspace(0.0, t_end, num_steps + 1, dtype=torch.float64)
    path = euler_maruyama(
        drift,
        diffusion,
        x0,
        grid,
        generator,
        save_indices=[num_steps],
        project=lambda rho: rho.clamp_(-1.0, 1.0),
    )
    return path[0]


def _psd_cholesky(v: torch.Tensor, rel_tol: float = 1e-12) -> torch.Tensor:
    """Lower-triangular :math:`L` with :math:`LL^\\top = V` for PSD ``v`` ``(..., k, k)``.

    A vectorised Cholesky whose pivots are clamped at 0; where a pivot is below ``rel_tol``
    times the diagonal entry, its column is set to 0 (exact for a singular PSD matrix, and it
    keeps the noise defined when rounding leaves ``v`` slightly indefinite).
    """
    k = v.shape[-1]
    factor = torch.zeros_like(v)
    for j in range(k):
        row = factor[..., j, :j]
        pivot = v[..., j, j] - (row * row).sum(-1)
        ok = pivot > rel_tol * v[..., j, j].abs()
        root = torch.sqrt(pivot.clamp_min(0))
        factor[..., j, j] = root
        if j + 1 < k:
            below = v[..., j + 1 :, j] - (factor[..., j + 1 :, :j] @ row[..., :, None])[..., 0]
            safe = torch.where(ok, root, torch.ones_like(root))[..., None]
            factor[..., j + 1 :, j] = torch.where(ok[..., None], below / safe, 0.0)
    return factor


def _project_covariance(v: torch.Tensor) -> torch.Tensor:
    """Symmetrise ``v`` and clip each off-diagonal entry to the bound of its 2×2 minor."""
    rows, cols = torch.triu_indices(v.shape[-1], v.shape[-1], 1, device=v.device)
    bound = torch.sqrt((v[..., rows, rows] * v[..., cols, cols]).clamp_min(0))
    pair = (v[..., rows, cols] + v[..., cols, rows]) / 2
    pair = torch.minimum(torch.maximum(pair, -bound), bound)
    v[..., rows, cols] = pair
    v[..., cols, rows] = pair
    return v


def simulate_covariance_sde(
    v0: torch.Tensor,
    c2: float,
    t_end: float,
    num_paths: int,
    num_steps: int,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Final values of the k×k neural covariance SDE of the shaped-ReLU MLP (LNR22).

    .. math::

        dV = b(V)dt + L\\,dS\\,L^\\top, \\qquad LL^\\top = V, \\qquad
        b(V)^{\\alpha\\beta}
            = \\nu(\\rho^{\\alpha\\beta})\\sqrt{V^{\\alpha\\alpha}V^{\\beta\\beta}},

    with :math:`dS = (A + A^\\top)/\\sqrt 2`, :math:`A` i.i.d. :math:`N(0, dt)` (variance
    :math:`2dt` on the diagonal, :math:`dt` off it), so that
    :math:`d\\langle V^{\\alpha\\beta}, V^{\\gamma\\delta}\\rangle =
    (V^{\\alpha\\gamma}V^{\\beta\\delta} + V^{\\alpha\\delta}V^{\\beta\\gamma})dt`.
    Euler–Maruyama on a uniform grid; :math:`L` is a pivot-clamped Cholesky factor and after each
    step :math:`V` is symmetrised and its off-diagonal entries clipped to
    :math:`\\pm\\sqrt{V^{\\alpha\\alpha}V^{\\beta\\beta}}` (which keeps every 2×2 minor PSD).
    The diagonal is a martingale: :math:`E[V^{\\alpha\\alpha}_T] = V^{\\alpha\\alpha}_0`,
    :math:`\\operatorname{Var}\\log V^{\\alpha\\alpha}_T \\approx 2T`.

    Args:
        v0: Initial covariance, a symmetric PSD ``(k, k)`` matrix with positive diagonal.
        c2: :math:`C^2 \\ge 0` (:math:`(c_+-c_-)^2` or `effective_c2`).
        t_end: Final time :math:`T > 0` (:math:`= d/n`).
        num_paths: Number :math:`P` of independent paths.
        num_steps: Number of Euler steps.
        generator: Generator of the Brownian increments.

    Returns:
        Float64 tensor of shape ``(P, k, k)``: :math:`V_T` of each path.

    Raises:
        ValueError: ``v0`` not a symmetric PSD matrix with positive diagonal, or another argument
            out of range (the message names it).
    """
    v0 = torch.as_tensor(v0, dtype=torch.float64)
    if v0.dim() != 2 or v0.shape[0] != v0.shape[1]:
        raise ValueError(f"v0: expected a (k, k) matrix, got shape {tuple(v0.shape)}")
    if not torch.isfinite(v0).all() or not torch.allclose(v0, v0.T, rtol=1e-12, atol=1e-12):
        raise ValueError("v0: expected a finite symmetric matrix")
    scale = float(v0.diagonal().abs().max())
    if bool((v0.diagonal() <= 0).any()) or float(torch.linalg.eigvalsh(v0).min()) < -1e-10 * scale:
        raise ValueError("v0: expected a PSD matrix with positive diagonal")
    c2 = check_number("c2", c2, low=0.0)
    t_end = check_number("t_end", t_end, low=0.0, strict=True)
    num_paths, num_steps = check_int("num_paths", num_paths), check_int("num_steps", num_steps)

    def drift(_: float, v: torch.Tensor) -> torch.Tensor:
        return shaped_relu_drift(v, c2)

    def diffusion(_: float, v: torch.Tensor, dw: torch.Tensor) -> torch.Tensor:
        factor = _psd_cholesky(v)
        sym = (dw + dw.transpose(-1, -2)) / math.sqrt(2)
        return factor @ sym @ factor.transpose(-1, -2)

    x0 = v0.expand(num_paths, *v0.shape).clone()
    grid = torch.linspace(0.0, t_end, num_steps + 1, dtype=torch.float64)
    path = euler_maruyama(
        drift, diffusion, x0, grid, generator, save_indices=[num_steps], project=_project_covariance
    )
    return path[0]


def _q_time_grid(
    times: list[float], t0: float, max_step: float, rel_step: float
) -> tuple[list[float], list[int]]:
    """Geometric-then-uniform grid from ``t0`` through every requested time, and their indices."""
    grid, indices = [t0], []
    for target in times:
        t = grid[-1]
        while t < target:
            step = min(max_step, rel_step * t)
            t = target if t + step >= target * (1 - 1e-12) else t + step
            grid.append(t)
        indices.append(len(grid) - 1)
    return grid, indices


def simulate_q_sde(
    t_grid: Sequence[float] | torch.Tensor,
    num_paths: int,
    generator: torch.Generator | None,
    *,
    t0: float = 1e-4,
    max_step: float = 1e-3,
    rel_step: float = 0.01,
) -> torch.Tensor:
    """:math:`q_t = \\ell^2(1-\\rho_\\ell)`, :math:`t = \\ell/n`, of the unshaped ReLU MLP.

    Simulates the log form :math:`X = \\log q`,

    .. math::

        dX = \\Bigl[\\frac{2 - a e^{X/2}}{t} - 2\\Bigr]dt + 2\\sqrt 2\\, dB, \\qquad
        a = \\frac{2\\sqrt 2}{3\\pi}, \\qquad X(t_0) = \\log\\frac{9\\pi^2}{2},

    i.e. :math:`dq = [(2q - aq^{3/2})/t + 2q]dt + 2\\sqrt 2 q\\,dB` (constants of our own
    derivation, see the module docstring), by Euler–Maruyama with steps
    :math:`\\min(\\text{max\\_step}, \\text{rel\\_step}\\cdot t)` that land exactly on the
    requested times. The drift is singular at 0 and pins :math:`q` to :math:`q^*` there, so the
    start :math:`t_0 \\in [10^{-6}, 10^{-3}]` does not matter.

    Args:
        t_grid: Requested times, strictly increasing, all > ``t0``; ``T`` of them.
        num_paths: Number :math:`P` of independent paths.
        generator: Generator of the Brownian increments.
        t0: Start time :math:`t_0 > 0`.
        max_step: Largest Euler step (> 0).
        rel_step: Largest step relative to the current time (> 0).

    Returns:
        Float64 tensor of shape ``(T, P)``: :math:`q` at each requested time.

    Raises:
        ValueError: an empty, non-increasing or non-finite ``t_grid``, ``t0`` not below its
            first time, or another argument out of range (the message names it).
    """
    raw = t_grid.tolist() if torch.is_tensor(t_grid) else list(t_grid)
    times = [float(t) for t in raw]
    if not times or not all(math.isfinite(t) for t in times):
        raise ValueError(f"t_grid: expected a non-empty sequence of finite times, got {raw!r}")
    if any(b <= a for a, b in zip(times[:-1], times[1:], strict=True)):
        raise ValueError(f"t_grid: expected strictly increasing times, got {times}")
    t0 = check_number("t0", t0, low=0.0, strict=True)
    if t0 >= times[0]:
        raise ValueError(f"t0: expected t0 < t_grid[0] = {times[0]!r}, got {t0!r}")
    max_step = check_number("max_step", max_step, low=0.0, strict=True)
    rel_step = check_number("rel_step", rel_step, low=0.0, strict=True)
    num_paths = check_int("num_paths", num_paths)
    grid, indices = _q_time_grid(times, t0, max_step, rel_step)

    def drift(t: float, x: torch.Tensor) -> torch.Tensor:
        return (2 - _A * torch.exp(x / 2)) / t - 2

    def diffusion(_: float, x: torch.Tensor, dw: torch.Tensor) -> torch.Tensor:
        return (2 * math.sqrt(2)) * dw

    x0 = torch.full((num_paths,), math.log(Q_STAR), dtype=torch.float64)
    log_q = euler_maruyama(drift, diffusion, x0, grid, generator, save_indices=indices)
    return torch.exp(log_q)


# ---------------------------------------------------------------------- infinite width
def _one_minus_j_float(eps: float) -> float:
    """Scalar twin of `perceptrons.theory.dual.one_minus_j` (fast in a Python loop)."""
    eps = min(max(eps, 0.0), 2.0)
    theta = 2 * math.asin(math.sqrt(eps / 2))
    if theta < 0.5:
        t2, power, gap = theta * theta, theta**3, 0.0
        for k in range(1, 11):
            gap += (-1) ** (k + 1) * 2 * k / math.factorial(2 * k + 1) * power
            power *= t2
    else:
        gap = math.sin(theta) - theta * math.cos(theta)
    return eps - gap / math.pi


def q_infinite_width(num_layers: int, rho0: float = 0.0) -> torch.Tensor:
    """:math:`q_\\ell = \\ell^2(1 - \\rho_\\ell)` of the infinite-width He-initialised ReLU MLP.

    :math:`\\rho_0` is the input correlation and :math:`\\rho_{\\ell+1} = J(\\rho_\\ell)`, iterated
    on :math:`\\varepsilon_\\ell = 1 - \\rho_\\ell` with the cancellation-free
    :math:`1 - J(1-\\varepsilon)` (so :math:`\\ell` far beyond :math:`10^5` stays accurate).
    :math:`q_\\ell \\to 9\\pi^2/2` (`Q_STAR`) like :math:`O(\\log\\ell/\\ell)`; from
    :math:`\\rho_0 = 0`: 12.85 (:math:`\\ell = 10`), 35.77 (100), 43.13 (1000),
    44.25 (:math:`10^4`).

    Args:
        num_layers: Number :math:`L \\ge 1` of layers.
        rho0: Input correlation in [-1, 1].

    Returns:
        Float64 tensor of shape ``(L,)``: :math:`q_1, \\dots, q_L`.

    Raises:
        ValueError: ``num_layers`` < 1 or ``rho0`` outside [-1, 1].
    """
    num_layers = check_int("num_layers", num_layers)
    eps = 1.0 - _correlation("rho0", rho0)
    out = np.empty(num_layers)
    for layer in range(1, num_layers + 1):
        eps = _one_minus_j_float(eps)
        out[layer - 1] = layer * layer * eps
    return torch.from_numpy(out)
