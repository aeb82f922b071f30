"""Adjoint-equivariant layers on Lie algebra features (Lie Neurons).

Lin, Zhu & Ghaffari, "Lie Neurons: Adjoint-Equivariant Neural Networks for Semisimple Lie
Algebras", ICML 2024, arXiv:2310.04521 (official code ``UMich-CURLY/LieNeurons``).

Dimension legend: ``b`` batch, ``c`` channels (``c_in``/``c_out`` where they differ), ``K`` the
dimension of the algebra (`perceptrons.lie.LieAlgebra.dim`), ``n`` points/samples.

Features are ``(b, c, K)`` or ``(b, c, K, n)`` tensors: every ``(c, n)`` position holds an
element :math:`x \\in \\mathfrak g` in coordinates (axis 2). A group element ``g`` acts on all of
them at once by :math:`x \\mapsto \\mathrm{Ad}_g x` (`perceptrons.lie.LieAlgebra.act`), and every
layer here commutes with that action (the invariant layer is unchanged by it). With
:math:`B(x, y) = x^\\top \\kappa y` the Killing form and ``W`` learned ``(c_out, c_in)`` channel
mixings:

.. math::

    \\text{LieLinear:}\\quad & x'_o = \\sum_c W_{oc}\\, x_c \\\\
    \\text{LieReLU:}\\quad & d = U x, \\quad
        x' = \\begin{cases} x & B(x, d) \\le 0 \\\\ x + B(x, d)\\, d & \\text{else}
        \\end{cases}, \\quad \\text{leaky: } \\alpha x + (1 - \\alpha) x' \\\\
    \\text{LieBracket:}\\quad & x' = x + [W_1 x, W_2 x] \\\\
    \\text{LieMaxPool:}\\quad & d = W x, \\quad x'_c = x_{c, n^*}, \\quad
        n^* = \\arg\\max_n B(x_{cn}, d_{cn}) \\\\
    \\text{LieInvariant:}\\quad & B(x_c, x_c), \\quad B(x_c, d_j), \\quad \\det \\hat x_c

They are equivariant because ``Ad_g`` acts on the K axis while the mixings act on the channel
axis, ``B`` is Ad-invariant (:math:`\\mathrm{Ad}_g^\\top \\kappa\\, \\mathrm{Ad}_g = \\kappa`), and
``Ad_g`` is an algebra automorphism (:math:`\\mathrm{Ad}_g [x, y] = [\\mathrm{Ad}_g x,
\\mathrm{Ad}_g y]`). `perceptrons.testing.equivariance_error` measures it for any model.

As in the official code: no biases (a bias breaks equivariance); LieReLU does not normalise
``d`` (Vector Neurons subtract :math:`(x \\cdot d / |d|^2) d`, Lie Neurons add
:math:`B(x, d) d`); LieReLU's ``share_nonlinearity`` uses one direction ``(1, c)`` for all
channels; the learned directions of LieInvariant come from a LieLR block with a shared
nonlinearity. Weights are drawn like ``nn.Linear``'s, :math:`U(-1/\\sqrt{c_{in}},
1/\\sqrt{c_{in}})`, from an explicit ``generator``.

Deviations: LN-BatchNorm is not implemented: it rescales x by :math:`BN(B(x,x))/B(x,x)`, and
:math:`B(x, x)` is indefinite on sl(3) and sp(4) (it can be 0 for x != 0), so the rescaling is
unstable; the authors suggest it only on so(3), where Vector Neurons' batch norm applies. The
so(3)-only "geometric channel mixing" of the rigid-body ODE model and the bracket variant
without residual as a separate class are not implemented (``LieBracket(residual=False)`` is the
latter). LieMaxPool's direction matrix is a fixed buffer rather than a parameter, since the
argmax gives it no gradient (see `LieMaxPool`).
"""

from __future__ import annotations

import math
from typing import Literal, TypeAlias

import torch
from torch import nn

from perceptrons.checks import check_int, check_number, check_tensor, format_shape
from perceptrons.lie import LieAlgebra, get_algebra

__all__ = [
    "InvariantKind",
    "LieBracket",
    "LieInvariant",
    "LieLB",
    "LieLR",
    "LieLinear",
    "LieMaxPool",
    "LieReLU",
]

InvariantKind: TypeAlias = Literal["self_killing", "learned_killing", "det"]
_INVARIANT_KINDS = ("self_killing", "learned_killing", "det")


