"""DEQModel ("deq"): registry, config validation, solver info, readout scale, training."""

from __future__ import annotations

import math

import pytest
import torch

from perceptrons.config import ConfigError
from perceptrons.data.loader import TensorLoader
from perceptrons.layers import FixedPointError
from perceptrons.models import DEQConfig, DEQModel
from perceptrons.registry import create_model
from perceptrons.train import FitConfig, OptimizerConfig, fit
from perceptrons.train.steps import regression_step


def test_registered_and_built_from_config() -> None:
    model = create_model("deq", seed=0)
    assert isinstance(model, DEQModel) and model.config == DEQConfig()
    x = model.example_input(3, generator=torch.Generator().manual_seed(0))
    assert model(x).shape == (3, 1)
    assert model.last_info.converged and model.last_info.residual <= model.config.tol
    assert model.equilibrium(x).shape == (3, 128)
    assert model.forward_iterates(x, 5).shape == (5, 3, 128)


def test_default_weight_std_is_below_the_contraction_bound() -> None:
    # 1 / (2 Lip(ReLU)): our sufficient contraction bound, as ||W||_op -> 2 sigma_w
    assert DEQConfig().weight_std < 0.5


def test_output_variance_at_initialisation_matches_relu_closed_form() -> None:
    """Var f(x) = sigma_v^2 V_phi(K*)(x, x) = K*/2 with K* = (|x|^2/d) / (1 - sigma_w^2/2)."""
    config = DEQConfig(width=256, weight_std=0.6)
    x = torch.ones(1, 10)
    outputs = torch.cat(
        [DEQModel(config, generator=torch.Generator().manual_seed(s))(x) for s in range(200)]
    )
    expected = 0.5 / (1 - 0.6**2 / 2)  # 0.609756, our closed form of the ReLU K*
    # the sample variance of 200 Gaussians has relative standard error sqrt(2/199) ~ 0.1
    assert outputs.var().item() == pytest.approx(expected, rel=0.4)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"width": 0}, "width"),
        ({"in_features": 0}, "in_features"),
        ({"out_features": 0}, "out_features"),
        ({"weight_std": -0.1}, "weight_std"),
        ({"input_std": math.inf}, "input_std"),
        ({"output_std": -1.0}, "output_std"),
        ({"bias_std": math.nan}, "bias_std"),
        ({"tol": 0.0}, "tol"),
        ({"max_iter": 0}, "max_iter"),
        ({"anderson_memory": 0}, "anderson_memory"),
        ({"solver": "broyden"}, "solver"),
        ({"on_divergence": "ignore"}, "on_divergence"),
        ({"activation": "nope"}, "activation"),
    ],
)
def test_invalid_config_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=f"^{field}"):
        DEQConfig(**kwargs)


def test_divergence_raises_or_is_flagged() -> None:
    x = torch.randn(4, 10, generator=torch.Generator().manual_seed(0))
    config = DEQConfig(weight_std=3.0, max_iter=40)
    with pytest.raises(FixedPointError, match="residual"):
        create_model(config, seed=0)(x)
    model = create_model(config.replace(on_divergence="flag"), seed=0)
    with torch.no_grad():
        model(x)
    assert not model.last_info.converged


@pytest.mark.parametrize("solver", ["picard", "anderson"])
def test_trainable_with_fit(solver: str) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    y = torch.sin(x @ torch.randn(4, 1, generator=g))
    config = DEQConfig(in_features=4, width=32, solver=solver, weight_std=0.4, tol=1e-5)
    model = DEQModel(config, generator=torch.Generator().manual_seed(0))
    fit_config = FitConfig(
        max_steps=60, log_every=10, progress=False, optimizer=OptimizerConfig(lr=1e-2)
    )
    result = fit(model, regression_step, TensorLoader((x, y), 16), fit_config)
    losses = [r["loss"] for r in result.history if r["split"] == "train"]
    assert losses[-1] < 0.5 * losses[0]
    assert model.last_info.converged and model.deq.last_backward_info.converged
