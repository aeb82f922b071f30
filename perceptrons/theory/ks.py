"""Kolmogorov–Smirnov tests used to compare distributions of networks and their limits.

* `ks_statistic`: two-sample distance :math:`\\sup_x |F_a(x) - F_b(x)|` (scipy's ``ks_2samp``
  statistic);
* `ks_normal_statistic`: one-sample distance to a centred Gaussian of a given variance;
* `ks_critical_value`: the asymptotic critical value at level ``alpha``, two-sample or
  (``n2=None``) one-sample.
"""

from __future__ import annotations

import math

import torch

from perceptrons.checks import check_int, check_number

__all__ = ["ks_critical_value", "ks_normal_statistic", "ks_statistic"]


def _sample(name: str, value: object) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        value = torch.as_tensor(value)
    value = value.detach().reshape(-1).to(torch.float64)
    if value.numel() == 0 or not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name}: expected a non-empty sample of finite numbers")
    return value


def ks_statistic(a: torch.Tensor, b: torch.Tensor) -> float:
    """Two-sample Kolmogorov–Smirnov distance :math:`\\sup_x |F_a(x) - F_b(x)|`.

    Args:
        a: First sample, any shape (flattened), ``n1`` values.
        b: Second sample, any shape (flattened), ``n2`` values.

    Returns:
        The distance in ``[0, 1]`` (equal to ``scipy.stats.ks_2samp(a, b).statistic``).

    Raises:
        ValueError: an empty sample or a non-finite value.
    """
    a, b = _sample("a", a), _sample("b", b).to(a.device)
    a, b = torch.sort(a).values, torch.sort(b).values
    points = torch.cat([a, b])
    cdf_a = torch.searchsorted(a, points, right=True).to(torch.float64) / a.numel()
    cdf_b = torch.searchsorted(b, points, right=True).to(torch.float64) / b.numel()
    return float((cdf_a - cdf_b).abs().max())


def ks_normal_statistic(sample: torch.Tensor, variance: float = 1.0) -> float:
    """One-sample Kolmogorov–Smirnov distance to :math:`N(0, \\sigma^2)`.

    .. math::

        D = \\sup_x |F_m(x) - \\Phi(x/\\sigma)| = \\max_i \\max\\Bigl(\\frac im - \\Phi_i,
            \\ \\Phi_i - \\frac{i-1}m\\Bigr), \\qquad \\Phi_i = \\Phi(s_{(i)}/\\sigma),

    over the sorted sample :math:`s_{(1)} \\le \\dots \\le s_{(m)}`. The variance is given, not
    fitted (fitting it makes the test less strict).

    Args:
        sample: The sample, any shape (flattened), ``m`` values.
        variance: :math:`\\sigma^2 > 0`.

    Returns:
        The distance in ``[0, 1]`` (equal to ``scipy.stats.kstest(sample, "norm", (0,
        sigma)).statistic``); compare it with ``ks_critical_value(m)``.

    Raises:
        ValueError: an empty sample, a non-finite value or a non-positive ``variance``.
    """
    s = torch.sort(_sample("sample", sample)).values
    variance = check_number("variance", variance, low=0.0, strict=True)
    cdf = torch.special.ndtr(s / math.sqrt(variance))
    m = s.numel()
    upper = torch.arange(1, m + 1, dtype=torch.float64, device=s.device) / m - cdf
    lower = cdf - torch.arange(0, m, dtype=torch.float64, device=s.device) / m
    return float(torch.maximum(upper, lower).max())


def ks_critical_value(n1: int, n2: int | None = None, alpha: float = 0.05) -> float:
    """Asymptotic critical value of the Kolmogorov–Smirnov distance at level ``alpha``.

    .. math::

        D_\\alpha = c(\\alpha)\\sqrt{\\frac{n_1 + n_2}{n_1 n_2}} \\ \\text{(two samples)}, \\qquad
        D_\\alpha = \\frac{c(\\alpha)}{\\sqrt{n_1}} \\ \\text{(one sample, } n_2 = \\infty),
        \\qquad c(\\alpha) = \\sqrt{-\\tfrac12 \\ln(\\alpha/2)} \\quad (c(0.05) \\approx 1.358).

    Args:
        n1: Size of the (first) sample.
        n2: Size of the second sample; ``None`` for the one-sample test against a given
            distribution (`ks_normal_statistic`).
        alpha: Level in ``(0, 1)``.

    Returns:
        :math:`D_\\alpha`: samples of the same law exceed it with probability about ``alpha``.

    Raises:
        ValueError: a size below 1 or ``alpha`` outside ``(0, 1)``.
    """
    n1 = check_int("n1", n1)
    n2 = None if n2 is None else check_int("n2", n2)
    if not isinstance(alpha, int | float) or isinstance(alpha, bool) or not 0 < alpha < 1:
        raise ValueError(f"alpha: expected a number in (0, 1), got {alpha!r}")
    c = math.sqrt(-math.log(alpha / 2) / 2)
    if n2 is None:
        return c / math.sqrt(n1)
    return c * math.sqrt((n1 + n2) / (n1 * n2))