def _check_features(
    x: object, channels: int, algebra: LieAlgebra, *, points: bool | None = None
) -> torch.Tensor:
    """Check ``(b, c, K)`` (``points=False``), ``(b, c, K, n)`` (``True``) or either (``None``)."""
    k = algebra.dim
    shapes = {False: ("batch", channels, k), True: ("batch", channels, k, "num_points")}
    if points is None:
        rank = x.dim() if isinstance(x, torch.Tensor) else None
        if rank in (3, 4):
            return check_tensor(x, "x", shapes[rank == 4])
        expected = f"{format_shape(shapes[False])} or {format_shape(shapes[True])}"
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x: expected a tensor of shape {expected}, got {type(x).__name__}")
        raise ValueError(f"x: expected shape {expected} ({algebra.name}), got {tuple(x.shape)}")
    return check_tensor(x, "x", shapes[points])


def _mix(weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Channel mixing ``(c_out, c_in), (b, c_in, ...) -> (b, c_out, ...)``."""
    return (weight @ x.flatten(2)).unflatten(2, x.shape[2:])


def _init_weight(
    out_channels: int,
    in_channels: int,
    generator: torch.Generator | None,
    device: torch.device | str | None,
    dtype: torch.dtype | None,
) -> nn.Parameter:
    weight = torch.empty(out_channels, in_channels, device=device, dtype=dtype)
    bound = 1.0 / math.sqrt(in_channels)
    nn.init.uniform_(weight, -bound, bound, generator=generator)
    return nn.Parameter(weight)


class _LieModule(nn.Module):
    algebra: LieAlgebra
    channels: int

    def extra_repr(self) -> str:
        return f"{self.channels}, algebra={self.algebra.name}"


class LieLinear(_LieModule):
    """LN-Linear: channel mixing without bias, ``(b, c_in, K[, n]) -> (b, c_out, K[, n])``.

    Args:
        in_channels: Number of input channels ``c_in``.
        out_channels: Number of output channels ``c_out``.
        algebra: The Lie algebra (a `LieAlgebra` or a name for `perceptrons.lie.get_algebra`).
        generator: Generator the weight ``(c_out, c_in)`` is drawn from (``None``: global).
        device: Device of the weight.
        dtype: Floating dtype of the weight.

    Raises:
        ValueError: a channel count below 1 or an unknown algebra name.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        algebra: LieAlgebra | str,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = self.channels = check_int("in_channels", in_channels)
        self.out_channels = check_int("out_channels", out_channels)
        self.algebra = get_algebra(algebra)
        self.weight = _init_weight(out_channels, in_channels, generator, device, dtype)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, algebra={self.algebra.name}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(b, c_in, K[, n]) -> (b, c_out, K[, n])``."""
        x = _check_features(x, self.in_channels, self.algebra)
        return _mix(self.weight, x)


class LieReLU(_LieModule):
    """LN-ReLU (Killing ReLU), ``(b, c, K[, n]) -> (b, c, K[, n])``.

    With ``d = U x`` (one learned direction per channel), the output is ``x`` where
    :math:`B(x, d) \\le 0` and :math:`x + B(x, d)\\, d` elsewhere (``d`` is not normalised, as in
    the paper); with a ``negative_slope`` :math:`\\alpha` it is :math:`\\alpha x + (1 - \\alpha)`
    times that.

    Args:
        channels: Number of channels ``c``.
        algebra: The Lie algebra (a `LieAlgebra` or a name).
        negative_slope: :math:`\\alpha \\in [0, 1]` (the paper's leaky variant uses 0.2).
        share_nonlinearity: One direction for all channels (``U`` is ``(1, c)``, not ``(c, c)``).
        generator: Generator ``U`` is drawn from (``None``: global).
        device: Device of ``U``.
        dtype: Floating dtype of ``U``.

    Raises:
        ValueError: ``channels < 1``, ``negative_slope`` outside [0, 1], or an unknown algebra.
    """

    def __init__(
        self,
        channels: int,
        *,
        algebra: LieAlgebra | str,
        negative_slope: float = 0.0,
        share_nonlinearity: bool = False,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.channels = check_int("channels", channels)
        self.algebra = get_algebra(algebra)
        slope = check_number("negative_slope", negative_slope, low=0.0)
        if slope > 1:
            raise ValueError(f"negative_slope: expected a number in [0, 1], got {slope!r}")
        self.negative_slope = slope
        self.share_nonlinearity = bool(share_nonlinearity)
        directions = 1 if self.share_nonlinearity else channels
        self.weight = _init_weight(directions, channels, generator, device, dtype)

    def extra_repr(self) -> str:
        return (
            f"{self.channels}, algebra={self.algebra.name}, negative_slope={self.negative_slope}"
            f", share_nonlinearity={self.share_nonlinearity}"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(b, c, K[, n]) -> (b, c, K[, n])``."""
        x = _check_features(x, self.channels, self.algebra)
        xt = x.movedim(2, -1)  # (b, c, [n,] K)
        d = _mix(self.weight, xt)  # (b, c or 1, [n,] K)
        kf = self.algebra.killing(xt, d).unsqueeze(-1)
        out = torch.where(kf <= 0, xt, xt + kf * d)
        if self.negative_slope:
            out = self.negative_slope * xt + (1 - self.negative_slope) * out
        return out.movedim(-1, 2)


class LieBracket(_LieModule):
    """LN-Bracket: :math:`x + [W_1 x, W_2 x]` per channel, ``(b, c, K[, n]) -> (b, c, K[, n])``.

    Args:
        channels: Number of channels ``c``.
        algebra: The Lie algebra (a `LieAlgebra` or a name).
        residual: Add ``x`` (the paper's layer); ``False`` returns the bracket alone.
        generator: Generator ``W_1`` then ``W_2`` (``(c, c)`` each) are drawn from.
        device: Device of the weights.
        dtype: Floating dtype of the weights.

    Raises:
        ValueError: ``channels < 1`` or an unknown algebra name.
    """

    def __init__(
        self,
        channels: int,
        *,
        algebra: LieAlgebra | str,
        residual: bool = True,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.channels = check_int("channels", channels)
        self.algebra = get_algebra(algebra)
        self.residual = bool(residual)
        self.weight_left = _init_weight(channels, channels, generator, device, dtype)
        self.weight_right = _init_weight(channels, channels, generator, device, dtype)

    def extra_repr(self) -> str:
        return f"{self.channels}, algebra={self.algebra.name}, residual={self.residual}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(b, c, K[, n]) -> (b, c, K[, n])``."""
        x = _check_features(x, self.channels, self.algebra)
        xt = x.movedim(2, -1)
        out = self.algebra.bracket(_mix(self.weight_left, xt), _mix(self.weight_right, xt))
        out = out.movedim(-1, 2)
        return x + out if self.residual else out


class LieMaxPool(_LieModule):
    """LN-MaxPool over points, ``(b, c, K, n) -> (b, c, K)``.

    With ``d = W x``, each channel keeps the point ``n`` with the largest
    :math:`B(x_{cn}, d_{cn})` (or largest :math:`|B|` when ``absolute``). The choice is
    invariant, so the pooled features are equivariant (up to ties).

    ``W`` ``(c, c)`` is a buffer fixed at initialisation, not a parameter: the selection is
    piecewise constant in ``W``, so ``W`` never gets a gradient (in the official code it is an
    ``nn.Linear`` weight that training never changes). It is saved in the state dict.

    Args:
        channels: Number of channels ``c``.
        algebra: The Lie algebra (a `LieAlgebra` or a name).
        absolute: Rank points by :math:`|B(x, d)|`.
        generator: Generator ``W`` is drawn from (``None``: global).
        device: Device of ``W``.
        dtype: Floating dtype of ``W``.

    Raises:
        ValueError: ``channels < 1`` or an unknown algebra name.
    """

    weight: torch.Tensor

    def __init__(
        self,
        channels: int,
        *,
        algebra: LieAlgebra | str,
        absolute: bool = False,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.channels = check_int("channels", channels)
        self.algebra = get_algebra(algebra)
        self.absolute = bool(absolute)
        weight = _init_weight(channels, channels, generator, device, dtype)
        self.register_buffer("weight", weight.data)

    def extra_repr(self) -> str:
        return f"{self.channels}, algebra={self.algebra.name}, absolute={self.absolute}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(b, c, K, n) -> (b, c, K)``."""
        x = _check_features(x, self.channels, self.algebra, points=True)
        xt = x.movedim(2, -1)  # (b, c, n, K)
        score = self.algebra.killing(xt, _mix(self.weight, xt))  # (b, c, n)
        if self.absolute:
            score = score.abs()
        index = score.argmax(dim=-1)  # (b, c)
        index = index[:, :, None, None].expand(-1, -1, x.shape[2], 1)
        return x.gather(3, index).squeeze(3)


class LieLR(nn.Module):
    """LN-LR block: `LieLinear` then `LieReLU`, ``(b, c_in, K[, n]) -> (b, c_out, K[, n])``.

    Args:
        in_channels: Number of input channels.
        out_channels: Number of output channels.
        algebra: The Lie algebra (a `LieAlgebra` or a name).
        negative_slope: Leaky slope of the ReLU (0: plain).
        share_nonlinearity: One ReLU direction for all channels.
        generator: Generator the weights are drawn from, linear first (``None``: global).
        device: Device of the weights.
        dtype: Floating dtype of the weights.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        algebra: LieAlgebra | str,
        negative_slope: float = 0.0,
        share_nonlinearity: bool = False,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory = {"generator": generator, "device": device, "dtype": dtype}
        self.linear = LieLinear(in_channels, out_channels, algebra=algebra, **factory)
        self.relu = LieReLU(
            out_channels,
            algebra=algebra,
            negative_slope=negative_slope,
            share_nonlinearity=share_nonlinearity,
            **factory,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(b, c_in, K[, n]) -> (b, c_out, K[, n])``."""
        return self.relu(self.linear(x))


class LieLB(nn.Module):
    """LN-LB block: `LieLinear` then `LieBracket`, ``(b, c_in, K[, n]) -> (b, c_out, K[, n])``.

    Args:
        in_channels: Number of input channels.
        out_channels: Number of output channels.
        algebra: The Lie algebra (a `LieAlgebra` or a name).
        residual: Residual connection of the bracket layer.
        generator: Generator the weights are drawn from, linear first (``None``: global).
        device: Device of the weights.
        dtype: Floating dtype of the weights.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        algebra: LieAlgebra | str,
        residual: bool = True,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory = {"generator": generator, "device": device, "dtype": dtype}
        self.linear = LieLinear(in_channels, out_channels, algebra=algebra, **factory)
        self.bracket = LieBracket(out_channels, algebra=algebra, residual=residual, **factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(b, c_in, K[, n]) -> (b, c_out, K[, n])``."""
        return self.bracket(self.linear(x))


class LieInvariant(_LieModule):
    """LN-Invariant: Ad-invariant scalars of each channel, ``(b, c, K[, n]) -> (b, c', [n])``.

    Kinds:

    * ``"self_killing"``: :math:`B(x_c, x_c)`, ``c' = c`` (the paper's experiments);
    * ``"det"``: :math:`\\det \\hat x_c`, ``c' = c`` (identically 0 on so(3), whose 3x3
      elements are skew);
    * ``"learned_killing"``: :math:`B(x_c, d_j)` against ``num_directions`` = ``D`` learned
      equivariant directions ``d = LieLR(c -> D, share_nonlinearity=True)(x)``; ``c' = c * D``,
      flattened channel-major (output channel ``c * D + j``) as in the official code.

    The Frobenius norm :math:`\\mathrm{tr}(\\hat x^\\top \\hat x)` (the official ``"trace"``) is
    not offered: it is not invariant on sl(3) or sp(4).

    Args:
        channels: Number of input channels ``c``.
        algebra: The Lie algebra (a `LieAlgebra` or a name).
        kind: ``"self_killing"``, ``"learned_killing"`` or ``"det"``.
        num_directions: ``D`` for ``"learned_killing"`` (default ``c``); must be ``None`` for
            the other kinds.
        generator: Generator of the direction block's weights (``"learned_killing"`` only).
        device: Device of the weights.
        dtype: Floating dtype of the weights.

    Raises:
        ValueError: ``channels < 1``, an unknown kind, ``num_directions`` with a kind that has
            no learned directions, or an unknown algebra name.
    """

    def __init__(
        self,
        channels: int,
        *,
        algebra: LieAlgebra | str,
        kind: InvariantKind = "self_killing",
        num_directions: int | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.channels = check_int("channels", channels)
        self.algebra = get_algebra(algebra)
        if kind not in _INVARIANT_KINDS:
            raise ValueError(f"kind: expected one of {_INVARIANT_KINDS}, got {kind!r}")
        self.kind: InvariantKind = kind
        self.directions: LieLR | None = None
        if kind == "learned_killing":
            num = channels if num_directions is None else num_directions
            self.num_directions: int | None = check_int("num_directions", num)
            self.directions = LieLR(
                channels,
                self.num_directions,
                algebra=self.algebra,
                share_nonlinearity=True,
                generator=generator,
                device=device,
                dtype=dtype,
            )
        elif num_directions is not None:
            raise ValueError(
                f"num_directions: only used by kind='learned_killing', got {num_directions!r} "
                f"with kind={kind!r}"
            )
        else:
            self.num_directions = None

    @property
    def out_channels(self) -> int:
        """Number of output channels: ``c``, or ``c * num_directions`` for learned_killing."""
        return self.channels * (self.num_directions or 1)

    def extra_repr(self) -> str:
        return f"{self.channels}, algebra={self.algebra.name}, kind={self.kind!r}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(b, c, K) -> (b, c')`` or ``(b, c, K, n) -> (b, c', n)``."""
        x = _check_features(x, self.channels, self.algebra)
        xt = x.movedim(2, -1)  # (b, c, [n,] K)
        if self.kind == "self_killing":
            return self.algebra.killing(xt, xt)
        if self.kind == "det":
            return torch.linalg.det(self.algebra.hat(xt))
        assert self.directions is not None
        d = self.directions(x).movedim(2, -1)  # (b, D, [n,] K)
        kappa = self.algebra.tensor("killing_matrix", x.dtype, x.device)
        out = torch.einsum("bc...k,kl,bj...l->bcj...", xt, kappa, d)
        return out.flatten(1, 2)
