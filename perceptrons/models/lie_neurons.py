"""Lie Neurons: adjoint-invariant and adjoint-equivariant networks, and their MLP baseline.

Paper: Tzu-Yuan Lin, Minghan Zhu & Maani Ghaffari, "Lie Neurons: Adjoint-Equivariant Neural
Networks for Semisimple Lie Algebras", ICML 2024, arXiv:2310.04521 (official code
``UMich-CURLY/LieNeurons``).

Dimension legend: ``b`` batch, ``c`` channels (``c_in`` = ``in_channels``, ``c_h`` hidden),
``K`` = dim of the algebra (8 for sl3, 10 for sp4, 3 for so3), ``n`` = ``num_points``.

Implemented (registered names):

* ``"lie_neurons"`` (`LieNeurons`), the invariant model of the sl(3)/sp(4) invariant
  regressions and of the Platonic-solid classification:

  .. math::

      x\\ (b, c_{in}, K[, n]) \\xrightarrow{\\text{LN-LR / LN-LB blocks}} (b, c_h, K[, n])
      \\xrightarrow{\\text{pool over } n} (b, c_h, K)
      \\xrightarrow{\\text{LN-Invariant}} (b, c_h) \\xrightarrow{\\text{Linear}}
      (b, \\text{out\\_features}),

  invariant: :math:`f(\\mathrm{Ad}_g x) = f(x)` for every group element ``g``;
* ``"lie_neurons_equivariant"`` (`LieNeuronsEquivariant`), the equivariant head of the sl(3)
  equivariant regression (paper: LN-LB, LN-LB, LN-LR with a leaky ReLU, then a bias-free channel
  linear to one channel): blocks, pooling over points, then `LieLinear` ``c_h -> out_channels``,
  giving ``(b, out_channels, K)`` with :math:`f(\\mathrm{Ad}_g x) = \\mathrm{Ad}_g f(x)`;
* ``"lie_mlp"`` (`LieMLP`), the baseline: an `MLP` on the flattened input
  ``(b, c_in * K [* n])``, with an invariant-shaped ``(b, out_features)`` or an
  equivariant-shaped ``(b, out_features, K)`` output. It is neither invariant nor equivariant.

Blocks: ``"lr"`` = `LieLR` (`LieLinear` + `LieReLU`), ``"lb"`` = `LieLB` (`LieLinear` +
`LieBracket` with residual); the layer equations are in `perceptrons.layers.lie`.

Deviations and reconstructions (ours): a ``"mean"`` pooling option besides the paper's LN-MaxPool
(the mean over points is linear, hence equivariant); LN-MaxPool's direction matrix is a fixed
buffer (the argmax gives it no gradient; see `LieMaxPool`), so our parameter counts are lower
than the paper's by ``c_h²``; the invariant kind is configurable (the paper uses the
self-Killing form everywhere); ``"det"`` is rejected on so3, where it is identically zero.
LN-BatchNorm and the so(3) geometric channel mixing are not implemented (see
`perceptrons.layers.lie`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import torch
from torch import nn

from perceptrons.checks import check_tensor
from perceptrons.config import Config, require
from perceptrons.layers import MLP, ActivationName, DenseLinear
from perceptrons.layers.lie import (
    InvariantKind,
    LieInvariant,
    LieLB,
    LieLinear,
    LieLR,
    LieMaxPool,
)
from perceptrons.lie import LieAlgebra, get_algebra
from perceptrons.registry import MODELS

__all__ = [
    "AlgebraName",
    "BlockKind",
    "LieInputConfig",
    "LieMLP",
    "LieMLPConfig",
    "LieNeurons",
    "LieNeuronsConfig",
    "LieNeuronsEquivariant",
    "LieNeuronsEquivariantConfig",
    "PoolingName",
]

PAPER = (
    "Lin, Zhu & Ghaffari 2023, Lie Neurons: Adjoint-Equivariant Neural Networks for Semisimple "
    "Lie Algebras, arXiv:2310.04521"
)
MODULES = ("perceptrons.layers.lie", "perceptrons.lie")
"""Library modules these models are built from (shown by ``perceptrons info``)."""
DOCS = "docs/lie-neurons.md"

AlgebraName: TypeAlias = Literal["so3", "sl3", "sp4"]
BlockKind: TypeAlias = Literal["lr", "lb"]
PoolingName: TypeAlias = Literal["max", "mean"]


# ---------------------------------------------------------------------------- configs
@dataclass(frozen=True, kw_only=True)
class LieInputConfig(Config):
    """Input fields shared by the Lie Neurons models and their MLP baseline.

    Attributes:
        algebra: The Lie algebra of the features: "so3" (K = 3), "sl3" (K = 8) or "sp4"
            (K = 10), with the bases of the official code (perceptrons.lie).
        in_channels: Number of input channels c_in (2 for the regression tasks, whose inputs
            are pairs of algebra elements; 3 for the Platonic-solid task).
        num_points: None for inputs (batch, in_channels, K); an int n for inputs
            (batch, in_channels, K, n) (12 edges in the Platonic-solid task).
    """

    algebra: AlgebraName = "sl3"
    in_channels: int = 2  # pairs (x1, x2) of the paper's regression tasks
    num_points: int | None = None

    def validate(self) -> None:
        require(self.in_channels >= 1, "in_channels", "must be >= 1", self.in_channels)
        if self.num_points is not None:
            require(self.num_points >= 1, "num_points", "must be >= 1 (or None)", self.num_points)


@dataclass(frozen=True, kw_only=True)
class _LieTrunkConfig(LieInputConfig):
    """Fields of the equivariant trunk (blocks and pooling) of both Lie Neurons models.

    Attributes:
        hidden_channels: Output channels of each block.
        blocks: Kind of each block, as long as hidden_channels: "lr" (LieLinear + LieReLU)
            or "lb" (LieLinear + LieBracket with residual).
        negative_slope: Leaky slope of the LieReLU of every "lr" block, in [0, 1] (0: plain;
            the paper's leaky variant uses 0.2).
        pooling: How points are pooled when num_points is set: "max" (LieMaxPool, the
            paper's) or "mean" (mean over points).
    """

    hidden_channels: tuple[int, ...] = (64,)
    blocks: tuple[BlockKind, ...] = ("lr",)
    negative_slope: float = 0.0
    pooling: PoolingName = "max"

    def validate(self) -> None:
        super().validate()
        require(len(self.hidden_channels) >= 1, "hidden_channels", "needs at least one block")
        for i, width in enumerate(self.hidden_channels):
            require(width >= 1, f"hidden_channels[{i}]", "must be >= 1", width)
        require(
            len(self.blocks) == len(self.hidden_channels),
            "blocks",
            f"must have one kind per hidden_channels entry ({len(self.hidden_channels)})",
            self.blocks,
        )
        require(
            0.0 <= self.negative_slope <= 1.0,
            "negative_slope",
            "must be in [0, 1]",
            self.negative_slope,
        )


@dataclass(frozen=True, kw_only=True)
class LieNeuronsConfig(_LieTrunkConfig):
    """Configuration of `LieNeurons` (the invariant model).

    Attributes:
        hidden_channels: Output channels of each block (paper: 256; our choice: 64, to fit a CPU).
        blocks: Kind of each block, as long as hidden_channels: "lr" (LieLinear + LieReLU)
            or "lb" (LieLinear + LieBracket with residual).
        invariant: The LieInvariant layer: "self_killing" (B(x_c, x_c), the paper's),
            "learned_killing" (B(x_c, d_j) against c_h learned directions: c_h² features) or
            "det" (det of each channel's matrix; not allowed on so3, where it is 0).
        out_features: Size of the linear head's output (1 for regression, the number of
            classes for classification).
    """

    hidden_channels: tuple[int, ...] = (64,)  # our CPU-sized choice (paper: 256)
    blocks: tuple[BlockKind, ...] = ("lr",)  # paper: LN-LR
    invariant: InvariantKind = "self_killing"  # paper: every experiment
    out_features: int = 1

    def validate(self) -> None:
        super().validate()
        require(
            not (self.invariant == "det" and self.algebra == "so3"),
            "invariant",
            "'det' is identically 0 on so3 (its 3x3 elements are skew-symmetric)",
            self.invariant,
        )
        require(self.out_features >= 1, "out_features", "must be >= 1", self.out_features)


@dataclass(frozen=True, kw_only=True)
class LieNeuronsEquivariantConfig(_LieTrunkConfig):
    """Configuration of `LieNeuronsEquivariant` (the equivariant head).

    Attributes:
        hidden_channels: Output channels of each block (paper: 256; 64 on CPU).
        blocks: Kind of each block, as long as hidden_channels (paper: LN-LB, LN-LB, LN-LR).
        negative_slope: Leaky slope of the LieReLU of every "lr" block (paper: 0.2).
        out_channels: Output channels of the final bias-free LieLinear (paper: 1, one
            K-vector per sample).
    """

    hidden_channels: tuple[int, ...] = (64, 64, 64)  # paper: 256
    blocks: tuple[BlockKind, ...] = ("lb", "lb", "lr")  # paper: LN-LB, LN-LB, LN-LR(leaky)
    negative_slope: float = 0.2  # paper: leaky LN-ReLU
    out_channels: int = 1  # paper: one K-vector

    def validate(self) -> None:
        super().validate()
        require(self.out_channels >= 1, "out_channels", "must be >= 1", self.out_channels)


@dataclass(frozen=True, kw_only=True)
class LieMLPConfig(LieInputConfig):
    """Configuration of `LieMLP` (the baseline on flattened features).

    Attributes:
        hidden_features: Width of each hidden layer (paper: three layers of 256).
        activation: Hidden activation (see perceptrons.layers.ACTIVATIONS).
        out_features: Invariant output: its size (1 for regression, the number of classes for
            classification). Equivariant output: the number of K-vectors.
        equivariant_output: Reshape the output to (batch, out_features, K), the layout of an
            equivariant prediction (the readout then has out_features * K units).
    """

    hidden_features: tuple[int, ...] = (256, 256, 256)  # paper: 3-layer MLP, width 256
    activation: ActivationName = "relu"
    out_features: int = 1
    equivariant_output: bool = False

    def validate(self) -> None:
        super().validate()
        for i, width in enumerate(self.hidden_features):
            require(width >= 1, f"hidden_features[{i}]", "must be >= 1", width)
        require(self.out_features >= 1, "out_features", "must be >= 1", self.out_features)


# ---------------------------------------------------------------------------- models
class _LieInputModel(nn.Module):
    """Model protocol shared by the three models: input shape, example input, input check."""

    config: LieInputConfig
    algebra: LieAlgebra

    def __init__(self, config: LieInputConfig) -> None:
        super().__init__()
        self.config = config
        self.algebra = get_algebra(config.algebra)
        shape: tuple[str | int, ...] = ("batch", config.in_channels, self.algebra.dim)
        if config.num_points is not None:
            shape = (*shape, config.num_points)
        self.input_shape = shape

    def example_input(
        self, batch_size: int, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Entries ``U[-1/2, 1/2]`` (the paper's input law), shaped ``input_shape``.

        It has the dtype and device of the model's parameters.
        """
        param = next(self.parameters())
        shape = (batch_size, *self.input_shape[1:])
        u = torch.rand(shape, generator=generator, dtype=param.dtype, device=param.device)
        return u - 0.5

    def invalid_inputs(self) -> list[tuple[str, Any]]:
        """Inputs with one channel too many and with K + 1 (each must be rejected)."""
        x = self.example_input(2, generator=torch.Generator().manual_seed(0))
        return [
            ("one channel too many", torch.cat([x, x[:, :1]], dim=1)),
            ("algebra dimension K + 1", torch.cat([x, x[:, :, :1]], dim=2)),
        ]

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        return check_tensor(x, "x", self.input_shape)


def _trunk(
    config: _LieTrunkConfig, algebra: LieAlgebra, generator: torch.Generator | None
) -> tuple[nn.Sequential, nn.Module | None]:
    """The blocks ``(b, c_in, K[, n]) -> (b, c_h, K[, n])`` and the pooling (None: no points)."""
    blocks: list[nn.Module] = []
    width = config.in_channels
    for kind, out in zip(config.blocks, config.hidden_channels, strict=True):
        if kind == "lr":
            blocks.append(
                LieLR(
                    width,
                    out,
                    algebra=algebra,
                    negative_slope=config.negative_slope,
                    generator=generator,
                )
            )
        else:
            blocks.append(LieLB(width, out, algebra=algebra, generator=generator))
        width = out
    pool: nn.Module | None = None
    if config.num_points is not None:
        if config.pooling == "max":
            pool = LieMaxPool(width, algebra=algebra, generator=generator)
        else:
            pool = _MeanPool()
    return nn.Sequential(*blocks), pool


class _MeanPool(nn.Module):
    """Mean over points ``(b, c, K, n) -> (b, c, K)`` (linear, hence equivariant)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=-1)


@MODELS.register(
    "lie_neurons",
    config=LieNeuronsConfig,
    paper=PAPER,
    summary="Lie Neurons invariant model: LN blocks, pooling, invariants, linear head",
    modules=MODULES,
    docs=DOCS,
)
class LieNeurons(_LieInputModel):
    """Adjoint-invariant Lie Neurons ``(b, c_in, K[, n]) -> (b, out_features)``.

    Args:
        config: The architecture.
        generator: Generator the initial weights are drawn from, blocks first, then the
            pooling direction, the invariant layer and the head (``None``: global generator).

    Attributes:
        blocks: The LN-LR / LN-LB blocks ``(b, c_in, K[, n]) -> (b, c_h, K[, n])``.
        pool: Pooling over points ``(b, c_h, K, n) -> (b, c_h, K)`` (None without points).
        invariant: The `LieInvariant` layer ``(b, c_h, K) -> (b, c')``.
        head: The linear head ``(b, c') -> (b, out_features)``.
    """

    config: LieNeuronsConfig

    def __init__(
        self, config: LieNeuronsConfig, *, generator: torch.Generator | None = None
    ) -> None:
        super().__init__(config)
        self.blocks, self.pool = _trunk(config, self.algebra, generator)
        width = config.hidden_channels[-1]
        self.invariant = LieInvariant(
            width, algebra=self.algebra, kind=config.invariant, generator=generator
        )
        self.head = DenseLinear(
            self.invariant.out_channels, config.out_features, generator=generator
        )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The invariant features ``(b, c_in, K[, n]) -> (b, c')`` before the head.

        Raises:
            TypeError: ``x`` is not a floating tensor.
            ValueError: ``x`` does not have shape ``input_shape``.
        """
        h = self.blocks(self._check(x))
        if self.pool is not None:
            h = self.pool(h)
        return self.invariant(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(b, c_in, K[, n]) -> (b, out_features)``, invariant under ``Ad_g`` on axis 2.

        Raises:
            TypeError: ``x`` is not a floating tensor.
            ValueError: ``x`` does not have shape ``input_shape``.
        """
        return self.head(self.features(x))


@MODELS.register(
    "lie_neurons_equivariant",
    config=LieNeuronsEquivariantConfig,
    paper=PAPER,
    summary="Lie Neurons equivariant head: LN blocks, pooling, channel linear to K-vectors",
    modules=MODULES,
    docs=DOCS,
)
class LieNeuronsEquivariant(_LieInputModel):
    """Adjoint-equivariant Lie Neurons ``(b, c_in, K[, n]) -> (b, out_channels, K)``.

    Args:
        config: The architecture.
        generator: Generator the initial weights are drawn from, blocks first, then the
            pooling direction and the output layer (``None``: global generator).

    Attributes:
        blocks: The LN-LR / LN-LB blocks ``(b, c_in, K[, n]) -> (b, c_h, K[, n])``.
        pool: Pooling over points ``(b, c_h, K, n) -> (b, c_h, K)`` (None without points).
        readout: The bias-free `LieLinear` ``(b, c_h, K) -> (b, out_channels, K)``.
    """

    config: LieNeuronsEquivariantConfig

    def __init__(
        self, config: LieNeuronsEquivariantConfig, *, generator: torch.Generator | None = None
    ) -> None:
        super().__init__(config)
        self.blocks, self.pool = _trunk(config, self.algebra, generator)
        self.readout = LieLinear(
            config.hidden_channels[-1],
            config.out_channels,
            algebra=self.algebra,
            generator=generator,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(b, c_in, K[, n]) -> (b, out_channels, K)``, equivariant: ``f(Ad x) = Ad f(x)``.

        Raises:
            TypeError: ``x`` is not a floating tensor.
            ValueError: ``x`` does not have shape ``input_shape``.
        """
        h = self.blocks(self._check(x))
        if self.pool is not None:
            h = self.pool(h)
        return self.readout(h)


@MODELS.register(
    "lie_mlp",
    config=LieMLPConfig,
    paper=PAPER,
    summary="MLP baseline of Lie Neurons on flattened algebra features",
    modules=MODULES,
    docs=DOCS,
)
class LieMLP(_LieInputModel):
    """MLP on flattened features ``(b, c_in, K[, n]) -> (b, out_features)``.

    With ``equivariant_output`` the output is ``(b, out_features, K)`` (a prediction in the
    layout of `LieNeuronsEquivariant`). Not invariant or equivariant: the baseline.

    Args:
        config: The architecture.
        generator: Generator the initial weights are drawn from (``None``: global generator).

    Attributes:
        net: The `MLP` ``(b, c_in * K [* n]) -> (b, out_features [* K])``.
    """

    config: LieMLPConfig

    def __init__(self, config: LieMLPConfig, *, generator: torch.Generator | None = None) -> None:
        super().__init__(config)
        in_features = config.in_channels * self.algebra.dim * (config.num_points or 1)
        out = config.out_features * (self.algebra.dim if config.equivariant_output else 1)
        self.net = MLP(
            in_features,
            config.hidden_features,
            out,
            act_layer=config.activation,
            generator=generator,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(b, c_in, K[, n]) -> (b, out_features)`` or ``(b, out_features, K)``.

        Raises:
            TypeError: ``x`` is not a floating tensor.
            ValueError: ``x`` does not have shape ``input_shape``.
        """
        out = self.net(self._check(x).flatten(1))
        if self.config.equivariant_output:
            out = out.unflatten(1, (self.config.out_features, self.algebra.dim))
        return out
