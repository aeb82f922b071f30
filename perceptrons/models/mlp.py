"""Library baselines: a plain MLP ("mlp") and a residual MLP ("residual_mlp").

These are not reproductions of a paper: they are the configurable fully connected networks the
paper models are compared against and built from. Both wrap the layers of
`perceptrons.layers.mlp` behind a `Config` and follow the model protocol of
`perceptrons.models`.

Dimension legend: ``b`` batch, ``d_in`` = ``in_features``, ``d_out`` = ``out_features``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import torch
from torch import nn

from perceptrons.checks import check_tensor
from perceptrons.config import Config, require
from perceptrons.layers import MLP, ActivationName, Parameterization, ResidualMLP
from perceptrons.registry import MODELS

__all__ = [
    "FullyConnectedModel",
    "MLPConfig",
    "MLPModel",
    "ResidualMLPConfig",
    "ResidualMLPModel",
]

NormName: TypeAlias = Literal["none", "layernorm", "batchnorm"]

_NORMS: dict[str, Callable[[int], nn.Module] | None] = {
    "none": None,
    "layernorm": nn.LayerNorm,
    "batchnorm": nn.BatchNorm1d,  # model inputs are (batch, features): BatchNorm1d applies as is
}


def _validate_layer_fields(config: LayerFieldsConfig) -> None:
    require(config.in_features >= 1, "in_features", "must be >= 1", config.in_features)
    require(0.0 <= config.dropout < 1.0, "dropout", "must be in [0, 1)", config.dropout)
    if config.weight_std is not None:
        require(
            0 <= config.weight_std < math.inf,
            "weight_std",
            "must be finite and >= 0",
            config.weight_std,
        )
    require(0 <= config.bias_std < math.inf, "bias_std", "must be finite and >= 0", config.bias_std)
    require(
        config.weight_std is not None or config.parameterization == "ntk" or config.bias_std == 0,
        "bias_std",
        "must be 0 when weight_std is None in standard parameterisation "
        "(nn.Linear's default initialisation is used)",
        config.bias_std,
    )


def _layer_kwargs(config: LayerFieldsConfig) -> dict[str, Any]:
    """Keyword arguments shared by `MLP` and `ResidualMLP`."""
    return {
        "act_layer": config.activation,
        "norm_layer": _NORMS[config.norm],
        "dropout": config.dropout,
        "bias": config.bias,
        "weight_std": config.weight_std,
        "bias_std": config.bias_std,
        "parameterization": config.parameterization,
    }


class FullyConnectedModel(nn.Module):
    """Model protocol shared by the fully connected models: inputs ``(b, in_features)``.

    Subclasses build ``self.net`` (an `MLP` or `ResidualMLP`) and set ``self.config``; this
    base provides ``input_shape``, ``example_input``, the validated ``forward`` and
    ``forward_hidden``. Used by `perceptrons.models.mlp` and `perceptrons.models.scaling`.
    """

    net: MLP | ResidualMLP

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.input_shape: tuple[str | int, ...] = ("batch", in_features)

    def example_input(
        self, batch_size: int, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Standard normal input of shape ``(batch_size, in_features)``.

        It has the dtype and device of the model's parameters.
        """
        param = next(self.parameters())
        return torch.randn(
            batch_size,
            self.input_shape[-1],
            generator=generator,
            dtype=param.dtype,
            device=param.device,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(b, in_features) -> (b, out_features)`` (``(b, width)`` without a readout).

        Raises:
            TypeError: ``x`` is not a floating tensor.
            ValueError: ``x`` does not have shape ``(batch, in_features)``.
        """
        check_tensor(x, "x", self.input_shape)
        return self.net(x)

    def forward_hidden(
        self, x: torch.Tensor, *, post_activation: bool = False
    ) -> list[torch.Tensor]:
        """Layer-wise representations, each ``(b, ...)`` (see the wrapped layer's).

        Args:
            x: Input of shape ``(b, in_features)``.
            post_activation: Passed to the wrapped layer's ``forward_hidden``: hidden layers
                after their activation instead of before (no effect for residual streams).

        Raises:
            TypeError: ``x`` is not a floating tensor.
            ValueError: ``x`` does not have shape ``(batch, in_features)``.
        """
        check_tensor(x, "x", self.input_shape)
        return self.net.forward_hidden(x, post_activation=post_activation)


@dataclass(frozen=True, kw_only=True)
class LayerFieldsConfig(Config):
    """Fields shared by the fully connected model configs (activation, norm, initialisation).

    Attributes:
        in_features: Size of the input's last dimension.
        activation: Name of the hidden activation (see perceptrons.layers.ACTIVATIONS).
        norm: Normalisation before each activation: "none", "layernorm" or "batchnorm".
        dropout: Dropout probability after each hidden activation, in [0, 1).
        bias: Whether the linear layers have biases.
        weight_std: Weight scale sigma_w: weights ~ N(0, sigma_w^2 / fan_in). None selects
            PyTorch's default nn.Linear initialisation (standard) or 1.0 (ntk).
        bias_std: Bias scale sigma_b: biases ~ N(0, sigma_b^2). Must be 0 when weight_std is
            None in standard parameterisation.
        parameterization: "standard" (y = x W^T + b) or "ntk" (W, b ~ N(0, 1), scales applied
            in the forward pass): same function at initialisation, different gradient scale.
    """

    in_features: int = 64
    activation: ActivationName = "relu"
    norm: NormName = "none"
    dropout: float = 0.0
    bias: bool = True
    weight_std: float | None = None
    bias_std: float = 0.0
    parameterization: Parameterization = "standard"

    def validate(self) -> None:
        _validate_layer_fields(self)


@dataclass(frozen=True, kw_only=True)
class MLPConfig(LayerFieldsConfig):
    """Configuration of `MLPModel`.

    Attributes:
        hidden_features: Width of each hidden layer; () gives a linear model.
        out_features: Size of the output's last dimension.
    """

    hidden_features: tuple[int, ...] = (128, 128)
    out_features: int = 10

    def validate(self) -> None:
        super().validate()
        for i, width in enumerate(self.hidden_features):
            require(width >= 1, f"hidden_features[{i}]", "must be >= 1", width)
        require(self.out_features >= 1, "out_features", "must be >= 1", self.out_features)


@MODELS.register("mlp", config=MLPConfig, summary="Multilayer perceptron (library baseline)")
class MLPModel(FullyConnectedModel):
    """Multilayer perceptron ``(b, in_features) -> (b, out_features)`` (see `layers.MLP`).

    Args:
        config: The architecture.
        generator: Generator the initial weights are drawn from (``None``: global generator).
    """

    config: MLPConfig

    def __init__(self, config: MLPConfig, *, generator: torch.Generator | None = None) -> None:
        super().__init__(config.in_features)
        self.config = config
        self.net = MLP(
            config.in_features,
            config.hidden_features,
            config.out_features,
            **_layer_kwargs(config),
            generator=generator,
        )


@dataclass(frozen=True, kw_only=True)
class ResidualMLPConfig(LayerFieldsConfig):
    """Configuration of `ResidualMLPModel`.

    Attributes:
        width: Width of the residual stream.
        depth: Number of residual blocks.
        out_features: Size of the readout; None returns the width features of the last block.
        branch_scale: Factor on each residual branch; None means depth ** -0.5 (1 for depth 0).
        input_projection: Project the input to the width with a linear layer; if false,
            in_features must equal width.
    """

    width: int = 128
    depth: int = 4
    out_features: int | None = 10
    branch_scale: float | None = None
    input_projection: bool = True

    def validate(self) -> None:
        super().validate()
        require(self.width >= 1, "width", "must be >= 1", self.width)
        require(self.depth >= 0, "depth", "must be >= 0", self.depth)
        if self.out_features is not None:
            require(self.out_features >= 1, "out_features", "must be >= 1", self.out_features)
        if self.branch_scale is not None:
            require(
                math.isfinite(self.branch_scale),
                "branch_scale",
                "must be finite",
                self.branch_scale,
            )
        require(
            self.input_projection or self.in_features == self.width,
            "input_projection",
            f"False needs in_features == width (in_features={self.in_features}, "
            f"width={self.width})",
            self.input_projection,
        )


@MODELS.register(
    "residual_mlp", config=ResidualMLPConfig, summary="Residual MLP (library baseline)"
)
class ResidualMLPModel(FullyConnectedModel):
    """Residual MLP ``(b, in_features) -> (b, out_features)`` (see `layers.ResidualMLP`).

    Returns ``(b, width)`` when ``config.out_features`` is ``None``.

    Args:
        config: The architecture.
        generator: Generator the initial weights are drawn from (``None``: global generator).
    """

    config: ResidualMLPConfig

    def __init__(
        self, config: ResidualMLPConfig, *, generator: torch.Generator | None = None
    ) -> None:
        super().__init__(config.in_features)
        self.config = config
        self.net = ResidualMLP(
            config.in_features,
            config.width,
            config.depth,
            config.out_features,
            branch_scale=config.branch_scale,
            input_projection=config.input_projection,
            **_layer_kwargs(config),
            generator=generator,
        )
