"""Assembled models, registered by name in `perceptrons.registry.MODELS`.

Importing this package registers every model (the registry imports it on first lookup), so
``create_model("mlp", seed=0)`` works without importing a model module by hand.

The model protocol
------------------
Every registered model is an ``nn.Module`` class, registered with
``@MODELS.register(name, config=<Name>Config)``, that provides:

* ``__init__(self, config, *, generator=None)``: builds the model from its frozen `Config`,
  drawing every random initial value from ``generator`` (``None``: torch's global generator);
  the same generator seed gives bitwise-identical weights;
* ``config``: the config it was built from (saved by `save_model`, rebuilt by `load_model`);
* ``input_shape``: the expected input shape for error messages, e.g. ``("batch", 64)``
  (strings are free dimensions, see `perceptrons.checks.format_shape`);
* ``example_input(batch_size, *, generator=None)``: a valid input (a tensor or a pytree of
  tensors) whose leading dimension is ``batch_size``, with the dtype and device of the model;
* ``forward(x)``: validates ``x`` with `perceptrons.checks.check_tensor`, so a wrong rank,
  feature size or dtype raises ``ValueError``/``TypeError`` whose message contains
  ``format_shape(input_shape)``; outputs have leading dimension ``batch``;
* optionally ``invalid_inputs()``: extra ``(description, input)`` pairs that must be rejected
  the same way (e.g. NaN where the model requires finite values).

`perceptrons.testing.check_model` checks all of this (plus backward, determinism, config
round-trip, save/load and float64), and ``tests/contract`` runs it on every registered name.

Models here: ``"mlp"`` (`MLPModel`) and ``"residual_mlp"`` (`ResidualMLPModel`), library
baselines; ``"shaped_mlp"`` (`ShapedMLPModel`) and ``"scaled_resnet"`` (`ScaledResNetModel`),
the networks of Li & Nica 2023 (arXiv:2310.12079); ``"deq"`` (`DEQModel`), the deep
equilibrium MLP of Gao et al. 2023 (arXiv:2310.10767); ``"lie_neurons"`` (`LieNeurons`),
``"lie_neurons_equivariant"`` (`LieNeuronsEquivariant`) and their baseline ``"lie_mlp"``
(`LieMLP`), the adjoint-invariant/-equivariant networks of Lin, Zhu & Ghaffari 2023
(arXiv:2310.04521); ``"nar_transformer"`` (`NARTransformer`), the non-autoregressive CMLM
encoder-decoder with AMLP (or any other) decoder attention of Jiang et al. 2023
(arXiv:2310.09512), with `CMLMStep` and `mask_predict`; ``"bivit"`` (`BiViT`), the binary
vision transformer of He et al. 2023 (arXiv:2211.07091), with `BiViTStep`, `CLBStage` and
`BinarizationSchedule`.

The CTR models (``"lr"``, ``"fm"``, ``"dnn"``, ``"deepfm"``, ``"dcnv2"``, ``"autoint"``,
``"emofm"``) live in their domain package, `perceptrons.ctr.models`, and register into the
same registry (`perceptrons.registry.MODELS` discovers both).
"""

from perceptrons.models.amlp import (
    CMLMStep,
    NARInput,
    NARTransformer,
    NARTransformerConfig,
    mask_predict,
)
from perceptrons.models.bivit import (
    BinarizationSchedule,
    BiViT,
    BiViTConfig,
    BiViTStep,
    CLBStage,
    clb_stages,
    one_shot_stages,
)
from perceptrons.models.deq import DEQConfig, DEQModel
from perceptrons.models.io import load_model, save_model
from perceptrons.models.lie_neurons import (
    LieMLP,
    LieMLPConfig,
    LieNeurons,
    LieNeuronsConfig,
    LieNeuronsEquivariant,
    LieNeuronsEquivariantConfig,
)
from perceptrons.models.mlp import MLPConfig, MLPModel, ResidualMLPConfig, ResidualMLPModel
from perceptrons.models.scaling import (
    ScaledResNetConfig,
    ScaledResNetModel,
    ShapedMLPConfig,
    ShapedMLPModel,
)

__all__ = [
    "BiViT",
    "BiViTConfig",
    "BiViTStep",
    "BinarizationSchedule",
    "CLBStage",
    "CMLMStep",
    "DEQConfig",
    "DEQModel",
    "LieMLP",
    "LieMLPConfig",
    "LieNeurons",
    "LieNeuronsConfig",
    "LieNeuronsEquivariant",
    "LieNeuronsEquivariantConfig",
    "MLPConfig",
    "MLPModel",
    "NARInput",
    "NARTransformer",
    "NARTransformerConfig",
    "ResidualMLPConfig",
    "ResidualMLPModel",
    "ScaledResNetConfig",
    "ScaledResNetModel",
    "ShapedMLPConfig",
    "ShapedMLPModel",
    "clb_stages",
    "load_model",
    "mask_predict",
    "one_shot_stages",
    "save_model",
]
