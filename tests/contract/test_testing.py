"""Tests of `perceptrons.testing`: the shipped checks pass good models and catch broken ones."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from perceptrons.checks import check_tensor
from perceptrons.layers import LieInvariant, LieLR
from perceptrons.lie import sl3, so3
from perceptrons.models import MLPModel
from perceptrons.registry import create_model
from perceptrons.testing import (
    CHECKS,
    check_model,
    equivariance_error,
    per_sample_equivariance_error,
    run_check,
)


class Good(nn.Module):
    """A plain module that follows the contract (no config: registry checks are skipped)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.randn(3, 4, generator=generator))
        self.input_shape = ("batch", 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", self.input_shape)
        return x @ self.weight.T


class GlobalRng(Good):
    """Draws its weights from torch's global generator: not deterministic given a seed."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.weight = nn.Parameter(torch.randn(3, 4))


class NoValidation(Good):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float()[..., :4] @ self.weight.T


class UnusedParameter(Good):
    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.unused = nn.Parameter(torch.zeros(2))


class AlwaysFloat32(Good):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).float()


class DropsBatch(Good):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).sum(0)


class DictOutput(Good):
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        y = super().forward(x)
        return {"logits": y, "extra": (y.exp(), y.argmax(-1))}


def x4() -> torch.Tensor:
    return torch.randn(2, 4, generator=torch.Generator().manual_seed(0))


def test_plain_good_module_passes_and_skips_registry_checks() -> None:
    check_model(Good(), x4(), factory=Good)
    assert run_check("config_roundtrip", Good(), x4()) == "the model has no config"
    assert run_check("save_load", Good(), x4()) == "the model has no config"
    assert "no factory" in run_check("determinism", Good(), x4())
    assert run_check("bad_input", nn.Linear(4, 3), x4()) == "the model has no input_shape"
    assert run_check("forward_shapes", Good(), x4()) is None


def test_pytree_outputs_are_checked_leaf_by_leaf() -> None:
    check_model(DictOutput(), x4(), factory=DictOutput)


@pytest.mark.parametrize(
    ("model", "check", "needle"),
    [
        (GlobalRng(), "determinism", "two builds with seed 0 differ in weight"),
        (NoValidation(), "bad_input", "accepted, expected ValueError or TypeError"),
        (UnusedParameter(), "backward", "no gradient for unused"),
        (AlwaysFloat32(), "float64", "has dtype torch.float32, expected torch.float64"),
        (DropsBatch(), "forward_shapes", "expected leading dimension 1"),
    ],
)
def test_broken_models_fail_the_right_check(model: nn.Module, check: str, needle: str) -> None:
    with pytest.raises(AssertionError, match=f"^{check}: .*{needle}"):
        run_check(check, model, x4(), factory=type(model))


def test_check_model_lists_every_failure() -> None:
    class Broken(NoValidation, AlwaysFloat32):
        pass

    with pytest.raises(AssertionError) as info:
        check_model(Broken(), x4(), factory=Broken)
    message = str(info.value)
    assert "2 of 7 checks failed" in message
    assert "\n- bad_input:" in message and "\n- float64:" in message


def test_bad_input_requires_the_expected_shape_in_the_message() -> None:
    class VagueErrors(Good):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if not isinstance(x, torch.Tensor) or x.shape[-1:] != (4,) or x.dim() != 2:
                raise ValueError("bad input")
            if not x.is_floating_point():
                raise TypeError("bad dtype")
            return x @ self.weight.T

    with pytest.raises(AssertionError, match=r"does not contain the expected shape \(batch, 4\)"):
        run_check("bad_input", VagueErrors(), x4())


def test_invalid_inputs_hook() -> None:
    class RejectsNothingExtra(Good):
        def invalid_inputs(self) -> list[tuple[str, object]]:
            return [("NaN input", torch.full((2, 4), float("nan")))]

    with pytest.raises(AssertionError, match="NaN input: accepted"):
        run_check("bad_input", RejectsNothingExtra(), x4())


def test_unexpected_exceptions_become_assertion_errors() -> None:
    class Crashes(Good):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("boom")

    with pytest.raises(AssertionError, match="^forward_shapes: raised RuntimeError: boom"):
        run_check("forward_shapes", Crashes(), x4())


def test_registered_model_checks_use_the_registry() -> None:
    model = create_model("mlp", seed=3, hidden_features=(8,), norm="batchnorm", dropout=0.1)
    check_model(model)
    check_model(model, model.example_input(5))  # a given input is resized to batch 1 and 3


def test_unregistered_subclass_fails_save_load() -> None:
    class Subclass(MLPModel):
        pass

    model = Subclass(create_model("mlp").config)
    with pytest.raises(AssertionError, match="^save_load: raised ValueError: .*not this class"):
        run_check("save_load", model)


def test_checks_do_not_modify_the_model() -> None:
    model = create_model("mlp", seed=0, hidden_features=(8,), norm="batchnorm").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    check_model(model)
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_argument_errors() -> None:
    with pytest.raises(ValueError, match="unknown check 'shapes'; valid checks: forward_shapes"):
        run_check("shapes", Good(), x4())
    with pytest.raises(ValueError, match="unknown check"):
        check_model(Good(), x4(), checks=["backward", "nope"])
    with pytest.raises(ValueError, match="pass example_input"):
        check_model(Good())
    assert CHECKS[0] == "forward_shapes" and len(CHECKS) == 7


# ------------------------------------------------------------------ per_sample_equivariance_error
def lie_features(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def lie_lr(seed: int = 0) -> nn.Module:
    """An exactly equivariant block ``(b, 2, 8, n) -> (b, 3, 8, n)`` on sl(3)."""
    return LieLR(2, 3, algebra="sl3", generator=torch.Generator().manual_seed(seed))


def flat_mlp(in_features: int, out_features: int) -> nn.Module:
    """A plain MLP on the flattened features: neither equivariant nor invariant."""
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(in_features, 32), nn.Tanh(), nn.Linear(32, out_features)
    )
    generator = torch.Generator().manual_seed(0)
    for layer in (model[1], model[3]):
        nn.init.normal_(layer.weight, std=layer.in_features**-0.5, generator=generator)
        nn.init.normal_(layer.bias, std=0.1, generator=generator)
    return model


def test_per_sample_errors_of_exact_models_are_at_rounding_level() -> None:
    x = lie_features(12, 2, 8, 3)
    gen = torch.Generator().manual_seed(1)
    errors = per_sample_equivariance_error(lie_lr(), sl3(), x, generator=gen)
    assert errors.shape == (12,) and errors.dtype == torch.float64
    assert errors.device.type == "cpu"
    assert (errors >= 0).all() and errors.max() < 1e-12, errors
    invariant_model = LieInvariant(2, algebra="sl3")  # (b, 2, 8, 3) -> (b, 2, 3)
    errors = per_sample_equivariance_error(invariant_model, "sl3", x, generator=gen)
    assert errors.shape == (12,) and errors.max() < 1e-12, errors
    # float32: the module's own rounding, ~1e-6 at scale 0.5
    errors32 = per_sample_equivariance_error(lie_lr(), sl3(), x, generator=gen, dtype=torch.float32)
    assert errors32.dtype == torch.float64 and 1e-9 < errors32.max() < 1e-4, errors32


def test_per_sample_errors_of_a_flat_mlp_are_large() -> None:
    x = lie_features(16, 2, 8)
    gen = torch.Generator().manual_seed(2)
    invariant = per_sample_equivariance_error(flat_mlp(16, 1), sl3(), x, generator=gen)
    assert invariant.shape == (16,) and invariant.median() > 1e-2, invariant
    equivariant = nn.Sequential(flat_mlp(16, 8), nn.Unflatten(1, (1, 8)))  # (b, 1, 8): detected
    errors = per_sample_equivariance_error(equivariant, sl3(), x, generator=gen)
    assert errors.median() > 1e-2, errors


def test_per_sample_errors_agree_with_equivariance_error() -> None:
    model, x = lie_lr(), lie_features(6, 2, 8, 3)
    g = sl3().random_group_element((6,), generator=torch.Generator().manual_seed(3))
    for dtype in (torch.float32, torch.float64):
        drawn = per_sample_equivariance_error(
            model, sl3(), x, generator=torch.Generator().manual_seed(3), dtype=dtype
        )
        given = per_sample_equivariance_error(model, sl3(), x, g, dtype=dtype)
        assert torch.equal(drawn, given)  # g drawn from the generator = the same g given
        # one trial of equivariance_error draws g of shape (1, b) from the same stream: the same
        # group elements, and its batch-pooled ratio lies between the per-sample ratios
        pooled = equivariance_error(
            model, sl3(), x, 1, torch.Generator().manual_seed(3), dtype=dtype
        )
        assert float(given.min()) * (1 - 1e-9) <= pooled.max <= float(given.max()) * (1 + 1e-9)


def test_single_sample_equals_equivariance_error() -> None:
    mlp = nn.Sequential(flat_mlp(16, 8), nn.Unflatten(1, (1, 8)))
    x = lie_features(5, 2, 8)
    for i in range(5):
        per_sample = per_sample_equivariance_error(
            mlp, "sl3", x[i : i + 1], generator=torch.Generator().manual_seed(i)
        )
        trial = equivariance_error(mlp, "sl3", x[i : i + 1], 1, torch.Generator().manual_seed(i))
        assert float(per_sample[0]) == pytest.approx(trial.max, rel=1e-12)
        assert not trial.invariant


def test_per_sample_errors_axes_invariant_flag_and_callables() -> None:
    algebra = so3()
    x = lie_features(4, 3, 5)  # K = 3 at axis 1
    rotate = LieLR(  # a callable is not converted: float64 weights for float64 inputs
        5, 2, algebra=algebra, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )

    def model(v: torch.Tensor) -> torch.Tensor:  # (b, 3, 5) -> (b, 2, 3): K moves to axis 2
        return rotate(v.transpose(1, 2))

    errors = per_sample_equivariance_error(
        model, algebra, x, generator=torch.Generator(), feature_axis=1, output_axis=2
    )
    assert errors.shape == (4,) and errors.max() < 1e-12, errors
    # an invariant output that happens to have K entries: detected as equivariant unless told
    norms = LieInvariant(2, algebra=algebra)  # (b, 2, 3) -> (b, 2)

    def invariant(v: torch.Tensor) -> torch.Tensor:  # (b, 2, 3) -> (b, 2, 3), not equivariant
        return norms(v)[:, :, None].expand(-1, 2, 3)

    y = lie_features(4, 2, 3)
    assert per_sample_equivariance_error(invariant, algebra, y, generator=None).max() > 1e-3
    exact = per_sample_equivariance_error(invariant, algebra, y, invariant=True)
    assert exact.max() < 1e-12, exact


def test_per_sample_errors_bad_arguments() -> None:
    model, x = lie_lr(), lie_features(3, 2, 8)
    g = sl3().random_group_element((3,), generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="^x: "):
        per_sample_equivariance_error(model, sl3(), lie_features(3, 2, 7))
    with pytest.raises(ValueError, match="x: has no samples"):
        per_sample_equivariance_error(model, sl3(), x[:0])
    with pytest.raises(ValueError, match="feature_axis: axis 0"):
        per_sample_equivariance_error(model, sl3(), lie_features(8, 3), feature_axis=0)
    with pytest.raises(ValueError, match="feature_axis: 5 out of range"):
        per_sample_equivariance_error(model, sl3(), x, feature_axis=5)
    with pytest.raises(ValueError, match=r"g: .*\(3, 3, 3\)"):
        per_sample_equivariance_error(model, sl3(), x, g[:2])
    with pytest.raises(ValueError, match="either g or generator"):
        per_sample_equivariance_error(model, sl3(), x, g, torch.Generator())
    with pytest.raises(ValueError, match="scale"):
        per_sample_equivariance_error(model, sl3(), x, scale=0.0)
    with pytest.raises(ValueError, match=r"module output: expected one row per sample"):
        per_sample_equivariance_error(lambda v: v.sum(0), sl3(), x, invariant=True)
    with pytest.raises(TypeError, match="dtype"):
        per_sample_equivariance_error(model, sl3(), x, dtype=torch.int64)
    with pytest.raises(TypeError, match="x: "):
        per_sample_equivariance_error(model, sl3(), x.tolist())
