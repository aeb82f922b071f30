"""Tests of `perceptrons.studies.common`, the helpers every study shares."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from perceptrons.studies.common import (
    accuracy,
    format_mean_std,
    generator,
    mean_std,
    mse,
    num_parameters,
    predict,
    save_figure,
)


# ------------------------------------------------------------------ generator
def test_generator_is_deterministic() -> None:
    for seed, stream in [(0, None), (3, None), (0, 1), (7, 42)]:
        first = torch.randn(5, generator=generator(seed, stream))
        second = torch.randn(5, generator=generator(seed, stream))
        assert torch.equal(first, second)
    assert torch.equal(
        torch.rand(4, generator=generator(2, 5)),
        torch.rand(4, generator=torch.Generator().manual_seed(2005)),  # 1000 * seed + stream
    )


def test_generator_streams_are_independent() -> None:
    draws = {
        (seed, stream): torch.rand(8, generator=generator(seed, stream))
        for seed in (0, 1, 2, 10)
        for stream in (0, 1, 2, 3, 99, 999)
    }
    keys = list(draws)
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            assert not torch.equal(draws[a], draws[b]), (a, b)
    for seed in (1, 2, 10):  # a seed's streams differ from its unstreamed generator
        plain = torch.rand(8, generator=generator(seed))
        assert not any(torch.equal(plain, draws[(seed, s)]) for s in (0, 1, 2, 3, 99, 999))
    # the documented overlap of the two forms: stream k of seed 0 is seed k
    assert torch.equal(draws[(0, 3)], torch.rand(8, generator=generator(3)))
    # each call is a fresh generator: using one stream does not move another
    used, fresh = generator(0, 1), generator(0, 2)
    torch.rand(100, generator=used)
    assert torch.equal(torch.rand(8, generator=fresh), draws[(0, 2)])
    assert generator(0).device.type == "cpu"


# ------------------------------------------------------------------ predict
class DictModel(nn.Module):
    """``{"a": (b, 3), "b": (b, 2)} -> {"logit": (b,), "pair": (b, 2)}``."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.a = nn.Parameter(torch.randn(3, generator=generator))
        self.b = nn.Parameter(torch.randn(2, 2, generator=generator))

    def forward(self, x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"logit": x["a"] @ self.a, "pair": x["b"] @ self.b}


def linear(seed: int = 0) -> nn.Module:
    layer = nn.Linear(4, 3)
    gen = generator(seed, 7)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(3, 4, generator=gen))
        layer.bias.copy_(torch.randn(3, generator=gen))
    return layer


@pytest.mark.parametrize("batch_size", [1, 3, 4, 7, 10, 4096])
def test_predict_tensor_equals_a_direct_forward(batch_size: int) -> None:
    model = linear()
    x = torch.randn(10, 4, generator=generator(1))
    out = predict(model, x, batch_size=batch_size)
    torch.testing.assert_close(out, model(x).detach())
    assert out.shape == (10, 3) and not out.requires_grad


@pytest.mark.parametrize("batch_size", [2, 3, 16])
def test_predict_dict_inputs_and_outputs(batch_size: int) -> None:
    model = DictModel()
    gen = generator(2)
    x = {"a": torch.randn(7, 3, generator=gen), "b": torch.randn(7, 2, generator=gen)}
    out = predict(model, x, batch_size=batch_size)
    direct = model(x)
    assert set(out) == {"logit", "pair"}
    for key in out:
        torch.testing.assert_close(out[key], direct[key].detach())
        assert out[key].shape[0] == 7 and not out[key].requires_grad


def test_predict_tuple_inputs_and_models_without_parameters() -> None:
    class Pair(nn.Module):
        def forward(self, x: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
            return x[0] * x[1]

    x = (torch.arange(5.0), torch.arange(5.0) + 1)
    torch.testing.assert_close(predict(Pair(), x, batch_size=2), x[0] * x[1])


def test_predict_empty_input_raises() -> None:
    model = linear()
    with pytest.raises(ValueError, match="has no rows"):
        predict(model, torch.zeros(0, 4))
    with pytest.raises(ValueError, match="has no rows"):
        predict(DictModel(), {"a": torch.zeros(0, 3), "b": torch.zeros(0, 2)})
    with pytest.raises(TypeError, match="inputs: expected a tensor"):
        predict(model, {})
    with pytest.raises(TypeError, match="inputs: expected a tensor"):
        predict(model, [])


def test_predict_keeps_the_model_mode() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5)).train()
    predict(model, torch.randn(3, 4, generator=generator(0)))
    assert model.training  # the caller decides the mode (studies call model.eval() first)


# ------------------------------------------------------------------ accuracy, mse
def fixed_linear(weight: list[list[float]], bias: list[float]) -> nn.Linear:
    layer = nn.Linear(len(weight[0]), len(weight))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.copy_(torch.tensor(bias))
    return layer


