"""Tests of `perceptrons.testing`: the shipped checks pass good models and catch broken ones."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from perceptrons.checks import check_tensor
from perceptrons.models import MLPModel
from perceptrons.registry import create_model
from perceptrons.testing import CHECKS, check_model, run_check


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
