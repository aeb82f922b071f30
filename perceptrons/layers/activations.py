"""Activation functions by name: a read-only name -> factory table and a resolver.

Layers take an ``act_layer`` that is either a registered name (``"relu"``) or a factory (any
zero-argument callable returning an ``nn.Module``, e.g. ``nn.GELU`` or
``functools.partial(nn.LeakyReLU, 0.2)``); `get_activation` turns either into a factory.
Activations are elementwise: input and output have the same shape ``(...)``.

New activations (e.g. shaped activations such as ``ShapedReLU``) are added by listing their
factory in ``_FACTORIES`` and their name in `ActivationName`; a test keeps the two in sync.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Literal, TypeAlias

import torch
from torch import nn

__all__ = [
    "ACTIVATIONS",
    "ActivationLike",
    "ActivationName",
    "Erf",
    "get_activation",
]

ActivationName: TypeAlias = Literal[
    "relu", "gelu", "tanh", "silu", "sigmoid", "identity", "leaky_relu", "erf", "softplus"
]
"""The registered activation names (the type of ``activation`` fields in model configs)."""

ActivationFactory: TypeAlias = Callable[[], nn.Module]
ActivationLike: TypeAlias = str | Callable[[], nn.Module]
"""A registered activation name or a zero-argument factory returning an ``nn.Module``."""


class Erf(nn.Module):
    """The error function :math:`\\operatorname{erf}(x)`, elementwise: ``(...) -> (...)``.

    Its infinite-width kernels have closed forms (Williams 1997), which makes it a common
    choice in kernel-limit experiments.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.erf(x)


_FACTORIES: dict[str, ActivationFactory] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
    "leaky_relu": nn.LeakyReLU,  # negative slope 0.01 (PyTorch's default)
    "erf": Erf,
    "softplus": nn.Softplus,
}

ACTIVATIONS: Mapping[str, ActivationFactory] = MappingProxyType(_FACTORIES)
"""Read-only mapping of activation name -> factory (``ACTIVATIONS["relu"]() -> nn.ReLU()``)."""


def get_activation(activation: ActivationLike) -> ActivationFactory:
    """Resolve an activation name or factory to a factory.

    Args:
        activation: A name in `ACTIVATIONS` or a callable returning an ``nn.Module``
            (returned unchanged).

    Returns:
        A zero-argument callable that builds a fresh activation module.

    Raises:
        ValueError: unknown name; the message lists the valid names.
        TypeError: neither a string nor a callable.
    """
    if isinstance(activation, str):
        try:
            return ACTIVATIONS[activation]
        except KeyError:
            raise ValueError(
                f"unknown activation {activation!r}; valid names: {', '.join(ACTIVATIONS)}"
            ) from None
    if isinstance(activation, nn.Module):
        raise TypeError(
            f"expected an activation name or factory, got the module instance {activation!r}; "
            f"pass its class (e.g. {type(activation).__name__}) instead"
        )
    if callable(activation):
        return activation
    raise TypeError(f"expected an activation name or factory, got {activation!r}")
