"""Activation descriptions: closed-form duals, and Gauss–Hermite quadrature for any other.

Each `Activation` gives :math:`V_\\phi` (`Activation.dual`), :math:`\\dot V_\\phi = V_{\\phi'}`
(`Activation.derivative_dual`, for the NTK) and its finite-width module. Arguments
``k11, k22, k12`` are tensors broadcast against each other; results have the broadcast shape.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch
from torch import nn

from perceptrons.layers import Erf as ErfModule
from perceptrons.theory.dual import (
    ab_relu_dual,
    erf_dual,
    erf_prime_dual,
    gauss_hermite_dual,
    relu_dual,
    step_dual,
)
from perceptrons.theory.kernels.core import KernelState, LambdaLayer, Layer, check_finite

__all__ = [
    "GELU",
    "ABReLU",
    "Activation",
    "Elementwise",
    "Erf",
    "Identity",
    "LeakyReLU",
    "ReLU",
    "Sin",
    "Tanh",
]

_GH_VALUES = 2**22  # Gauss–Hermite evaluations per chunk (32 MiB in float64)


def _gauss_hermite(
    fn: Callable[[torch.Tensor], torch.Tensor],
    k11: torch.Tensor,
    k22: torch.Tensor,
    k12: torch.Tensor,
    num_nodes: int,
) -> torch.Tensor:
    """`gauss_hermite_dual` in chunks (bounded memory), symmetrised in ``(k11, k22)``.

    The quadrature is not exactly symmetric in its two variances; averaging both orders makes
    ``V(K)`` exactly symmetric, so a cross kernel equals the block of the joint kernel.
    """
    k11, k22, k12 = torch.broadcast_tensors(k11, k22, k12)
    shape, (a, b, c) = k12.shape, [t.reshape(-1) for t in (k11, k22, k12)]
    total, chunk = c.numel(), max(1, _GH_VALUES // num_nodes**2)
    parts = []
    for i in range(0, total, chunk):
        span = slice(i, i + chunk)
        forward = gauss_hermite_dual(fn, a[span], b[span], c[span], num_nodes=num_nodes)
        backward = gauss_hermite_dual(fn, b[span], a[span], c[span], num_nodes=num_nodes)
        parts.append((forward + backward) / 2)
    out = torch.cat(parts) if parts else torch.zeros_like(c)
    return out.reshape(shape).to(k12.dtype)


def _autograd_derivative(
    fn: Callable[[torch.Tensor], torch.Tensor],
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The elementwise derivative of ``fn`` by autograd: ``(...) -> (...)``."""

    def derivative(x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(fn(x).sum(), x)
        return grad.detach()

    return derivative


class Activation(Layer):
    """An elementwise activation :math:`\\phi` with its dual :math:`V_\\phi` and
    :math:`\\dot V_\\phi = V_{\\phi'}` (subclasses define `dual`, `derivative_dual`, `module`).
    """

    homogeneous_gain: float | None = None
    """:math:`V_\\phi(q) / q` on the diagonal for positively homogeneous :math:`\\phi`."""

    def dual(self, k11: torch.Tensor, k22: torch.Tensor, k12: torch.Tensor) -> torch.Tensor:
        """:math:`\\mathbb E[\\phi(u_1)\\phi(u_2)]`, :math:`u \\sim N(0, K)`; broadcast shape."""
        raise NotImplementedError

    def derivative_dual(
        self, k11: torch.Tensor, k22: torch.Tensor, k12: torch.Tensor
    ) -> torch.Tensor:
        """:math:`\\mathbb E[\\phi'(u_1)\\phi'(u_2)]`, :math:`u \\sim N(0, K)`; broadcast shape."""
        raise NotImplementedError

    def module(self) -> nn.Module:
        """The finite-width activation module: ``(...) -> (...)``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def _apply(self, state: KernelState) -> KernelState:
        v1, v2 = state.var1[:, None], state.var2[None, :]
        ntk = None if state.ntk is None else self.derivative_dual(v1, v2, state.nngp) * state.ntk
        out = dataclasses.replace(
            state,
            nngp=self.dual(v1, v2, state.nngp),
            var1=self.dual(state.var1, state.var1, state.var1),
            var2=self.dual(state.var2, state.var2, state.var2),
            ntk=ntk,
        )
        state.release(state.nngp, state.ntk)  # consumed; the results are new tensors
        return out

    def _build(
        self, in_features: int, width: int, out_features: int | None, factory: dict
    ) -> tuple[nn.Module, int]:
        return self.module(), in_features


class ABReLU(Activation):
    """neural-tangents' ``ABRelu(a, b)``: :math:`\\phi(x) = a\\min(x, 0) + b\\max(x, 0)`.

    Args:
        a: Slope for negative inputs.
        b: Slope for positive inputs.
    """

    def __init__(self, a: float, b: float) -> None:
        self.a, self.b = check_finite("a", a), check_finite("b", b)
        self.homogeneous_gain = (self.a**2 + self.b**2) / 2

    def __repr__(self) -> str:
        return f"ABReLU({self.a}, {self.b})"

    def dual(self, k11, k22, k12):
        return ab_relu_dual(k11, k22, k12, a=self.a, b=self.b).to(k12.dtype)

    def derivative_dual(self, k11, k22, k12):
        # phi' = b on x > 0, a on x < 0; P(both > 0) = P(both < 0) = (pi - theta)/(2 pi).
        same = step_dual(k11, k22, k12)
        return ((self.a**2 + self.b**2) * same + 2 * self.a * self.b * (0.5 - same)).to(k12.dtype)

    def module(self) -> nn.Module:
        a, b = self.a, self.b
        return LambdaLayer(lambda x: torch.where(x > 0, b * x, a * x), f"a={a}, b={b}")

    def _apply(self, state: KernelState) -> KernelState:
        """`dual` and `derivative_dual` fused, in place, from two workspace matrices.

        With :math:`k_{12} = \\sqrt{k_{11}k_{22}}\\cos\\theta`, the angle is
        :math:`\\theta = \\operatorname{atan2}(\\sqrt{k_{11}k_{22} - k_{12}^2}, k_{12})`, which
        is exactly 0 where :math:`k_{12} = k_{11} = k_{22}` (the diagonal; arccos of a rounded
        correlation would give 1e-8 there). Then, as in `ab_relu_dual` and `step_dual`,

        .. math::

            V = \\tfrac{a^2+b^2}{2} k_{12} + \\tfrac{(b-a)^2}{2\\pi}
                \\bigl(\\sqrt{k_{11}k_{22} - k_{12}^2} - \\theta k_{12}\\bigr), \\qquad
            \\dot V = ab + \\tfrac{(b-a)^2}{2\\pi}(\\pi - \\theta).

        An input of zero variance has :math:`\\theta = \\pi/2` (correlation 0).
        """
        a, b = self.a, self.b
        c_linear, c_gap = (a * a + b * b) / 2, (b - a) ** 2 / (2 * math.pi)
        k12, v1, v2 = state.nngp, state.var1.clamp_min(0), state.var2.clamp_min(0)
        # sqrt(k11 k22 - k12^2) from two rounded products (no fused multiply-add), so it is
        # exactly 0 where k12 = k11 = k22
        root = torch.outer(v1, v2, out=state.scratch())
        theta = torch.mul(k12, k12, out=state.scratch())
        root.sub_(theta).clamp_min_(0.0).sqrt_()
        theta = torch.atan2(root, k12, out=theta)
        zero1, zero2 = v1 == 0, v2 == 0
        if bool(zero1.any()) or bool(zero2.any()):
            theta[zero1] = math.pi / 2
            theta[:, zero2] = math.pi / 2
        nngp = root.addcmul_(theta, k12, value=-1.0).mul_(c_gap).add_(k12, alpha=c_linear)
        ntk = None
        if state.ntk is not None:
            ntk = state.ntk.mul_(theta.neg_().add_(math.pi).mul_(c_gap).add_(a * b))
        state.release(k12, theta)
        gain = self.homogeneous_gain
        return dataclasses.replace(
            state, nngp=nngp, var1=gain * state.var1, var2=gain * state.var2, ntk=ntk
        )


class ReLU(ABReLU):
    """:math:`\\max(x, 0)` (arc-cosine kernel of degree 1)."""

    def __init__(self) -> None:
        super().__init__(0.0, 1.0)

    def __repr__(self) -> str:
        return "ReLU()"

    def dual(self, k11, k22, k12):
        return relu_dual(k11, k22, k12).to(k12.dtype)

    def derivative_dual(self, k11, k22, k12):
        return step_dual(k11, k22, k12).to(k12.dtype)

    def module(self) -> nn.Module:
        return nn.ReLU()


class LeakyReLU(ABReLU):
    """``torch.nn.LeakyReLU(negative_slope)`` = ``ABReLU(negative_slope, 1)``."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__(negative_slope, 1.0)

    def __repr__(self) -> str:
        return f"LeakyReLU({self.a})"

    def module(self) -> nn.Module:
        return nn.LeakyReLU(self.a)


class Identity(Activation):
    """:math:`\\phi(x) = x`: :math:`V_\\phi(K) = K`, :math:`\\dot V_\\phi = 1`."""

    homogeneous_gain = 1.0

    def dual(self, k11, k22, k12):
        return torch.broadcast_tensors(k11, k22, k12)[2].clone()

    def derivative_dual(self, k11, k22, k12):
        return torch.ones_like(torch.broadcast_tensors(k11, k22, k12)[2])

    def module(self) -> nn.Module:
        return nn.Identity()


class Erf(Activation):
    """:math:`\\operatorname{erf}(x)` (Williams 1997 closed forms)."""

    def dual(self, k11, k22, k12):
        return erf_dual(k11, k22, k12).to(k12.dtype)

    def derivative_dual(self, k11, k22, k12):
        return erf_prime_dual(k11, k22, k12).to(k12.dtype)

    def module(self) -> nn.Module:
        return ErfModule()


class Sin(Activation):
    """:math:`\\sin(x)`: :math:`V = e^{-(k_{11}+k_{22})/2}\\sinh k_{12}`,
    :math:`\\dot V = e^{-(k_{11}+k_{22})/2}\\cosh k_{12}`.
    """

    def dual(self, k11, k22, k12):
        return torch.exp(-(k11 + k22) / 2) * torch.sinh(k12)

    def derivative_dual(self, k11, k22, k12):
        return torch.exp(-(k11 + k22) / 2) * torch.cosh(k12)

    def module(self) -> nn.Module:
        return LambdaLayer(torch.sin, "sin")


class Elementwise(Activation):
    """Any elementwise :math:`\\phi` by 2-D Gauss–Hermite quadrature (`gauss_hermite_dual`).

    Accurate to float64 precision for smooth :math:`\\phi` at 40–80 nodes; slow (about 1e-3)
    for kinks, which have closed forms here (`ReLU`, `ABReLU`).

    Args:
        fn: Elementwise torch function, float64 in and out (e.g. ``torch.tanh``).
        derivative: :math:`\\phi'` for the NTK; ``None`` uses autograd on ``fn``.
        num_nodes: Quadrature nodes per axis.
        name: Name shown in ``repr``.
    """

    def __init__(
        self,
        fn: Callable[[torch.Tensor], torch.Tensor],
        derivative: Callable[[torch.Tensor], torch.Tensor] | None = None,
        *,
        num_nodes: int = 80,
        name: str | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"fn: expected a callable, got {fn!r}")
        if derivative is not None and not callable(derivative):
            raise TypeError(f"derivative: expected a callable or None, got {derivative!r}")
        if not isinstance(num_nodes, int) or isinstance(num_nodes, bool) or num_nodes < 1:
            raise ValueError(f"num_nodes: expected an int >= 1, got {num_nodes!r}")
        self.fn = fn
        self.derivative = _autograd_derivative(fn) if derivative is None else derivative
        self.num_nodes = num_nodes
        self.name = name or getattr(fn, "__name__", "fn")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}, num_nodes={self.num_nodes})"

    def dual(self, k11, k22, k12):
        return _gauss_hermite(self.fn, k11, k22, k12, self.num_nodes)

    def derivative_dual(self, k11, k22, k12):
        return _gauss_hermite(self.derivative, k11, k22, k12, self.num_nodes)

    def module(self) -> nn.Module:
        return LambdaLayer(self.fn, self.name)


class Tanh(Elementwise):
    """:math:`\\tanh(x)` by Gauss–Hermite quadrature (no closed form)."""

    def __init__(self, *, num_nodes: int = 80) -> None:
        super().__init__(
            torch.tanh, lambda x: 1 - torch.tanh(x) ** 2, num_nodes=num_nodes, name="tanh"
        )

    def module(self) -> nn.Module:
        return nn.Tanh()


class GELU(Elementwise):
    """Exact (erf) GELU :math:`x\\Phi(x)` by Gauss–Hermite quadrature."""

    def __init__(self, *, num_nodes: int = 80) -> None:
        def derivative(x: torch.Tensor) -> torch.Tensor:
            cdf = 0.5 * (1 + torch.erf(x / math.sqrt(2)))
            return cdf + x * torch.exp(-x * x / 2) / math.sqrt(2 * math.pi)

        super().__init__(torch.nn.functional.gelu, derivative, num_nodes=num_nodes, name="gelu")

    def module(self) -> nn.Module:
        return nn.GELU()
