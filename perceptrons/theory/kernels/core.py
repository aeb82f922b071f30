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


class _Workspace:
    """Reusable ``(rows, n2)`` matrices for one `Layer.kernel` call.

    Allocating a fresh block-sized matrix costs more than the arithmetic done on it (page
    faults on every new large buffer), so layers take their temporaries from here and give
    consumed matrices back. Tensors that did not come from here are ignored on `give`.
    """

    def __init__(self, capacity: int, like: torch.Tensor) -> None:
        self.capacity, self.dtype, self.device = capacity, like.dtype, like.device
        self._free: list[torch.Tensor] = []
        self._owned: dict[int, torch.Tensor] = {}

    def take(self, rows: int, cols: int) -> torch.Tensor:
        """An uninitialised ``(rows, cols)`` matrix (``rows * cols <= capacity``)."""
        buffer = self._free.pop() if self._free else None
        if buffer is None:
            buffer = torch.empty(self.capacity, dtype=self.dtype, device=self.device)
            self._owned[buffer.data_ptr()] = buffer
        return buffer[: rows * cols].view(rows, cols)

    def give(self, *tensors: torch.Tensor | None) -> None:
        """Return matrices obtained from `take` (anything else is ignored)."""
        for tensor in tensors:
            if tensor is None:
                continue
            buffer = self._owned.get(tensor.data_ptr())
            if buffer is not None and all(buffer is not free for free in self._free):
                self._free.append(buffer)


@dataclasses.dataclass
class KernelState:
    """Kernel state flowing through the layers: cross kernels and the two variance vectors.

    ``Layer._apply(state)`` consumes its argument: it may overwrite the tensors in place (the
    matrices are the memory and time bottleneck, so full-size temporaries are avoided). A
    caller that needs the state afterwards passes ``state.clone()``.
    """

    nngp: torch.Tensor  # (b, n2)
    var1: torch.Tensor  # (b,)
    var2: torch.Tensor  # (n2,)
    ntk: torch.Tensor | None  # (b, n2)
    # features entering the next Dense (None: an unknown hidden width), and the hidden width a
    # Dense outputs; only the standard-parameterisation NTK depends on them
    features: int | None = None
    width: int | None = None
    workspace: _Workspace | None = None

    def scratch(self) -> torch.Tensor:
        """An uninitialised matrix shaped like ``nngp`` (from the workspace when there is one)."""
        if self.workspace is None:
            return torch.empty_like(self.nngp)
        return self.workspace.take(*self.nngp.shape)

    def release(self, *tensors: torch.Tensor | None) -> None:
        """Give consumed matrices back to the workspace (no-op without one)."""
        if self.workspace is not None:
            self.workspace.give(*tensors)

    def clone(self) -> KernelState:
        """A copy whose tensors can be overwritten without touching this one."""
        return dataclasses.replace(
            self,
            nngp=self.scratch().copy_(self.nngp),
            var1=self.var1.clone(),
            var2=self.var2.clone(),
            ntk=None if self.ntk is None else self.scratch().copy_(self.ntk),
        )


# ---------------------------------------------------------------------------- checks
def check_positive(name: str, value: object) -> float:
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")
    return float(value)


def check_nonnegative(name: str, value: object) -> float:
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    return float(value)


def check_finite(name: str, value: object) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return float(value)


