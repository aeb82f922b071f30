"""Reusable ``nn.Module`` building blocks with torch-style keyword arguments.

Layers take factories, not instances (``act_layer=nn.GELU``, ``norm_layer=nn.LayerNorm``), an
explicit ``generator`` for their initial weights, and ``device``/``dtype`` like ``torch.nn``.

* `DenseLinear`: linear layer with explicit init scale, standard or NTK parameterisation.
* `MLP`, `ResidualMLP`: fully connected networks with ``forward_hidden`` for layer-wise
  statistics.
* `ACTIVATIONS`, `get_activation`, `Erf`: activations by name.
* `DEQLayer`: weight-tied deep equilibrium layer h* = phi(W h* + U x + b), Picard or Anderson
  solves with `SolverInfo` (residual, iterations, converged), implicit-function-theorem
  gradients, and `FixedPointError` on divergence.
* `ShapedReLU`, `ShapedActivation`: shaped activations of Li & Nica (2023), which tend to the
  identity as a rate (width or depth) grows; pass ``ShapedReLU.factory(...)`` as ``act_layer``.
* `LieLinear`, `LieReLU`, `LieBracket`, `LieMaxPool`, `LieInvariant`, `LieLR`, `LieLB`:
  adjoint-equivariant Lie Neurons layers (Lin et al. 2023) on ``(batch, channels, K[, points])``
  features of a semisimple Lie algebra (`perceptrons.lie`).
"""

from perceptrons.layers.activations import (
    ACTIVATIONS,
    ActivationLike,
    ActivationName,
    Erf,
    get_activation,
)
from perceptrons.layers.deq import (
    DEQLayer,
    DivergenceMode,
    FixedPointError,
    SolverInfo,
    SolverName,
    anderson_solve,
    picard_solve,
)
from perceptrons.layers.lie import (
    InvariantKind,
    LieBracket,
    LieInvariant,
    LieLB,
    LieLinear,
    LieLR,
    LieMaxPool,
    LieReLU,
)
from perceptrons.layers.linear import DenseLinear, Parameterization
from perceptrons.layers.mlp import MLP, ResidualMLP
from perceptrons.layers.shaped import (
    SMOOTH_ACTIVATIONS,
    ShapedActivation,
    ShapedReLU,
    SmoothName,
)

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "SMOOTH_ACTIVATIONS",
    "ActivationLike",
    "ActivationName",
    "DEQLayer",
    "DenseLinear",
    "DivergenceMode",
    "Erf",
    "FixedPointError",
    "InvariantKind",
    "LieBracket",
    "LieInvariant",
    "LieLB",
    "LieLR",
    "LieLinear",
    "LieMaxPool",
    "LieReLU",
    "Parameterization",
    "ResidualMLP",
    "ShapedActivation",
    "ShapedReLU",
    "SmoothName",
    "SolverInfo",
    "SolverName",
    "anderson_solve",
    "get_activation",
    "picard_solve",
]
