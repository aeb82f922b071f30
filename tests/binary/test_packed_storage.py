"""Size report arithmetic and safetensors save/load of packed models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from perceptrons.binary import (
    PackedBinaryLinear,
    load_packed,
    model_size_report,
    save_packed,
    to_packed,
)
from perceptrons.io import save_tensors
from perceptrons.layers.binary import BinaryAttention, BinaryLinear, BinaryMLP


def test_size_report_of_one_layer_by_hand() -> None:
    packed = to_packed(BinaryLinear(100, 7, generator=torch.Generator().manual_seed(0)))
    report = model_size_report(packed)
    rows = {r.name: r for r in report.rows}
    assert list(rows) == ["weight_packed", "scales", "bias"]
    weight = rows["weight_packed"]
    # 7 rows x ceil(100 / 64) = 2 words x 8 B, against 7 x 100 x 4 B
    assert (weight.shape, weight.dtype, weight.bytes, weight.fp32_bytes) == (
        (7, 2),
        "int64",
        112,
        2800,
    )
    assert weight.packed
    assert (rows["scales"].bytes, rows["scales"].fp32_bytes) == (28, 28)
    assert (rows["bias"].bytes, rows["bias"].fp32_bytes, rows["bias"].packed) == (28, 28, False)
    assert report.bytes == 112 + 28 + 28
    assert report.fp32_bytes == 2800 + 28 + 28
    assert report.ratio == pytest.approx(2856 / 168)
    assert (report.binary_weight_bytes, report.binary_weight_fp32_bytes) == (112, 2800)
    assert report.binary_weight_ratio == 25.0
    text = report.to_markdown()
    assert "| weight_packed (packed) | (7, 2) | int64 | 112 | 2,800 |" in text
    assert "**168**" in text and "17.00x smaller" in text
    assert report.to_dict()["totals"]["bytes"] == 168


def test_size_report_of_a_float_model() -> None:
    report = model_size_report(nn.Sequential(nn.Linear(64, 32), BinaryLinear(32, 8, bias=False)))
    assert report.bytes == report.fp32_bytes == 4 * (64 * 32 + 32 + 32 * 8)
    assert report.ratio == 1.0 and report.binary_weight_bytes == 0
    assert report.binary_weight_ratio == 1.0


def test_packed_words_are_32x_smaller_for_multiples_of_64() -> None:
    report = model_size_report(to_packed(BinaryMLP(128, 256)))
    assert report.binary_weight_bytes == 8 * (256 * 2 + 128 * 4)
    assert report.binary_weight_ratio == 32.0


def _model(seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    fp = BinaryLinear(256, 256, generator=g)
    fp.set_binarized(False)
    return nn.Sequential(
        BinaryAttention(256, 4, generator=g),
        BinaryMLP(256, 1024, scale="mean", generator=g),
        nn.Sequential(BinaryLinear(256, 256, binarize_input=False, bias=False, generator=g)),
        nn.LayerNorm(256),
    )


def test_save_load_round_trip_and_file_size(tmp_path: Path) -> None:
    model = _model(0)
    packed = to_packed(model)
    path = tmp_path / "model.packed.safetensors"
    save_packed(packed, path)
    loaded = load_packed(path, _model(1))  # same architecture, other weights
    x = torch.randn(2, 9, 256, generator=torch.Generator().manual_seed(2))
    assert torch.equal(loaded(x), packed(x))  # bit-identical
    assert not loaded.training
    fp32_path = tmp_path / "model.fp32.safetensors"
    save_tensors(fp32_path, dict(model.state_dict()))
    factor = fp32_path.stat().st_size / path.stat().st_size
    ratio = model_size_report(packed).ratio
    assert ratio > 15
    assert factor == pytest.approx(ratio, rel=0.05)
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic writer left no temporary file


def test_load_of_a_packed_root_layer(tmp_path: Path) -> None:
    packed = to_packed(BinaryLinear(70, 5, binarize_input=False))
    save_packed(packed, tmp_path / "layer.safetensors")
    loaded = load_packed(tmp_path / "layer.safetensors", BinaryLinear(70, 5))
    assert isinstance(loaded, PackedBinaryLinear) and not loaded.binarize_input
    x = torch.randn(3, 70)
    assert torch.equal(loaded(x), packed(x))


def test_load_errors(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_packed(to_packed(_model(0)), path)
    with pytest.raises(ValueError, match="has no module"):
        load_packed(path, nn.Sequential(nn.LayerNorm(256)))
    with pytest.raises(ValueError, match="do not match the template"):
        load_packed(path, nn.Sequential(*list(_model(0))[:3], nn.LayerNorm(128)))
    plain = tmp_path / "plain.safetensors"
    save_tensors(plain, {"w": torch.zeros(2)})
    with pytest.raises(ValueError, match="not a packed model file"):
        load_packed(plain, _model(0))
    with pytest.raises(FileNotFoundError):
        load_packed(tmp_path / "missing.safetensors", _model(0))
