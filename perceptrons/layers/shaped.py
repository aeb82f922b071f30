"""Shaped activations: nonlinearities that approach the identity as a rate ``N`` grows.

Paper: Li & Nica (2023), *Differential Equation Scaling Limits of Shaped and Unshaped Neural
Networks*, arXiv:2310.12079 (shaped ReLU of Li, Nica & Roy 2022, arXiv:2206.02768).

Implemented:

* `ShapedReLU`: :math:`\\phi_s(x) = s_+ \\max(x, 0) + s_- \\min(x, 0)` with
  :math:`s_\\pm = 1 + c_\\pm / \\sqrt{N}`, optionally multiplied by :math:`\\sqrt{c}`,
  :math:`c = 1/\\mathbb E[\\phi_s(g)^2] = 2/(s_+^2 + s_-^2)`, so that an `MLP` with
  ``weight_std=1`` (standard parameterisation, no bias) is exactly the paper's
  :math:`z_{\\ell+1} = \\sqrt{c/n}\\, W_\\ell \\phi_s(z_\\ell)` with :math:`W_{ij} \\sim N(0, 1)`.
* `ShapedActivation`: :math:`\\phi_s(x) = s\\,\\sigma(x/s)` with :math:`s = a\\sqrt{N}` for a smooth
  :math:`\\sigma` with :math:`\\sigma(0) = 0`, :math:`\\sigma'(0) = 1` (no normalising constant).

The rate :math:`N` is the width in the proportional regime of Li, Nica & Roy (2022) and the depth
in Li & Nica (2023); the layer takes it as a number and leaves the choice to the caller.

Deviations: none known; only the paper's abstract was available, so the definitions are our
re-derivation from Li, Nica & Roy (2022, arXiv:2206.02768). Activations are elementwise:
``(...) -> (...)``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Literal, TypeAlias

import torch
from torch import nn

from perceptrons.checks import check_number

__all__ = ["SMOOTH_ACTIVATIONS", "ShapedActivation", "ShapedReLU", "SmoothName"]

SmoothName: TypeAlias = Literal["tanh", "sin", "atan", "erf"]
"""Smooth activations accepted by `ShapedActivation` (all with sigma(0) = 0, sigma'(0) = 1)."""


def _scaled_erf(x: torch.Tensor) -> torch.Tensor:
    # erf'(0) = 2/sqrt(pi): rescale the argument so that sigma'(0) = 1.
    return torch.erf(x * (math.sqrt(math.pi) / 2))


# name -> (sigma, sigma''(0), sigma'''(0)); every sigma has sigma(0) = 0 and sigma'(0) = 1.
_SMOOTH: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], float, float]] = {
    "tanh": (torch.tanh, 0.0, -2.0),  # tanh x = x - x^3/3 + ...
    "sin": (torch.sin, 0.0, -1.0),  # sin x = x - x^3/6 + ...
    "atan": (torch.atan, 0.0, -2.0),  # atan x = x - x^3/3 + ...
    "erf": (_scaled_erf, 0.0, -math.pi / 2),  # erf(sqrt(pi) x / 2) = x - pi x^3/12 + ...
}

SMOOTH_ACTIVATIONS: tuple[str, ...] = tuple(_SMOOTH)
"""Names accepted by `ShapedActivation`, in the order of `SmoothName`."""

# Common activations that cannot be shaped this way, with the reason (for the error message).
_NOT_SHAPEABLE = {
    "relu": "it is not smooth at 0 (use ShapedReLU)",
    "gelu": "gelu'(0) = 1/2",
    "silu": "silu'(0) = 1/2",
    "sigmoid": "sigmoid(0) = 1/2",
    "softplus": "softplus(0) = log 2",
    "identity": "it is already linear",
    "leaky_relu": "it is not smooth at 0 (use ShapedReLU)",
}


