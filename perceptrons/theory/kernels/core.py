"""Kernel-library core: the `Kernel` result, the `Layer` protocol, `Dense`, `Serial`, `Residual`.

Dimension legend: ``n1``, ``n2`` numbers of inputs in ``x1`` and ``x2``; ``b`` rows in a block;
``d`` input features. See `perceptrons.theory.kernels` for the conventions.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import nn

from perceptrons.layers import DenseLinear

__all__ = ["Dense", "Kernel", "Layer", "Residual", "Serial", "serial"]


@dataclasses.dataclass(frozen=True)
class Kernel:
    """Infinite-width kernels between two sets of inputs.

    Attributes:
        nngp: NNGP kernel, shape ``(n1, n2)``.
        ntk: Neural tangent kernel, shape ``(n1, n2)``, or ``None`` when not requested.
    """

    nngp: torch.Tensor
    ntk: torch.Tensor | None = None


@dataclasses.dataclass
class _State:
    """Kernel state flowing through the layers: cross kernels and the two variance vectors."""

    nngp: torch.Tensor  # (b, n2)
    var1: torch.Tensor  # (b,)
    var2: torch.Tensor  # (n2,)
    ntk: torch.Tensor | None  # (b, n2)


# ---------------------------------------------------------------------------- checks
def _check_positive(name: str, value: object) -> float:
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")
    return float(value)


def _check_nonnegative(name: str, value: object) -> float:
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    return float(value)


def _check_finite(name: str, value: object) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return float(value)


def _check_inputs(
    x1: torch.Tensor, x2: torch.Tensor | None, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate ``x1`` (n1, d) and ``x2`` (n2, d); return both in ``dtype`` on x1's device."""
    if not isinstance(x1, torch.Tensor):
        raise TypeError(f"x1: expected a tensor of shape (n1, d), got {type(x1).__name__}")
    if x1.dim() != 2 or x1.shape[1] < 1:
        raise ValueError(f"x1: expected shape (n1, d) with d >= 1, got {tuple(x1.shape)}")
    if x2 is not None:
        if not isinstance(x2, torch.Tensor):
            raise TypeError(f"x2: expected a tensor of shape (n2, d), got {type(x2).__name__}")
        if x2.dim() != 2 or x2.shape[1] != x1.shape[1]:
            raise ValueError(
                f"x2: expected shape (n2, {x1.shape[1]}) to match x1's feature dimension d = "
                f"{x1.shape[1]}, got {tuple(x2.shape)}"
            )
    x1 = x1.to(dtype)
    x2 = x1 if x2 is None else x2.to(device=x1.device, dtype=dtype)
    for name, x in (("x1", x1), ("x2", x2)):
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"{name}: expected finite values, got NaN or inf")
    return x1, x2


def _symmetrize_(a: torch.Tensor, block_size: int) -> None:
    """Replace the square matrix ``a`` by ``(a + a^T) / 2`` in place, one block pair at a time."""
    n = a.shape[0]
    for i in range(0, n, block_size):
        for j in range(i, n, block_size):
            upper = a[i : i + block_size, j : j + block_size]
            mean = (upper + a[j : j + block_size, i : i + block_size].T) / 2
            upper.copy_(mean)
            a[j : j + block_size, i : i + block_size].copy_(mean.T)


def _check_block_size(block_size: int) -> int:
    if not isinstance(block_size, int) or isinstance(block_size, bool) or block_size < 1:
        raise ValueError(f"block_size: expected an int >= 1, got {block_size!r}")
    return block_size


def _input_state(x1: torch.Tensor, x2: torch.Tensor, ntk: bool) -> _State:
    """The input kernel :math:`x\\cdot x'/d` (neural-tangents' convention), zero NTK."""
    d = x1.shape[1]
    nngp = x1 @ x2.T / d
    zeros = torch.zeros_like(nngp) if ntk else None
    return _State(nngp, (x1 * x1).sum(1) / d, (x2 * x2).sum(1) / d, zeros)