def check_inputs(
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


def symmetrize_(a: torch.Tensor, block_size: int) -> None:
    """Replace the square matrix ``a`` by ``(a + a^T) / 2`` in place, one block pair at a time."""
    n = a.shape[0]
    for i in range(0, n, block_size):
        for j in range(i, n, block_size):
            upper = a[i : i + block_size, j : j + block_size]
            mean = (upper + a[j : j + block_size, i : i + block_size].T) / 2
            upper.copy_(mean)
            a[j : j + block_size, i : i + block_size].copy_(mean.T)


def check_block_size(block_size: int) -> int:
    if not isinstance(block_size, int) or isinstance(block_size, bool) or block_size < 1:
        raise ValueError(f"block_size: expected an int >= 1, got {block_size!r}")
    return block_size


def input_state(
    x1: torch.Tensor,
    x2: torch.Tensor,
    ntk: bool,
    width: int | None,
    workspace: _Workspace | None = None,
    diagonal: int | None = None,
) -> KernelState:
    """The input kernel :math:`x\\cdot x'/d` (neural-tangents' convention), zero NTK.

    ``diagonal``: when ``x1`` is rows ``diagonal:`` of ``x2``, the entries ``(i, diagonal + i)``
    are set to the variances computed the same way as ``var1``/``var2``, so every layer keeps
    them bitwise equal and the correlation there is exactly 1 (a matmul rounds differently).
    """
    d = x1.shape[1]
    shape = (x1.shape[0], x2.shape[0])
    if workspace is None:
        nngp = x1 @ x2.T
        zeros = x1.new_zeros(shape) if ntk else None
    else:
        nngp = torch.matmul(x1, x2.T, out=workspace.take(*shape))
        zeros = workspace.take(*shape).zero_() if ntk else None
    nngp.div_(d)
    var2 = (x2 * x2).sum(1) / d
    if diagonal is None:
        var1 = (x1 * x1).sum(1) / d
    else:
        var1 = var2[diagonal : diagonal + x1.shape[0]].clone()
        nngp.diagonal(diagonal).copy_(var1)
    return KernelState(nngp, var1, var2, zeros, d, width, workspace)


class LambdaLayer(nn.Module):
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

    def _apply(self, state: KernelState) -> KernelState:
        raise NotImplementedError

    def _build(
        self, in_features: int, width: int, out_features: int | None, factory: dict
    ) -> tuple[nn.Module, int]:
        raise NotImplementedError

    def kernel(
        self,
        x1: torch.Tensor,
        x2: torch.Tensor | None = None,
        *,
        ntk: bool = True,
        width: int | None = None,
        block_size: int = 1024,
        dtype: torch.dtype = torch.float64,
    ) -> Kernel:
        """Infinite-width NNGP (and NTK) kernels between ``x1`` and ``x2``.

        Args:
            x1: Inputs, shape ``(n1, d)``.
            x2: Inputs, shape ``(n2, d)``; ``None`` means ``x1``.
            ntk: Also compute the NTK.
            width: Hidden width of the network ``build(d, width)`` would make. Only the NTK
                of a standard-parameterisation ``Dense`` after the first layer depends on it
                (it grows linearly with its fan-in, as in neural-tangents); ignored otherwise.
            block_size: Rows of ``x1`` per block; peak memory is O(block_size · n2).
            dtype: Computation dtype (float64 by default).

        Returns:
            `Kernel` with ``nngp`` (and ``ntk``) of shape ``(n1, n2)``, on x1's device.

        Raises:
            ValueError: bad shapes, non-finite inputs, a bad ``block_size`` or ``width``, or
                the NTK of a standard-parameterisation hidden ``Dense`` without ``width``.
        """
        same = x2 is None
        x1, x2 = check_inputs(x1, x2, dtype)
        check_block_size(block_size)
        if width is not None and (
            not isinstance(width, int) or isinstance(width, bool) or width < 1
        ):
            raise ValueError(f"width: expected an int >= 1 or None, got {width!r}")
        # outputs are preallocated and filled block by block, so peak memory is the outputs
        # plus O(block_size * n2) temporaries (no concatenation, no transposed copy)
        nngp = x1.new_empty(x1.shape[0], x2.shape[0])
        ntk_ = x1.new_empty(x1.shape[0], x2.shape[0]) if ntk else None
        workspace = _Workspace(min(block_size, x1.shape[0]) * x2.shape[0], nngp)
        for start in range(0, x1.shape[0], block_size):
            rows = x1[start : start + block_size]
            diagonal = start if same else None
            state = self._apply(input_state(rows, x2, ntk, width, workspace, diagonal))
            nngp[start : start + block_size] = state.nngp
            if ntk_ is not None:
                ntk_[start : start + block_size] = state.ntk
            state.release(state.nngp, state.ntk)
            del state
        del workspace
        if same:  # quadrature is not exactly symmetric in its arguments
            symmetrize_(nngp, block_size)
            if ntk_ is not None:
                symmetrize_(ntk_, block_size)
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
        parameterization: ``"ntk"`` or ``"standard"``. Same NNGP; the standard NTK adds the
            fan-in times the incoming NNGP (plus 1 with a bias) instead of the NNGP:
            :math:`\\Theta \\mapsto \\sigma_w^2\\Theta + n_{in} K + [\\sigma_b \\ne
            \\text{None}]`, so it needs the hidden width (``kernel(..., width=)``).

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
        self.weight_std = check_positive("weight_std", weight_std)
        self.bias_std = None if bias_std is None else check_nonnegative("bias_std", bias_std)
        if parameterization not in ("ntk", "standard"):
            raise ValueError(
                f"parameterization: expected 'ntk' or 'standard', got {parameterization!r}"
            )
        self.parameterization = parameterization

    def __repr__(self) -> str:
        return f"Dense({self.weight_std}, {self.bias_std}, {self.parameterization!r})"

    def _apply(self, state: KernelState) -> KernelState:
        w2, b2 = self.weight_std**2, (self.bias_std or 0.0) ** 2
        ntk = state.ntk
        if ntk is not None and self.parameterization == "standard":
            # d f / d W = the fan-in incoming features, not scaled: n_in K (+ 1 for the bias)
            if state.features is None:
                raise ValueError(
                    "width: the NTK of a standard-parameterisation Dense after a hidden layer "
                    "grows with its fan-in; pass kernel(..., width=n) with the hidden width"
                )
            ntk.mul_(w2).add_(state.nngp, alpha=state.features)
            if self.bias_std is not None:
                ntk.add_(1.0)
        nngp = state.nngp.mul_(w2).add_(b2)
        if ntk is not None and self.parameterization == "ntk":
            ntk.mul_(w2).add_(nngp)
        return dataclasses.replace(
            state,
            nngp=nngp,
            var1=w2 * state.var1 + b2,
            var2=w2 * state.var2 + b2,
            ntk=ntk,
            features=state.width,
        )

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

    def _apply(self, state: KernelState) -> KernelState:
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
        self.block, self.scale = block, check_finite("scale", scale)

    def __repr__(self) -> str:
        return f"Residual({self.block!r}, {self.scale})"

    def _apply(self, state: KernelState) -> KernelState:
        out, s2 = self.block._apply(state.clone()), self.scale**2
        ntk = None if state.ntk is None else state.ntk.add_(out.ntk, alpha=s2)
        nngp = state.nngp.add_(out.nngp, alpha=s2)
        state.release(out.nngp, out.ntk)
        return dataclasses.replace(
            state,
            nngp=nngp,
            var1=state.var1 + s2 * out.var1,
            var2=state.var2 + s2 * out.var2,
            ntk=ntk,
        )

    def _build(
        self, in_features: int, width: int, out_features: int | None, factory: dict
    ) -> tuple[nn.Module, int]:
        block, _ = self.block._build(in_features, width, in_features, factory)
        return _ResidualModule(block, self.scale), in_features


def serial(*layers: Layer) -> Serial:
    """Compose layer descriptions in order (neural-tangents' ``stax.serial``)."""
    return Serial(layers)
