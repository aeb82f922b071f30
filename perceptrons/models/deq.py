"""The weight-tied deep equilibrium MLP with a linear readout, at finite width.

Paper: Gao, Huo, Liu & Gao (2023), *Wide Neural Networks as Gaussian Processes: Lessons from
Deep Equilibrium Models*, NeurIPS 2023, arXiv:2310.10767.

Implemented (``"deq"``, `DEQModel`; dimension legend ``b`` batch, ``d`` = ``in_features``,
``n`` = ``width``): the fixed point :math:`h^* = \\phi(W h^* + Ux + b)` of `DEQLayer`
(:math:`W_{ij} \\sim N(0, \\sigma_w^2/n)`, :math:`U_{ij} \\sim N(0, \\sigma_u^2/d)`,
:math:`b_i \\sim N(0, \\sigma_b^2)`), found by Picard iteration from 0 (or Anderson), with
implicit-function-theorem gradients, followed by the readout
:math:`f(x) = \\sigma_v v^\\top h^*/\\sqrt n` (:math:`v \\sim N(0, 1)`), stored as a
`DenseLinear` with ``weight_std = output_std``. As :math:`n \\to \\infty` the outputs at
initialisation tend to a GP with kernel :math:`\\sigma_v^2 V_\\phi(K^*)` (`perceptrons.theory`).

Reconstruction: only the abstract and the authors' notebooks were available; the model follows
those notebooks (``github.com/deqg/deq``). Deviations: a trainable readout bias (initialised
to 0) and a trainable injection bias :math:`b` (initialised to 0 when ``bias_std == 0``, the
authors' bias-free model); the default ``weight_std = 0.4`` is the library's, below the sufficient
global contraction bound :math:`\\sigma_w < 0.5` for ReLU, whereas the authors use 0.6 (which
converges in practice: the local Picard rate is :math:`\\sigma_w/\\sqrt 2` for ReLU).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from perceptrons.checks import check_tensor
from perceptrons.config import Config, require
from perceptrons.layers import ActivationName, DenseLinear
from perceptrons.layers.deq import DEQLayer, DivergenceMode, SolverInfo, SolverName
from perceptrons.registry import MODELS

PAPER = (
    "Gao, Huo, Liu & Gao 2023, Wide Neural Networks as Gaussian Processes: Lessons "
    "from Deep Equilibrium Models, arXiv:2310.10767"
)
MODULES = ("perceptrons.layers.deq", "perceptrons.theory.kernels.deq")
"""Library modules these models are built from (shown by ``perceptrons info``)."""
DOCS = "docs/kernels.md"

__all__ = ["DEQConfig", "DEQModel"]


@dataclass(frozen=True, kw_only=True)
class DEQConfig(Config):
    """Configuration of `DEQModel`.

    Attributes:
        in_features: Size d of the input's last dimension.
        width: Width n of the equilibrium state h*.
        out_features: Size of the readout sigma_v v^T h* / sqrt(n).
        activation: Name of the activation phi (see perceptrons.layers.ACTIVATIONS).
        weight_std: sigma_w of the tied weight W_ij ~ N(0, sigma_w^2 / n). The fixed point is
            guaranteed to exist when sigma_w < 1 / (2 Lip(phi)) (0.5 for ReLU); Picard
            iteration converges in practice while sigma_w sqrt(E[phi'^2]) < 1 (sqrt(2) for ReLU).
        input_std: sigma_u of the input injection U_ij ~ N(0, sigma_u^2 / d).
        bias_std: sigma_b of the injection bias b_i ~ N(0, sigma_b^2) (0: initialised to 0).
        output_std: sigma_v of the readout v_i ~ N(0, sigma_v^2 / n).
        solver: Fixed-point solver for the forward and adjoint solves: "picard" or "anderson".
        tol: Relative residual |f(z) - z| / |f(z)| (per sample, max over the batch) at which a
            solve stops, in (0, 1).
        max_iter: Maximum evaluations of the map per solve.
        on_divergence: "raise" (FixedPointError naming the residual) or "flag" (return the
            best iterate and set last_info.converged = False) when a solve misses tol.
        anderson_memory: Number of past iterates the Anderson solver combines.
    """

    in_features: int = 10  # d = 10 in all of the authors' experiments
    width: int = 128
    out_features: int = 1
    activation: ActivationName = "relu"
    weight_std: float = 0.4  # library default, below the bound 0.5 (the authors use 0.6)
    input_std: float = 1.0  # sigma_u = 1 in the authors' experiments
    bias_std: float = 0.0  # the authors' model has no bias
    output_std: float = 1.0  # sigma_v = 1 in the authors' experiments
    solver: SolverName = "picard"  # the authors' solver
    tol: float = 1e-6
    max_iter: int = 200
    on_divergence: DivergenceMode = "raise"
    anderson_memory: int = 5

    def validate(self) -> None:
        for name in ("in_features", "width", "out_features", "max_iter", "anderson_memory"):
            value = getattr(self, name)
            require(value >= 1, name, "must be >= 1", value)
        for name in ("weight_std", "input_std", "bias_std", "output_std"):
            value = getattr(self, name)
            require(0 <= value < math.inf, name, "must be finite and >= 0", value)
        require(0 < self.tol < 1, "tol", "must be in (0, 1)", self.tol)


@MODELS.register(
    "deq",
    config=DEQConfig,
    summary="Deep equilibrium MLP (Gao et al. 2023)",
    paper=PAPER,
    modules=MODULES,
    docs=DOCS,
)
class DEQModel(nn.Module):
    """DEQ MLP ``(b, in_features) -> (b, out_features)``: readout of :math:`h^*`.

    Args:
        config: The architecture and solver settings.
        generator: Generator the initial weights are drawn from (``None``: global generator);
            the DEQ layer's W, U, b are drawn before the readout.

    Attributes:
        deq: The `DEQLayer` computing :math:`h^*` ``(b, width)``.
        readout: The `DenseLinear` readout ``(b, width) -> (b, out_features)``.
    """

    config: DEQConfig

    def __init__(self, config: DEQConfig, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        self.input_shape: tuple[str | int, ...] = ("batch", config.in_features)
        self.deq = DEQLayer(
            config.in_features,
            config.width,
            weight_std=config.weight_std,
            input_std=config.input_std,
            bias_std=config.bias_std,
            act_layer=config.activation,
            solver=config.solver,
            tol=config.tol,
            max_iter=config.max_iter,
            on_divergence=config.on_divergence,
            anderson_memory=config.anderson_memory,
            generator=generator,
        )
        self.readout = DenseLinear(
            config.width, config.out_features, weight_std=config.output_std, generator=generator
        )

    @property
    def last_info(self) -> SolverInfo | None:
        """`SolverInfo` of the latest forward solve (``None`` before the first forward)."""
        return self.deq.last_info

    def example_input(
        self, batch_size: int, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Standard normal input ``(batch_size, in_features)`` in the model's dtype/device."""
        param = next(self.parameters())
        return torch.randn(
            batch_size,
            self.config.in_features,
            generator=generator,
            dtype=param.dtype,
            device=param.device,
        )

    def invalid_inputs(self) -> list[tuple[str, Any]]:
        """Inputs with a NaN and with an infinite entry (no equilibrium exists for them)."""
        x = self.example_input(2, generator=torch.Generator().manual_seed(0))
        nan, inf = x.clone(), x.clone()
        nan[0, 0], inf[1, -1] = float("nan"), float("inf")
        return [("a NaN entry", nan), ("an infinite entry", inf)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(b, in_features) -> (b, out_features)``; sets ``last_info``.

        Raises:
            TypeError: ``x`` is not a floating tensor.
            ValueError: ``x`` does not have shape ``(batch, in_features)`` or has NaN or
                infinite values.
            FixedPointError: the solve missed ``tol`` and ``on_divergence == "raise"``.
        """
        check_tensor(x, "x", self.input_shape, finite=True)
        return self.readout(self.deq(x))

    def equilibrium(self, x: torch.Tensor) -> torch.Tensor:
        """The equilibrium state :math:`h^*`: ``(b, in_features) -> (b, width)``.

        Raises:
            TypeError: ``x`` is not a floating tensor.
            ValueError: ``x`` does not have shape ``(batch, in_features)`` or has NaN or
                infinite values.
            FixedPointError: the solve missed ``tol`` and ``on_divergence == "raise"``.
        """
        check_tensor(x, "x", self.input_shape, finite=True)
        return self.deq(x)

    def forward_iterates(self, x: torch.Tensor, num_iter: int) -> torch.Tensor:
        """Picard iterates :math:`h^1..h^L` from :math:`h^0 = 0`: ``(L, b, width)``.

        Raises:
            TypeError: ``x`` is not a floating tensor.
            ValueError: ``x`` does not have shape ``(batch, in_features)``, or ``num_iter < 1``.
        """
        check_tensor(x, "x", self.input_shape)
        return self.deq.forward_iterates(x, num_iter)
