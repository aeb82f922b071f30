"""Tests of `perceptrons.registry`: duplicates, unknown names, presets, create_model."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

import perceptrons.registry as registry
from perceptrons.config import Config, ConfigError, require
from perceptrons.registry import (
    MODELS,
    Registry,
    create_model,
    list_models,
    model_name_of,
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ToyConfig(Config):
    """Configuration of `Toy`.

    Attributes:
        width: Output size.
        scale: Init scale.
    """

    width: int = 3
    scale: float = 1.0

    def validate(self) -> None:
        require(self.width >= 1, "width", "must be >= 1", self.width)


class Toy(nn.Module):
    """A toy model for registry tests."""

    def __init__(self, config: ToyConfig, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        self.weight = nn.Parameter(config.scale * torch.randn(config.width, generator=generator))


@pytest.fixture
def toy_models(monkeypatch: pytest.MonkeyPatch) -> Registry:
    """A fresh model registry (no discovery) installed as `perceptrons.registry.MODELS`."""
    fresh: Registry = Registry("model")
    fresh.add("toy", Toy, config=ToyConfig)
    fresh.add("toy_wide", Toy, config=ToyConfig, defaults={"width": 8}, summary="Wide toy")
    monkeypatch.setattr(registry, "MODELS", fresh)
    return fresh


def test_duplicate_name_raises() -> None:
    reg: Registry = Registry("thing")
    reg.add("a", object(), config=ToyConfig)
    with pytest.raises(ValueError, match="thing 'a' is already registered"):
        reg.add("a", object(), config=ToyConfig)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", config=ToyConfig)(Toy)


def test_config_must_be_a_config_subclass() -> None:
    reg: Registry = Registry("thing")
    with pytest.raises(ValueError, match="config must be a Config subclass"):
        reg.add("a", object(), config=dict)  # type: ignore[arg-type]


def test_invalid_preset_is_rejected_at_registration() -> None:
    reg: Registry = Registry("thing")
    with pytest.raises(ConfigError, match="^width: must be >= 1"):
        reg.add("bad", Toy, config=ToyConfig, defaults={"width": 0})
    assert "bad" not in reg


def test_unknown_name_suggests_close_names() -> None:
    reg: Registry = Registry("thing")
    reg.add("residual_mlp", Toy, config=ToyConfig)
    reg.add("mlp", Toy, config=ToyConfig)
    with pytest.raises(KeyError, match=r"unknown thing 'mpl'; did you mean 'mlp'\?") as info:
        reg.get("mpl")
    assert "valid: mlp, residual_mlp" in str(info.value)
    with pytest.raises(KeyError) as info:
        reg.get("zzzzzz")
    assert "did you mean" not in str(info.value)


def test_register_decorator_returns_object_and_summary_defaults_to_docstring() -> None:
    reg: Registry = Registry("thing")
    assert reg.register("toy", config=ToyConfig)(Toy) is Toy
    entry = reg.get("toy")
    assert entry.obj is Toy and entry.config is ToyConfig
    assert entry.summary == "A toy model for registry tests."
    assert list(reg) == ["toy"] and len(reg) == 1 and "toy" in reg


def test_names_and_entries_are_sorted() -> None:
    reg: Registry = Registry("thing")
    for name in ("b", "c", "a"):
        reg.add(name, Toy, config=ToyConfig)
    assert reg.names() == ["a", "b", "c"]
    assert [e.name for e in reg.entries()] == ["a", "b", "c"]


def test_failed_discovery_is_retried_not_silently_empty() -> None:
    reg: Registry = Registry("thing", discover="perceptrons._no_such_module_")
    with pytest.raises(ModuleNotFoundError):
        reg.names()
    with pytest.raises(ModuleNotFoundError):  # the second lookup fails the same way
        reg.names()


def test_discovery_registers_library_models() -> None:
    assert {"mlp", "residual_mlp"} <= set(list_models())
    assert MODELS.get("mlp").config.__name__ == "MLPConfig"


def test_presets_defaults(toy_models: Registry) -> None:
    assert toy_models.get("toy_wide").make_config() == ToyConfig(width=8)
    assert toy_models.get("toy_wide").make_config(width=2) == ToyConfig(width=2)
    assert create_model("toy_wide").weight.shape == (8,)
    assert create_model("toy").weight.shape == (3,)
    assert toy_models.get("toy_wide").summary == "Wide toy"


def test_create_model_overrides_and_seed(toy_models: Registry) -> None:
    model = create_model("toy_wide", seed=3, scale=2.0)
    assert model.config == ToyConfig(width=8, scale=2.0)
    again = create_model("toy_wide", seed=3, scale=2.0)
    assert torch.equal(model.weight, again.weight)
    other = create_model("toy_wide", seed=4, scale=2.0)
    assert not torch.equal(model.weight, other.weight)
    generator = torch.Generator().manual_seed(3)
    assert torch.equal(
        create_model("toy_wide", generator=generator, scale=2.0).weight, model.weight
    )


def test_create_model_from_config(toy_models: Registry) -> None:
    config = ToyConfig(width=5)
    model = create_model(config, seed=0)
    assert isinstance(model, Toy) and model.config is config
    assert create_model(config, width=6).config == ToyConfig(width=6)
    assert model_name_of(config) == "toy"  # presets share the class; first name wins


def test_create_model_unknown_override_field(toy_models: Registry) -> None:
    with pytest.raises(ConfigError, match=r"^widht: unknown field of ToyConfig; valid fields"):
        create_model("toy", widht=3)
    with pytest.raises(ConfigError, match=r"^widht: unknown field of ToyConfig"):
        create_model(ToyConfig(), widht=3)


def test_create_model_invalid_override_value(toy_models: Registry) -> None:
    with pytest.raises(ConfigError, match=r"^width: must be >= 1, got 0"):
        create_model("toy", width=0)


def test_create_model_unknown_name(toy_models: Registry) -> None:
    with pytest.raises(KeyError, match=r"unknown model 'tyo'; did you mean 'toy'"):
        create_model("tyo")


def test_model_name_of_unregistered_config() -> None:
    with pytest.raises(KeyError, match="no registered model is configured by ToyConfig"):
        model_name_of(ToyConfig())


# ---------------------------------------------------------------------- paper metadata
LIBRARY_BASELINES = {"mlp", "residual_mlp"}  # models of the library itself, of no paper
ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def _paper_entries():
    models = [e for e in registry.MODELS.entries() if e.name not in LIBRARY_BASELINES]
    return [("model", e) for e in models] + [("study", e) for e in registry.STUDIES.entries()]


@pytest.mark.parametrize(("kind", "entry"), _paper_entries(), ids=lambda v: getattr(v, "name", v))
def test_every_paper_model_and_study_names_its_paper_modules_and_docs(kind, entry) -> None:
    import importlib

    assert entry.paper.strip(), f"{kind} {entry.name}: no paper"
    if entry.name != "mlp-digits":  # the template study has no paper by design
        assert "arXiv:" in entry.paper, f"{kind} {entry.name}: paper without an arXiv id"
    assert entry.modules, f"{kind} {entry.name}: no implementing modules"
    for module in entry.modules:
        importlib.import_module(module)  # each named module exists
    assert entry.docs and (ROOT / entry.docs).is_file(), f"{kind} {entry.name}: {entry.docs!r}"
    if kind == "study":
        assert entry.obj.modules == entry.modules and entry.obj.docs == entry.docs


def test_library_baselines_are_still_registered() -> None:
    assert LIBRARY_BASELINES <= set(registry.MODELS.names())
