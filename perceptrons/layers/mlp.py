"""Multilayer perceptrons built from `DenseLinear`: a plain MLP and a residual MLP.

Dimension legend: ``...`` any leading dimensions, ``d_in`` = ``in_features``,
``d_out`` = ``out_features``, ``n`` = width of a hidden layer, ``L`` = number of hidden layers
(``len(hidden_features)`` or ``depth``).

Both classes expose `forward_hidden`, which returns every layer's representation; Monte Carlo
estimators of layer-wise covariances run on these same modules.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from perceptrons.layers.activations import ActivationLike, get_activation
from perceptrons.layers.linear import DenseLinear, Parameterization, check_size

__all__ = ["MLP", "ResidualMLP"]

NormFactory = Callable[[int], nn.Module]


class MLP(nn.Module):
    """Fully connected network ``(..., in_features) -> (..., out_features)``.

    Each hidden layer is ``DenseLinear -> norm -> activation -> dropout``; the last layer is a
    `DenseLinear` with no activation. ``hidden_features=()`` gives a linear model.

    .. math::

        z_1 = W_1 x + b_1, \\quad z_{\\ell+1} = W_{\\ell+1}\\, \\mathrm{drop}(\\phi(
        \\mathrm{norm}(z_\\ell))) + b_{\\ell+1}, \\quad y = z_{L+1}.

    Args:
        in_features: Size of the input's last dimension.
        hidden_features: Width of each hidden layer, e.g. ``(128, 128)``.
        out_features: Size of the output's last dimension.
        act_layer: Activation name (see `perceptrons.layers.ACTIVATIONS`) or factory.
        norm_layer: Factory called with a hidden width, e.g. ``nn.LayerNorm``; ``None`` for none.
        dropout: Dropout probability after each hidden activation, in ``[0, 1)``.
        bias: Whether the linear layers have biases.
        weight_std: ``weight_std`` of every `DenseLinear` (``None``: PyTorch's default init).
        bias_std: ``bias_std`` of every `DenseLinear`.
        parameterization: ``"standard"`` or ``"ntk"`` (see `DenseLinear`).
        device: Device of the parameters.
        dtype: Floating dtype of the parameters.
        generator: Generator the initial weights are drawn from (``None``: global generator).

    Attributes:
        layers: The hidden layers, each with ``linear``, ``norm``, ``act``, ``drop``.
        readout: The final `DenseLinear`.

    Raises:
        ValueError: invalid sizes, dropout, stds, parameterisation or activation name.
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: Sequence[int],
        out_features: int,
        *,
        act_layer: ActivationLike = nn.ReLU,
        norm_layer: NormFactory | None = None,
        dropout: float = 0.0,
        bias: bool = True,
        weight_std: float | None = None,
        bias_std: float = 0.0,
        parameterization: Parameterization = "standard",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        check_size("in_features", in_features)
        hidden = _check_widths(hidden_features)
        check_size("out_features", out_features)
        _check_dropout(dropout)
        act = get_activation(act_layer)
        linear = {
            "bias": bias,
            "weight_std": weight_std,
            "bias_std": bias_std,
            "parameterization": parameterization,
            "device": device,
            "dtype": dtype,
            "generator": generator,
        }
        self.in_features = in_features
        self.hidden_features = hidden
        self.out_features = out_features
        widths = (in_features, *hidden)
        self.layers = nn.ModuleList()
        for fan_in, width in zip(widths[:-1], widths[1:], strict=True):
            self.layers.append(
                _HiddenLayer(
                    DenseLinear(fan_in, width, **linear),
                    _make_norm(norm_layer, width, device, dtype),
                    act(),
                    dropout,
                )
            )
        self.readout = DenseLinear(widths[-1], out_features, **linear)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., in_features) -> (..., out_features)``."""
        for layer in self.layers:
            x = layer(x)
        return self.readout(x)

    def forward_hidden(
        self, x: torch.Tensor, *, post_activation: bool = False
    ) -> list[torch.Tensor]:
        """Pre-activations (or post-activations) of every layer.

        Args:
            x: Input of shape ``(..., in_features)``.
            post_activation: Return each hidden layer's output after norm, activation and
                dropout (the input of the next `DenseLinear`) instead of its pre-activation.

        Returns:
            ``len(hidden_features) + 1`` tensors: for each hidden layer, the output of its
            `DenseLinear` (before norm and activation), or with ``post_activation=True`` the
            layer's output, shape ``(..., hidden_features[i])``; then the network output (no
            activation either way), shape ``(..., out_features)``.
        """
        hidden: list[torch.Tensor] = []
        for layer in self.layers:
            z = layer.linear(x)
            x = layer.activate(z)
            hidden.append(x if post_activation else z)
        hidden.append(self.readout(x))
        return hidden


class ResidualMLP(nn.Module):
    """Residual fully connected network with pre-activation branches.

    .. math::

        h_0 = W_{in} x, \\qquad
        h_\\ell = h_{\\ell-1}
            + \\beta\\, W_\\ell\\, \\mathrm{drop}(\\phi(\\mathrm{norm}(h_{\\ell-1})))
        \\quad (\\ell = 1, \\dots, L), \\qquad y = W_{out} h_L,

    with biases where ``bias=True``. With :math:`\\beta = \\sigma_r / \\sqrt{L}`, no norm and
    ``weight_std=1`` (so :math:`W_\\ell \\sim \\mathcal N(0, 1/n)`) this is the ResNet
    :math:`x_{\\ell+1} = x_\\ell + \\frac{\\sigma_r}{\\sqrt{L}} W \\phi(x_\\ell)` of Li & Nica
    (2023, arXiv:2310.12079).

    Shapes: ``(..., in_features) -> (..., out_features)``, or ``(..., width)`` when
    ``out_features`` is ``None``.

    Args:
        in_features: Size of the input's last dimension.
        width: Size :math:`n` of every residual stream representation :math:`h_\\ell`.
        depth: Number :math:`L \\ge 0` of residual blocks.
        out_features: Size of the readout; ``None`` for no readout (returns :math:`h_L`).
        branch_scale: :math:`\\beta`; ``None`` means :math:`1/\\sqrt{L}` (1 when ``depth=0``),
            which keeps the variance of :math:`h_L` bounded as the depth grows.
        act_layer: Activation name or factory.
        norm_layer: Factory called with ``width`` (applied at the start of each branch), or
            ``None``.
        dropout: Dropout probability after each branch activation, in ``[0, 1)``.
        bias: Whether the linear layers have biases.
        weight_std: ``weight_std`` of every `DenseLinear` (``None``: PyTorch's default init).
        bias_std: ``bias_std`` of every `DenseLinear`.
        parameterization: ``"standard"`` or ``"ntk"`` (see `DenseLinear`).
        input_projection: If ``False``, :math:`h_0 = x` and ``in_features`` must equal
            ``width``.
        device: Device of the parameters.
        dtype: Floating dtype of the parameters.
        generator: Generator the initial weights are drawn from (``None``: global generator).

    Attributes:
        input_layer: The `DenseLinear` :math:`W_{in}`, or ``None``.
        blocks: The residual branches, each with ``norm``, ``act``, ``drop``, ``linear``.
        readout: The `DenseLinear` :math:`W_{out}`, or ``None``.
        branch_scale: The resolved :math:`\\beta`.

    Raises:
        ValueError: invalid sizes, depth, dropout, stds, branch scale or parameterisation, or
            ``input_projection=False`` with ``in_features != width``.
    """

    def __init__(
        self,
        in_features: int,
        width: int,
        depth: int,
        out_features: int | None,
        *,
        branch_scale: float | None = None,
        act_layer: ActivationLike = nn.ReLU,
        norm_layer: NormFactory | None = None,
        dropout: float = 0.0,
        bias: bool = True,
        weight_std: float | None = None,
        bias_std: float = 0.0,
        parameterization: Parameterization = "standard",
        input_projection: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        check_size("in_features", in_features)
        check_size("width", width)
        if out_features is not None:
            check_size("out_features", out_features)
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0:
            raise ValueError(f"depth: expected an int >= 0, got {depth!r}")
        if branch_scale is None:
            branch_scale = 1.0 / math.sqrt(max(depth, 1))
        elif (
            not isinstance(branch_scale, int | float)
            or isinstance(branch_scale, bool)
            or not math.isfinite(branch_scale)
        ):
            raise ValueError(f"branch_scale: expected a finite number, got {branch_scale!r}")
        if not input_projection and in_features != width:
            raise ValueError(
                f"input_projection=False needs in_features == width, "
                f"got in_features={in_features}, width={width}"
            )
        _check_dropout(dropout)
        act = get_activation(act_layer)
        linear = {
            "bias": bias,
            "weight_std": weight_std,
            "bias_std": bias_std,
            "parameterization": parameterization,
            "device": device,
            "dtype": dtype,
            "generator": generator,
        }
        self.in_features = in_features
        self.width = width
        self.depth = depth
        self.out_features = out_features
        self.branch_scale = float(branch_scale)
        self.input_layer = DenseLinear(in_features, width, **linear) if input_projection else None
        self.blocks = nn.ModuleList()
        for _ in range(depth):
            self.blocks.append(
                _ResidualBranch(
                    _make_norm(norm_layer, width, device, dtype),
                    act(),
                    dropout,
                    DenseLinear(width, width, **linear),
                )
            )
        self.readout = None if out_features is None else DenseLinear(width, out_features, **linear)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., in_features) -> (..., out_features)`` (``(..., width)`` without readout)."""
        h = x if self.input_layer is None else self.input_layer(x)
        for block in self.blocks:
            h = torch.add(h, block(h), alpha=self.branch_scale)
        return h if self.readout is None else self.readout(h)

    def forward_hidden(
        self, x: torch.Tensor, *, post_activation: bool = False
    ) -> list[torch.Tensor]:
        """The residual stream at every depth.

        Args:
            x: Input of shape ``(..., in_features)``.
            post_activation: Accepted for a common ``forward_hidden`` protocol with `MLP`;
                it has no effect: the stream :math:`h_\\ell` is both a block's output and
                the next branch's input, so it is returned either way.

        Returns:
            ``depth + 1`` tensors :math:`h_0, \\dots, h_L`, each of shape ``(..., width)``; the
            readout is not applied (``self.readout(result[-1])`` gives the output).
        """
        h = x if self.input_layer is None else self.input_layer(x)
        hidden = [h]
        for block in self.blocks:
            h = torch.add(h, block(h), alpha=self.branch_scale)
            hidden.append(h)
        return hidden


class _HiddenLayer(nn.Module):
    """``DenseLinear -> norm -> activation -> dropout``: ``(..., d_in) -> (..., n)``."""

    def __init__(self, linear: DenseLinear, norm: nn.Module, act: nn.Module, dropout: float):
        super().__init__()
        self.linear = linear
        self.norm = norm
        self.act = act
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def activate(self, z: torch.Tensor) -> torch.Tensor:
        """Norm, activation and dropout of the pre-activation ``z``: ``(..., n) -> (..., n)``."""
        return self.drop(self.act(self.norm(z)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activate(self.linear(x))


class _ResidualBranch(nn.Module):
    """``norm -> activation -> dropout -> DenseLinear``: ``(..., n) -> (..., n)``."""

    def __init__(self, norm: nn.Module, act: nn.Module, dropout: float, linear: DenseLinear):
        super().__init__()
        self.norm = norm
        self.act = act
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.linear = linear

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.linear(self.drop(self.act(self.norm(h))))


def _check_widths(widths: object, name: str = "hidden_features") -> tuple[int, ...]:
    if isinstance(widths, int | str) or not isinstance(widths, Sequence):
        raise ValueError(f"{name}: expected a sequence of ints >= 1, got {widths!r}")
    if not all(isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in widths):
        raise ValueError(f"{name}: expected ints >= 1, got {tuple(widths)!r}")
    return tuple(widths)


def _check_dropout(dropout: object) -> None:
    if not isinstance(dropout, int | float) or isinstance(dropout, bool) or not 0 <= dropout < 1:
        raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")


def _make_norm(
    norm_layer: NormFactory | None,
    width: int,
    device: torch.device | str | None,
    dtype: torch.dtype | None,
) -> nn.Module:
    if norm_layer is None:
        return nn.Identity()
    if isinstance(norm_layer, nn.Module) or not callable(norm_layer):
        raise TypeError(f"norm_layer: expected a factory such as nn.LayerNorm, got {norm_layer!r}")
    norm = norm_layer(width)
    return norm if device is None and dtype is None else norm.to(device=device, dtype=dtype)