def test_accuracy_on_a_hand_made_model() -> None:
    model = fixed_linear([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0])  # predicts argmax of the input
    x = torch.tensor([[2.0, 1.0], [0.0, 3.0], [5.0, -1.0], [1.0, 4.0]])  # predictions 0 1 0 1
    assert accuracy(model, x, torch.tensor([0, 1, 0, 1])) == 1.0
    assert accuracy(model, x, torch.tensor([0, 1, 1, 1]), batch_size=3) == 0.75
    assert accuracy(model, x, torch.tensor([1, 0, 1, 0]), batch_size=1) == 0.0


def test_mse_on_a_hand_made_model() -> None:
    model = fixed_linear([[2.0]], [0.0])  # y = 2 x
    x = torch.tensor([[1.0], [2.0], [3.0]])
    assert mse(model, x, torch.tensor([[2.0], [4.0], [6.0]])) == 0.0
    assert mse(model, x, torch.tensor([[2.0], [4.0], [7.0]]), batch_size=2) == pytest.approx(1 / 3)
    assert mse(model, x, torch.tensor([[0.0], [0.0], [0.0]])) == pytest.approx(56 / 3)


def test_num_parameters() -> None:
    assert num_parameters(nn.Linear(4, 3)) == 15
    assert num_parameters(nn.Sequential()) == 0


# ------------------------------------------------------------------ mean_std
def test_mean_std_matches_numpy_sample_std() -> None:
    rng = random.Random(0)
    for _ in range(200):
        values = [rng.uniform(-1, 1) * 10 ** rng.uniform(-6, 6) for _ in range(rng.randint(2, 9))]
        mean, std = mean_std(values)
        assert mean == pytest.approx(float(np.mean(values)), rel=1e-12, abs=1e-300)
        assert std == pytest.approx(float(np.std(values, ddof=1)), rel=1e-9, abs=1e-300)
    assert mean_std([0.25]) == (0.25, 0.0)
    assert mean_std([1, 2, 3]) == (2.0, 1.0)
    mean, std = mean_std([1.0, float("nan")])
    assert math.isnan(mean) and math.isnan(std)
    with pytest.raises(ValueError, match="values: empty"):
        mean_std([])


# ------------------------------------------------------------------ format_mean_std
def test_format_mean_std_examples() -> None:
    assert format_mean_std([0.71, 0.73]) == "0.7200 ± 0.0141"
    assert format_mean_std([0.5]) == "0.5000"
    assert format_mean_std([0.71, 0.73], 2) == "0.72 ± 0.01"
    assert format_mean_std([0.71, 0.73], std_digits=1) == "0.7200 ± 0.0"
    # significant digits, std to 2 (the lie-neurons tables)
    assert format_mean_std([1.5e-3, 2.5e-3], std_digits=2, spec="g") == "0.002 ± 0.00071"
    assert format_mean_std([0.123456], spec="g") == "0.1235"
    assert format_mean_std([12345.0, 12347.0], 3, std_digits=2, spec="g") == "1.23e+04 ± 1.4"
    assert format_mean_std([1e-8, 3e-8], 2, spec="e") == "2.00e-08 ± 1.41e-08"
    assert format_mean_std([0.5, float("nan")]) == "nan ± nan"
    assert format_mean_std(np.array([1.0, 3.0])) == "2.0000 ± 1.4142"


def test_format_mean_std_bad_arguments() -> None:
    with pytest.raises(ValueError, match="values: empty"):
        format_mean_std([])
    with pytest.raises(ValueError, match="spec: expected 'f', 'g' or 'e'"):
        format_mean_std([1.0], spec="%")


# ------------------------------------------------------------------ save_figure
def _leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def test_save_figure_writes_a_png_atomically(tmp_path: Path) -> None:
    fig = Figure(figsize=(2, 2))
    fig.add_subplot().plot([0, 1], [1, 0])
    path = save_figure(fig, tmp_path / "plot.png")
    assert path == tmp_path / "plot.png" and isinstance(path, Path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _leftovers(tmp_path, {"plot.png"}) == []  # no temporary file left
    first = path.read_bytes()
    save_figure(fig, str(path), dpi=50)  # a str path; overwrites in place
    assert path.read_bytes() != first and _leftovers(tmp_path, {"plot.png"}) == []


class FailingFigure:
    """A figure whose ``savefig`` writes a few bytes, then raises."""

    def savefig(self, handle: Any, **kwargs: Any) -> None:
        handle.write(b"partial")
        raise RuntimeError("savefig failed")


def test_save_figure_failure_leaves_an_existing_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "plot.png"
    path.write_bytes(b"the old figure")
    with pytest.raises(RuntimeError, match="savefig failed"):
        save_figure(FailingFigure(), path)
    assert path.read_bytes() == b"the old figure"
    assert _leftovers(tmp_path, {"plot.png"}) == []
    with pytest.raises(RuntimeError, match="savefig failed"):
        save_figure(FailingFigure(), tmp_path / "new.png")
    assert not (tmp_path / "new.png").exists()
    assert _leftovers(tmp_path, {"plot.png"}) == []