class _Lambda(nn.Module):
    """An elementwise function as a module: ``(...) -> (...)``."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], name: str) -> None:
        super().__init__()
        self.fn, self.name = fn, name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return self.name


class _ResidualModule(nn.Module):
    """``x + scale * block(x)``: ``(..., f) -> (..., f)``."""

    def __init__(self, block: nn.Module, scale: float) -> None:
        super().__init__()
        self.block, self.scale = block, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.scale * self.block(x)


# ---------------------------------------------------------------------------- layers
class Layer:
    """A layer description: its infinite-width kernel map and its finite-width module."""

    def _apply(self, state: _State) -> _State:
        raise NotImplementedError

    def _build(
        self, in_features: int, width: int, out_features: int | None, factory: dict
    ) -> tuple[nn.Module, int]:
        raise NotImplementedError

    def _check_ntk(self) -> None:
        """Raise ``NotImplementedError`` if the NTK of this description is not available."""

    def kernel(
        self,
        x1: torch.Tensor,
        x2: torch.Tensor | None = None,
        *,
        ntk: bool = True,
        block_size: int = 1024,
        dtype: torch.dtype = torch.float64,
    ) -> Kernel:
        """Infinite-width NNGP (and NTK) kernels between ``x1`` and ``x2``.

        Args:
            x1: Inputs, shape ``(n1, d)``.
            x2: Inputs, shape ``(n2, d)``; ``None`` means ``x1``.
            ntk: Also compute the NTK (NTK parameterisation only).
            block_size: Rows of ``x1`` per block; peak memory is O(block_size · n2).
            dtype: Computation dtype (float64 by default).

        Returns:
            `Kernel` with ``nngp`` (and ``ntk``) of shape ``(n1, n2)``, on x1's device.

        Raises:
            ValueError: bad shapes, non-finite inputs or a bad ``block_size``.
            NotImplementedError: ``ntk=True`` with a standard-parameterisation ``Dense``.
        """
        same = x2 is None
        x1, x2 = _check_inputs(x1, x2, dtype)
        _check_block_size(block_size)
        if ntk:
            self._check_ntk()
        # outputs are preallocated and filled block by block, so peak memory is the outputs
        # plus O(block_size * n2) temporaries (no concatenation, no transposed copy)
        nngp = x1.new_empty(x1.shape[0], x2.shape[0])
        ntk_ = x1.new_empty(x1.shape[0], x2.shape[0]) if ntk else None
        for start in range(0, x1.shape[0], block_size):
            state = self._apply(_input_state(x1[start : start + block_size], x2, ntk))
            nngp[start : start + block_size] = state.nngp
            if ntk_ is not None:
                ntk_[start : start + block_size] = state.ntk
            del state
        if same:  # quadrature is not exactly symmetric in its arguments
            _symmetrize_(nngp, block_size)
            if ntk_ is not None:
                _symmetrize_(ntk_, block_size)
        return Kernel(nngp, ntk_)

    def build(
        self,
        in_features: int,
        width: int,
        *,
        out_features: int | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> nn.Module:
        """The finite network of this description: ``(..., in_features) -> (..., out)``.

        Every ``Dense`` outputs ``width`` features except the last top-level one, which
        outputs ``out_features`` (``None``: ``width``). A ``Residual`` block maps its input
        size back to itself.

        Args:
            in_features: Input size ``d``.
            width: Hidden width ``n``.
            out_features: Output size of the last ``Dense``.
            generator: Generator the parameters are drawn from.
            device: Device of the parameters.
            dtype: Dtype of the parameters.

        Returns:
            An ``nn.Module`` whose output covariance tends to `kernel` as ``width`` grows.

        Raises:
            ValueError: sizes below 1, or ``out_features`` with no ``Dense`` to produce it.
        """
        for name, value in (("in_features", in_features), ("width", width)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
        if out_features is not None and (
            not isinstance(out_features, int) or isinstance(out_features, bool) or out_features < 1
        ):
            raise ValueError(f"out_features: expected an int >= 1 or None, got {out_features!r}")
        factory = {"generator": generator, "device": device, "dtype": dtype}
        module, _ = self._build(in_features, width, out_features, factory)
        return module


class Dense(Layer):
    """Fully connected layer, neural-tangents' ``stax.Dense(out, W_std, b_std, ...)``.

    Kernel map :math:`K \\mapsto \\sigma_w^2 K + \\sigma_b^2`,
    :math:`\\Theta \\mapsto \\sigma_w^2\\Theta + K_{\\text{new}}` (NTK parameterisation).

    Args:
        weight_std: :math:`\\sigma_w > 0`.
        bias_std: :math:`\\sigma_b \\ge 0`, or ``None`` for no bias.
        parameterization: ``"ntk"`` or ``"standard"`` (same NNGP; the standard NTK is not
            implemented).

    Raises:
        ValueError: a non-positive ``weight_std``, a negative ``bias_std`` or an unknown
            parameterisation.
    """

    def __init__(
        self,
        weight_std: float = 1.0,
        bias_std: float | None = None,
        parameterization: Literal["ntk", "standard"] = "ntk",
    ) -> None:
        self.weight_std = _check_positive("weight_std", weight_std)
        self.bias_std = None if bias_std is None else _check_nonnegative("bias_std", bias_std)
        if parameterization not in ("ntk", "standard"):
            raise ValueError(
                f"parameterization: expected 'ntk' or 'standard', got {parameterization!r}"
            )
        self.parameterization = parameterization

    def __repr__(self) -> str:
        return f"Dense({self.weight_std}, {self.bias_std}, {self.parameterization!r})"

    def _check_ntk(self) -> None:
        if self.parameterization == "standard":
            raise NotImplementedError(
                "the NTK of a standard-parameterisation Dense depends on finite layer widths and "
                "is not implemented; use parameterization='ntk' or kernel(..., ntk=False)"
            )

    def _apply(self, state: _State) -> _State:
        w2, b2 = self.weight_std**2, (self.bias_std or 0.0) ** 2
        nngp = w2 * state.nngp + b2
        ntk = None if state.ntk is None else w2 * state.ntk + nngp
        return _State(nngp, w2 * state.var1 + b2, w2 * state.var2 + b2, ntk)

    def _build(
        self, in_features: int, width: int, out_features: int | None, factory: dict
    ) -> tuple[nn.Module, int]:
        out = width if out_features is None else out_features
        module = DenseLinear(
            in_features,
            out,
            bias=self.bias_std is not None,
            weight_std=self.weight_std,
            bias_std=self.bias_std or 0.0,
            parameterization=self.parameterization,
            **factory,
        )
        return module, out


class Serial(Layer):
    """Layers applied in order (`serial`)."""

    def __init__(self, layers: Sequence[Layer]) -> None:
        flat: list[Layer] = []
        for index, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layers[{index}]: expected a Layer, got {layer!r}")
            flat.extend(layer.layers if isinstance(layer, Serial) else [layer])
        self.layers = tuple(flat)

    def __repr__(self) -> str:
        return f"serial({', '.join(map(repr, self.layers))})"

    def _check_ntk(self) -> None:
        for layer in self.layers:
            layer._check_ntk()

    def _apply(self, state: _State) -> _State:
        for layer in self.layers:
            state = layer._apply(state)
        return state

    def _build(
        self, in_features: int, width: int, out_features: int | None, factory: dict
    ) -> tuple[nn.Module, int]:
        dense = [i for i, layer in enumerate(self.layers) if isinstance(layer, Dense)]
        last = dense[-1] if dense else -1
        if last < 0 and out_features is not None and out_features != in_features:
            raise ValueError(
                f"out_features: no Dense layer can map {in_features} features to {out_features}"
            )
        modules, features = [], in_features
        for i, layer in enumerate(self.layers):
            module, features = layer._build(
                features, width, out_features if i == last else None, factory
            )
            modules.append(module)
        return nn.Sequential(*modules), features


class Residual(Layer):
    """:math:`x + \\text{scale}\\cdot\\text{block}(x)` (neural-tangents' FanOut/FanInSum).

    The block must end with a ``Dense``, so its output is a zero-mean GP independent of the
    skip branch: :math:`K \\mapsto K + \\text{scale}^2 K_{\\text{block}}`, likewise for the NTK.

    Args:
        block: A description ending with a ``Dense``.
        scale: Branch multiplier.

    Raises:
        ValueError: the block does not end with a ``Dense``, or ``scale`` is not finite.
    """

    def __init__(self, block: Layer, scale: float = 1.0) -> None:
        block = block if isinstance(block, Serial) else Serial([block])
        if not block.layers or not isinstance(block.layers[-1], Dense):
            raise ValueError(f"block: expected a description ending with a Dense, got {block!r}")
        self.block, self.scale = block, _check_finite("scale", scale)

    def __repr__(self) -> str:
        return f"Residual({self.block!r}, {self.scale})"

    def _check_ntk(self) -> None:
        self.block._check_ntk()

    def _apply(self, state: _State) -> _State:
        out, s2 = self.block._apply(state), self.scale**2
        ntk = None if state.ntk is None else state.ntk + s2 * out.ntk
        return _State(
            state.nngp + s2 * out.nngp, state.var1 + s2 * out.var1, state.var2 + s2 * out.var2, ntk
        )

    def _build(
        self, in_features: int, width: int, out_features: int | None, factory: dict
    ) -> tuple[nn.Module, int]:
        block, _ = self.block._build(in_features, width, in_features, factory)
        return _ResidualModule(block, self.scale), in_features


def serial(*layers: Layer) -> Serial:
    """Compose layer descriptions in order (neural-tangents' ``stax.serial``)."""
    return Serial(layers)
