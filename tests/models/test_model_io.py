"""Tests of `save_model` / `load_model`: round-trips and the error for each broken file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from perceptrons.io import load_tensors, save_tensors
from perceptrons.models import MLPModel, load_model, save_model
from perceptrons.registry import create_model


def outputs_equal(a: torch.nn.Module, b: torch.nn.Module, x: torch.Tensor) -> bool:
    with torch.no_grad():
        return torch.equal(a.eval()(x), b.eval()(x))


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("mlp", {}),
        ("mlp", {"norm": "batchnorm", "hidden_features": (8, 4), "in_features": 5}),
        ("residual_mlp", {"parameterization": "ntk", "bias_std": 0.3, "out_features": None}),
    ],
)
def test_round_trip_is_bitwise(tmp_path: Path, name: str, overrides: dict) -> None:
    model = create_model(name, seed=0, **overrides)
    if overrides.get("norm") == "batchnorm":  # non-trivial running statistics
        model.train()(model.example_input(16, generator=torch.Generator().manual_seed(1)))
    save_model(model, tmp_path / "saved")
    loaded = load_model(tmp_path / "saved")
    assert type(loaded) is type(model) and loaded.config == model.config
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert outputs_equal(model, loaded, model.example_input(3))


def test_files_written(tmp_path: Path) -> None:
    model = create_model("mlp", seed=0, hidden_features=(4,))
    assert save_model(model, tmp_path) == tmp_path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.safetensors"]
    data = json.loads((tmp_path / "model.json").read_text())
    assert data == {
        "format_version": 1,
        "model": "mlp",
        "config": {"type": "MLPConfig", "params": model.config.to_dict()},
    }
    assert set(load_tensors(tmp_path / "model.safetensors")) == set(model.state_dict())


def test_float64_is_preserved(tmp_path: Path) -> None:
    model = create_model("residual_mlp", seed=0, depth=1).double()
    save_model(model, tmp_path)
    loaded = load_model(tmp_path)
    assert all(p.dtype == torch.float64 for p in loaded.parameters())
    assert outputs_equal(model, loaded, model.example_input(2))


def test_loading_does_not_touch_global_rng(tmp_path: Path) -> None:
    save_model(create_model("mlp", seed=0), tmp_path)
    state = torch.random.get_rng_state()
    load_model(tmp_path)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_plain_config_dict_is_accepted(tmp_path: Path) -> None:
    model = create_model("mlp", seed=0, hidden_features=(3,))
    save_model(model, tmp_path)
    data = json.loads((tmp_path / "model.json").read_text())
    data["config"] = data["config"]["params"]
    (tmp_path / "model.json").write_text(json.dumps(data))
    assert load_model(tmp_path).config == model.config


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    save_model(create_model("mlp", seed=0, hidden_features=(4,), in_features=3), tmp_path)
    return tmp_path


@pytest.mark.parametrize("missing", ["model.json", "model.safetensors"])
def test_missing_file(saved: Path, missing: str) -> None:
    (saved / missing).unlink()
    with pytest.raises(FileNotFoundError, match=f"{missing}: no such file"):
        load_model(saved)


def test_invalid_json(saved: Path) -> None:
    (saved / "model.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"model\.json: invalid JSON at line 1"):
        load_model(saved)


@pytest.mark.parametrize(
    ("edit", "error", "needle"),
    [
        (lambda d: d.pop("model"), ValueError, r"model\.json: expected an object with keys"),
        (lambda d: d.update(format_version=2), ValueError, r"model\.json: unsupported format"),
        (lambda d: d.update(model="mpl"), KeyError, r"model\.json: unknown model 'mpl'; did you"),
        (
            lambda d: d["config"]["params"].update(dropout=2.0),
            ValueError,
            r"model\.json: invalid config for model 'mlp': dropout: must be in",
        ),
        (
            lambda d: d["config"]["params"].update(widht=3),
            ValueError,
            r"model\.json: invalid config .*widht: unknown field of MLPConfig",
        ),
    ],
)
def test_bad_model_json(saved: Path, edit, error: type, needle: str) -> None:
    data = json.loads((saved / "model.json").read_text())
    edit(data)
    (saved / "model.json").write_text(json.dumps(data))
    with pytest.raises(error, match=needle):
        load_model(saved)


def test_json_that_is_not_an_object(saved: Path) -> None:
    (saved / "model.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"model\.json: expected an object"):
        load_model(saved)


def test_mismatched_tensor_names(saved: Path) -> None:
    tensors = load_tensors(saved / "model.safetensors")
    tensors["extra.weight"] = tensors.pop("net.readout.bias")
    save_tensors(saved / "model.safetensors", tensors)
    with pytest.raises(ValueError, match=r"model\.safetensors: does not match") as info:
        load_model(saved)
    message = str(info.value)
    assert "missing tensors: net.readout.bias" in message
    assert "unexpected tensors: extra.weight" in message


def test_mismatched_tensor_shapes(saved: Path) -> None:
    tensors = load_tensors(saved / "model.safetensors")
    tensors["net.layers.0.linear.weight"] = torch.zeros(5, 3)
    save_tensors(saved / "model.safetensors", tensors)
    with pytest.raises(
        ValueError, match=r"net\.layers\.0\.linear\.weight: expected shape \(4, 3\), got \(5, 3\)"
    ):
        load_model(saved)


def test_corrupt_safetensors(saved: Path) -> None:
    (saved / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"model\.safetensors: not a valid safetensors file"):
        load_model(saved)


def test_save_rejects_unregistered_or_configless_models(tmp_path: Path) -> None:
    class Subclass(MLPModel):
        pass

    model = create_model("mlp", hidden_features=(2,))
    with pytest.raises(ValueError, match="registry name 'mlp' builds 'MLPModel', not this class"):
        save_model(Subclass(model.config), tmp_path)
    with pytest.raises(ValueError, match="has no config attribute"):
        save_model(torch.nn.Linear(2, 2), tmp_path)
    assert not any(tmp_path.iterdir())
