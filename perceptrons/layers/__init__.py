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
* `AttentiveMLP`: AMLP attention of Jiang et al. (2023), PQuery and Cov variants, linear in
  the sequence lengths and non-causal; baselines `SoftmaxAttention` (SDPA),
  `NaiveSoftmaxAttention` and `LinearAttention` with the same interface; `make_attention` by
  name (`ATTENTION_KINDS`).
* `BinaryLinear`, `BinaryAttention`, `BinaryMLP`, `softmax_aware_binarize` and the ablation
  binarisers (`threshold_binarize`, `presoftmax_binarize`, `bernoulli_binarize`,
  `argmax_binarize`), `binary_sign` (straight-through sign): the binary layers of BiViT (He et
  al. 2023); bit-packed inference is `perceptrons.binary`.
* `largest_saved_tensor_numel`, `saved_tensor_bytes`: what a forward pass saves for backward,
  a deterministic measure of activation memory.
"""

from perceptrons.layers.activations import (
    ACTIVATIONS,
    ActivationLike,
    ActivationName,
    Erf,
    get_activation,
)
from perceptrons.layers.attention import (
    ATTENTION_KINDS,
    AMLPVariant,
    AttentionKind,
    AttentiveMLP,
    LinearAttention,
    NaiveSoftmaxAttention,
    SoftmaxAttention,
    make_attention,
)
from perceptrons.layers.binary import (
    BinaryAttention,
    BinaryLinear,
    BinaryMLP,
    argmax_binarize,
    bernoulli_binarize,
    binary_sign,
    presoftmax_binarize,
    softmax_aware_binarize,
    threshold_binarize,
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
from perceptrons.layers.memory import largest_saved_tensor_numel, saved_tensor_bytes
from perceptrons.layers.mlp import MLP, ResidualMLP
from perceptrons.layers.shaped import (
    SMOOTH_ACTIVATIONS,
    ShapedActivation,
    ShapedReLU,
    SmoothName,
)

__all__ = [
    "ACTIVATIONS",
    "BinaryAttention",
    "BinaryLinear",
    "BinaryMLP",
    "argmax_binarize",
    "bernoulli_binarize",
    "binary_sign",
    "presoftmax_binarize",
    "softmax_aware_binarize",
    "threshold_binarize",
    "ATTENTION_KINDS",
    "MLP",
    "SMOOTH_ACTIVATIONS",
    "AMLPVariant",
    "ActivationLike",
    "ActivationName",
    "AttentionKind",
    "AttentiveMLP",
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
    "LinearAttention",
    "NaiveSoftmaxAttention",
    "Parameterization",
    "ResidualMLP",
    "ShapedActivation",
    "ShapedReLU",
    "SmoothName",
    "SoftmaxAttention",
    "SolverInfo",
    "SolverName",
    "anderson_solve",
    "get_activation",
    "largest_saved_tensor_numel",
    "make_attention",
    "picard_solve",
    "saved_tensor_bytes",
]
