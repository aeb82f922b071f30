"""The shaped-ReLU MLP and the ReLU ResNet with a :math:`d^{-1/2}` branch, at initialisation.

Paper: Li & Nica (2023), *Differential Equation Scaling Limits of Shaped and Unshaped Neural
Networks*, arXiv:2310.12079 (the MLP convention of Li, Nica & Roy 2022, arXiv:2206.02768).

Implemented (``W`` entries i.i.d. :math:`N(0, 1)`, no biases by default, dimension legend:
``b`` batch, ``n_in`` = ``in_features``, ``n`` = ``width``, ``d`` = ``depth``):

* ``"shaped_mlp"`` (`ShapedMLPModel`): :math:`z_1 = W_0 x/\\sqrt{n_{in}}`,
  :math:`z_{\\ell+1} = \\sqrt{c/n}\\,W_\\ell\\,\\phi_s(z_\\ell)` with the shaped ReLU
  :math:`\\phi_s(x) = s_+\\max(x,0) + s_-\\min(x,0)`, :math:`s_\\pm = 1 + c_\\pm/\\sqrt N`,
  :math:`c = 2/(s_+^2+s_-^2)`, and :math:`N` the depth (the paper's rate :math:`d^{-1/2}`) or
  the width (LNR22's proportional regime). Its covariance
  :math:`V_\\ell = \\frac cn\\langle\\phi_s(z^\\alpha_\\ell), \\phi_s(z^\\beta_\\ell)\\rangle`
  follows the neural covariance SDE (:math:`t = \\ell/n`) or the correlation ODE
  (:math:`t = \\ell/d`, :math:`d \\ll n`) of `perceptrons.theory.limits`.
* ``"scaled_resnet"`` (`ScaledResNetModel`): :math:`x_{\\ell+1} = x_\\ell +
  \\frac{\\sigma_r}{\\sqrt d}\\frac{1}{\\sqrt n}W_\\ell\\,\\mathrm{ReLU}(x_\\ell)`, whose covariance
  :math:`V_\\ell = \\langle x^\\alpha_\\ell, x^\\beta_\\ell\\rangle/n` follows the same
  correlation ODE with :math:`C^2 = \\sigma_r^2`, and :math:`V^{\\alpha\\alpha}(t) =
  e^{\\sigma_r^2 t/2}V^{\\alpha\\alpha}(0)`.

Both are the library's `MLP`/`ResidualMLP` with ``weight_std=1`` in standard parameterisation
(weights stored as :math:`W/\\sqrt{\\text{fan-in}}`) and expose ``forward_hidden``.

Reconstruction: only the abstract was available; the networks are our reading of the abstract
and of LNR22. "σ_r" (``branch_gain``) is the library's name; the paper's
exact ResNet normalisation (and whether it rescales the norm growth :math:`e^{\\sigma_r^2t/2}`)
is not known. Deviations: optional trainable biases (initialised to 0) and readout sizes,
which the paper's statements at initialisation do not need; without ``out_features`` the shaped
MLP returns the width-``n`` pre-activation :math:`z_{d+1}` after its last activation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, TypeAlias

import torch
from torch import nn

from perceptrons.config import Config, require
from perceptrons.layers import MLP, ResidualMLP, ShapedReLU
from perceptrons.models.mlp import FullyConnectedModel
from perceptrons.registry import MODELS

__all__ = ["ScaledResNetConfig", "ScaledResNetModel", "ShapedMLPConfig", "ShapedMLPModel"]

PAPER = (
    "Li & Nica 2023, Differential Equation Scaling Limits of Shaped and Unshaped Neural "
    "Networks, arXiv:2310.12079"
)
MODULES = ("perceptrons.layers.shaped", "perceptrons.theory.limits")
"""Library modules these models are built from (shown by ``perceptrons info``)."""
DOCS = "docs/scaling-limits.md"

ShapingRate: TypeAlias = Literal["width", "depth"]


@dataclass(frozen=True, kw_only=True)
class ShapedMLPConfig(Config):
    """Configuration of `ShapedMLPModel`.

    Attributes:
        in_features: Size n_in of the input's last dimension.
        width: Width n of every hidden layer.
        depth: Number d >= 1 of hidden layers z_1..z_d, i.e. of shaped activations.
        out_features: Size of the output z_{d+1} = sqrt(c/n) W_d phi_s(z_d). None keeps the
            width: the output is then the pre-activation z_{d+1} of shape (batch, width) that
            follows the last hidden layer, whose covariance given z_d is V_d (LNR22's
            convention; no separate readout).
        c_plus: Shaping constant c_+ of the positive slope s_+ = 1 + c_+ / sqrt(N).
        c_minus: Shaping constant c_- of the negative slope s_- = 1 + c_- / sqrt(N).
        rate: N of the slopes: "depth" (N = d, Li & Nica 2023) or "width" (N = n, the
            proportional regime of Li, Nica & Roy 2022).
        bias: Whether the linear layers have trainable biases (initialised to 0).
    """

    in_features: int = 64
    width: int = 256  # library default: d << n, the regime of the paper's correlation ODE
    depth: int = 16
    out_features: int | None = None
    # (c+, c-) = (0, -1): C^2 = (c+ - c-)^2 = 1, which matches a unit-gain ReLU ResNet branch
    # (our running example of the first result in the paper's abstract: ResNet = shaped MLP)
    c_plus: float = 0.0
    c_minus: float = -1.0
    rate: ShapingRate = "depth"  # the paper's "rate d^(-1/2)"
    bias: bool = False

    def validate(self) -> None:
        require(self.in_features >= 1, "in_features", "must be >= 1", self.in_features)
        require(self.width >= 1, "width", "must be >= 1", self.width)
        require(self.depth >= 1, "depth", "must be >= 1", self.depth)
        if self.out_features is not None:
            require(self.out_features >= 1, "out_features", "must be >= 1", self.out_features)
        for name in ("c_plus", "c_minus"):
            value = getattr(self, name)
            require(math.isfinite(value), name, "must be finite", value)
        s_plus, s_minus = ShapedReLU.slopes(self.c_plus, self.c_minus, self.rate_value)
        require(
            s_plus != 0 or s_minus != 0,
            "c_minus",
            f"gives s_plus = s_minus = 0, which cannot be normalised (c_plus={self.c_plus})",
            self.c_minus,
        )

    @property
    def rate_value(self) -> int:
        """The number N in the slopes: ``depth`` or ``width``."""
        return self.depth if self.rate == "depth" else self.width


@MODELS.register(
    "shaped_mlp",
    config=ShapedMLPConfig,
    paper=PAPER,
    summary="Shaped-ReLU MLP at rate N^(-1/2), N = depth or width (Li & Nica 2023)",
    modules=MODULES,
    docs=DOCS,
)
class ShapedMLPModel(FullyConnectedModel):
    """Shaped-ReLU MLP ``(b, in_features) -> (b, out_features)`` (``(b, width)`` for ``None``).

    .. math::

        z_1 = \\frac{W_0 x}{\\sqrt{n_{in}}}, \\qquad
        z_{\\ell+1} = \\sqrt{\\frac cn}\\,W_\\ell\\,\\phi_s(z_\\ell) \\quad
        (\\ell = 1, \\dots, d), \\qquad W_\\ell \\text{ i.i.d. } N(0, 1),

    and the output is :math:`z_{d+1}` (``net.readout`` holds :math:`W_d`, of ``out_features``
    rows, or ``width`` rows when ``out_features`` is ``None``). Built as
    `perceptrons.layers.MLP` with ``act_layer`` = `ShapedReLU` (normalised, so each activation
    is :math:`\\sqrt c\\,\\phi_s`) and ``weight_std=1``.

    ``forward_hidden(x)`` returns :math:`z_1, \\dots, z_d, z_{d+1}`; with
    ``post_activation=True`` it returns :math:`h_\\ell = \\sqrt c\\,\\phi_s(z_\\ell)` for
    :math:`\\ell \\le d`, then :math:`z_{d+1}`. LNR22's covariance is
    :math:`V_\\ell = h_\\ell h_\\ell^\\top / n` (:math:`\\ell = 1..d`), exactly; the Gram
    :math:`z_{d+1} z_{d+1}^\\top / n` of the output has conditional mean :math:`V_d`.

    Args:
        config: The architecture.
        generator: Generator the initial weights are drawn from (``None``: global generator).

    Attributes:
        activation: The normalised `ShapedReLU` :math:`\\sqrt c\\,\\phi_s` (no parameters).
    """

    config: ShapedMLPConfig

    def __init__(
        self, config: ShapedMLPConfig, *, generator: torch.Generator | None = None
    ) -> None:
        super().__init__(config.in_features)
        self.config = config
        factory = ShapedReLU.factory(config.c_plus, config.c_minus, config.rate_value)
        self.activation = factory()
        self.net = MLP(
            config.in_features,
            (config.width,) * config.depth,
            config.width if config.out_features is None else config.out_features,
            act_layer=factory,
            bias=config.bias,
            weight_std=1.0,
            parameterization="standard",
            generator=generator,
        )


# ------------------------------------------------------------------------------ ResNet
@dataclass(frozen=True, kw_only=True)
class ScaledResNetConfig(Config):
    """Configuration of `ScaledResNetModel`.

    Attributes:
        width: Width n of the residual stream x_l.
        depth: Number d >= 1 of residual blocks.
        branch_gain: sigma_r >= 0; each branch is scaled by sigma_r / sqrt(d).
        in_features: Size of the input's last dimension; None means width. When it equals
            width the input is the stream (x_0 = x), otherwise x_0 = W_in x / sqrt(n_in).
        out_features: Size of a readout W_out x_d / sqrt(n); None returns x_d (batch, width).
        bias: Whether the linear layers have trainable biases (initialised to 0).
    """

    width: int = 256  # library default for quick runs
    depth: int = 16
    branch_gain: float = 1.0  # sigma_r = 1: C^2 = 1 in the correlation ODE
    in_features: int | None = None
    out_features: int | None = None
    bias: bool = False

    def validate(self) -> None:
        require(self.width >= 1, "width", "must be >= 1", self.width)
        require(self.depth >= 1, "depth", "must be >= 1", self.depth)
        require(
            math.isfinite(self.branch_gain) and self.branch_gain >= 0,
            "branch_gain",
            "must be finite and >= 0",
            self.branch_gain,
        )
        if self.in_features is not None:
            require(self.in_features >= 1, "in_features", "must be >= 1", self.in_features)
        if self.out_features is not None:
            require(self.out_features >= 1, "out_features", "must be >= 1", self.out_features)

    @property
    def input_size(self) -> int:
        """``in_features``, or ``width`` when it is None."""
        return self.width if self.in_features is None else self.in_features


@MODELS.register(
    "scaled_resnet",
    config=ScaledResNetConfig,
    paper=PAPER,
    summary="ReLU ResNet with a depth^(-1/2) branch (Li & Nica 2023)",
    modules=MODULES,
    docs=DOCS,
)
class ScaledResNetModel(FullyConnectedModel):
    """ReLU ResNet ``(b, in_features) -> (b, out_features)``, or ``(b, width)`` = :math:`x_d`.

    .. math::

        x_{\\ell+1} = x_\\ell + \\frac{\\sigma_r}{\\sqrt d}\\frac{1}{\\sqrt n}\\,
        W_\\ell\\,\\mathrm{ReLU}(x_\\ell), \\qquad W_\\ell \\text{ i.i.d. } N(0, 1),

    built as `perceptrons.layers.ResidualMLP` with ``branch_scale`` :math:`= \\sigma_r/\\sqrt d`,
    ``weight_std=1`` and no norm. ``forward_hidden(x)`` returns :math:`x_0, \\dots, x_d`, each
    ``(b, width)`` (the readout is not applied).

    Args:
        config: The architecture.
        generator: Generator the initial weights are drawn from (``None``: global generator).
    """

    config: ScaledResNetConfig

    def __init__(
        self, config: ScaledResNetConfig, *, generator: torch.Generator | None = None
    ) -> None:
        super().__init__(config.input_size)
        self.config = config
        self.net = ResidualMLP(
            config.input_size,
            config.width,
            config.depth,
            config.out_features,
            branch_scale=config.branch_gain / math.sqrt(config.depth),
            act_layer=nn.ReLU,
            bias=config.bias,
            weight_std=1.0,
            parameterization="standard",
            input_projection=config.input_size != config.width,
            generator=generator,
        )