class ShapedReLU(nn.Module):
    """Shaped ReLU, elementwise ``(...) -> (...)``.

    .. math::

        s_\\pm = 1 + \\frac{c_\\pm}{\\sqrt N}, \\qquad
        \\phi(x) = \\gamma\\,\\bigl(s_+ \\max(x, 0) + s_- \\min(x, 0)\\bigr), \\qquad
        \\gamma = \\sqrt{c} = \\sqrt{\\frac{2}{s_+^2 + s_-^2}} \\text{ (or 1)}.

    With ``normalize=True``, :math:`\\mathbb E[\\phi(g)^2] = 1` for :math:`g \\sim N(0, 1)`.
    The defaults (``c_plus=0``, ``c_minus=-1``, ``rate=1``) give :math:`s_- = 0`, i.e. the
    He-scaled ReLU :math:`\\sqrt 2 \\max(x, 0)`.

    Args:
        c_plus: :math:`c_+`, shaping of the positive slope.
        c_minus: :math:`c_-`, shaping of the negative slope.
        rate: :math:`N > 0`, the width or the depth (the caller's choice).
        normalize: Multiply by :math:`\\sqrt c` (``False``: the bare :math:`\\phi_s`).

    Attributes:
        c_plus, c_minus, rate, normalize: The arguments.
        s_plus, s_minus: The slopes :math:`s_\\pm`.
        scale: :math:`\\sqrt c` with ``normalize=True``, else 1.

    Raises:
        ValueError: a non-finite ``c_plus``/``c_minus``, a ``rate`` that is not > 0, or
            ``normalize=True`` with :math:`s_+ = s_- = 0`.
    """

    def __init__(
        self,
        c_plus: float = 0.0,
        c_minus: float = -1.0,
        rate: float = 1.0,
        *,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        self.s_plus, self.s_minus = self.slopes(c_plus, c_minus, rate)
        self.c_plus, self.c_minus, self.rate = float(c_plus), float(c_minus), float(rate)
        self.normalize = bool(normalize)
        second_moment = (self.s_plus**2 + self.s_minus**2) / 2
        if normalize and second_moment == 0:
            raise ValueError(
                f"c_plus, c_minus: s_plus = s_minus = 0 cannot be normalised, "
                f"got c_plus={c_plus!r}, c_minus={c_minus!r}, rate={rate!r}"
            )
        self.scale = 1.0 / math.sqrt(second_moment) if normalize else 1.0
        # phi(x) = scale * (s_minus * x + (s_plus - s_minus) * relu(x)): two fused ops.
        self._linear = self.scale * self.s_minus
        self._kink = self.scale * (self.s_plus - self.s_minus)

    @staticmethod
    def slopes(c_plus: float, c_minus: float, rate: float) -> tuple[float, float]:
        """:math:`(s_+, s_-) = (1 + c_+/\\sqrt N, 1 + c_-/\\sqrt N)`.

        Raises:
            ValueError: non-finite ``c_plus``/``c_minus`` or a ``rate`` that is not > 0.
        """
        c_plus = check_number("c_plus", c_plus)
        c_minus = check_number("c_minus", c_minus)
        root = math.sqrt(check_number("rate", rate, low=0.0, strict=True))
        return 1.0 + c_plus / root, 1.0 + c_minus / root

    @classmethod
    def factory(
        cls,
        c_plus: float = 0.0,
        c_minus: float = -1.0,
        rate: float = 1.0,
        *,
        normalize: bool = True,
    ) -> Callable[[], ShapedReLU]:
        """A zero-argument factory for ``act_layer`` of `MLP`/`ResidualMLP`.

        The arguments are checked now, so a bad value fails before any layer is built.
        """
        cls(c_plus, c_minus, rate, normalize=normalize)
        return functools.partial(cls, c_plus, c_minus, rate, normalize=normalize)

    @property
    def kappa(self) -> float:
        """:math:`\\kappa = 2(s_+ - s_-)^2/(s_+^2 + s_-^2)`.

        It is the coefficient of the one-layer infinite-width correlation map
        :math:`\\rho \\mapsto \\rho + \\kappa\\, g(\\rho)/(2\\pi)`
        (see `perceptrons.theory.dual.correlation_gap`).
        """
        s_plus, s_minus = self.s_plus, self.s_minus
        return 2 * (s_plus - s_minus) ** 2 / (s_plus**2 + s_minus**2)

    def effective_c2(self, n: float) -> float:
        """Finite-``n`` correlation drift constant :math:`n\\kappa` (tends to :math:`(c_+-c_-)^2`
        as ``rate = n`` grows; see `perceptrons.theory.limits.effective_c2`)."""
        return n * self.kappa

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(...) -> (...)``, same dtype and device."""
        return torch.add(x * self._linear, torch.relu(x), alpha=self._kink)

    def extra_repr(self) -> str:
        return (
            f"c_plus={self.c_plus}, c_minus={self.c_minus}, rate={self.rate}, "
            f"s_plus={self.s_plus:.6g}, s_minus={self.s_minus:.6g}, scale={self.scale:.6g}"
        )


class ShapedActivation(nn.Module):
    """Shaped smooth activation :math:`\\phi_s(x) = s\\,\\sigma(x/s)`, elementwise.

    With :math:`s = a\\sqrt N`, :math:`\\phi_s(x) = x + \\sigma''(0) x^2/(2s) + \\dots \\to x` as
    :math:`N \\to \\infty`. There is no normalising constant (as in LNR22). Shapes:
    ``(...) -> (...)``.

    Accepted ``fn`` names (`SMOOTH_ACTIVATIONS`), each with :math:`\\sigma(0) = 0` and
    :math:`\\sigma'(0) = 1`:

    * ``"tanh"``: :math:`\\tanh x` (:math:`\\sigma'''(0) = -2`);
    * ``"sin"``: :math:`\\sin x` (:math:`\\sigma'''(0) = -1`);
    * ``"atan"``: :math:`\\arctan x` (:math:`\\sigma'''(0) = -2`);
    * ``"erf"``: :math:`\\operatorname{erf}(\\sqrt\\pi x/2)`, the error function rescaled so
      that :math:`\\sigma'(0) = 1` (:math:`\\sigma'''(0) = -\\pi/2`).

    Args:
        fn: Name of :math:`\\sigma`.
        a: Shape constant :math:`a > 0`.
        rate: :math:`N > 0`, the width or the depth (the caller's choice).

    Attributes:
        fn, a, rate: The arguments.
        s: The scale :math:`a\\sqrt N`.
        sigma2, sigma3: :math:`\\sigma''(0)` and :math:`\\sigma'''(0)` (inputs of
            `perceptrons.theory.limits.smooth_drift`).

    Raises:
        ValueError: an unknown ``fn`` (or one with :math:`\\sigma(0) \\ne 0` or
            :math:`\\sigma'(0) \\ne 1`, such as ``"gelu"`` or ``"sigmoid"``), or ``a``/``rate``
            not > 0.
    """

    def __init__(self, fn: SmoothName = "tanh", a: float = 1.0, rate: float = 1.0) -> None:
        super().__init__()
        if fn not in _SMOOTH:
            reason = _NOT_SHAPEABLE.get(fn) if isinstance(fn, str) else None
            why = f" ({reason})" if reason else ""
            raise ValueError(
                f"fn: shaping needs a smooth sigma with sigma(0) = 0 and sigma'(0) = 1; "
                f"valid names: {', '.join(_SMOOTH)}; got {fn!r}{why}"
            )
        self.fn = fn
        self.a = check_number("a", a, low=0.0, strict=True)
        self.rate = check_number("rate", rate, low=0.0, strict=True)
        self.s = self.a * math.sqrt(self.rate)
        self._sigma, self.sigma2, self.sigma3 = _SMOOTH[fn]

    @classmethod
    def factory(
        cls, fn: SmoothName = "tanh", a: float = 1.0, rate: float = 1.0
    ) -> Callable[[], ShapedActivation]:
        """A zero-argument factory for ``act_layer``; the arguments are checked now."""
        cls(fn, a, rate)
        return functools.partial(cls, fn, a, rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(...) -> (...)``, same dtype and device."""
        return self._sigma(x / self.s) * self.s

    def extra_repr(self) -> str:
        return f"fn={self.fn!r}, a={self.a}, rate={self.rate}, s={self.s:.6g}"
