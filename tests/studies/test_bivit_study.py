"""The bivit study end to end on a tiny configuration."""

import csv
import json

import pytest
import torch

from perceptrons.registry import STUDIES
from perceptrons.studies.bivit.experiments import load_data, shift_augment
from perceptrons.studies.runner import run_study

TINY = [
    ("embed_dim", 64),  # 64-bit rows: no padding in the packed words
    ("depth", 1),
    ("num_heads", 2),
    ("teacher_steps", 12),
    ("stage1_steps", 4),
    ("stage2_steps", 4),
    ("augment_copies", 1),
    ("batch_size", 64),
]
CLAIMS = [
    "sab_beats_threshold",
    "sab_no_empty_rows",
    "pws_not_worse",
    "clb_not_worse_than_one_shot",
    "binary_within_8_points",
    "weights_32x_smaller",
    "packed_exact",
]


def test_tiny_run_writes_every_claim_table_and_figure(tmp_path):
    outcome = run_study("bivit", out=tmp_path, overrides=TINY, index=False)
    assert outcome.status in ("passed", "failed"), outcome.error
    folder = tmp_path / "bivit"
    doc = json.loads((folder / "result.json").read_text())
    assert [c["id"] for c in doc["claims"]] == CLAIMS
    claims = {c["id"]: c for c in doc["claims"]}
    # these two hold by construction of the packed model, whatever the training did
    assert claims["packed_exact"]["passed"] and claims["weights_32x_smaller"]["passed"]
    with open(folder / "tables" / "accuracy.csv") as f:
        names = [r["model"] for r in csv.DictReader(f)]
    assert names == ["fp", "sab", "threshold", "mean_scale", "one_shot"]
    assert len(doc["figures"]) == 3
    for figure in doc["figures"]:
        assert (folder / figure).read_bytes()[:4] == b"\x89PNG"
    accuracy = doc["metrics"]["accuracy"]["digits"]
    assert all(0.0 <= a[0] <= 1.0 for a in accuracy.values())
    assert doc["metrics"]["teacher_empty_rows"]["digits"][0]["sab"] == 0.0


def test_presets_and_validation():
    study = STUDIES.get("bivit").obj
    full = study.presets["full"]
    assert full.num_seeds >= 3 and set(full.datasets) == {"digits", "shapes"}
    for preset in study.presets.values():
        assert preset.pws_tolerance == 0.01 and preset.clb_tolerance == 0.01
        assert preset.fp_gap == 0.08 and preset.size_ratio == 31.0
    with pytest.raises(ValueError, match="variants"):
        full.replace(variants=("threshold",))
    with pytest.raises(ValueError, match="datasets"):
        full.replace(datasets=("cifar",))


def test_data_and_shift_augmentation():
    config = STUDIES.get("bivit").obj.presets["quick"]
    data = load_data(config.replace(augment_copies=1), "digits", 0)
    assert data.x_train.shape[1:] == (1, 8, 8) and data.x_test.shape == (360, 1, 8, 8)
    assert data.x_train.shape[0] == 2 * 1437 and float(data.x_train.min()) >= -1.0
    x = torch.full((200, 1, 4, 4), -1.0)
    x[:, :, 1, 1] = 1.0  # one lit pixel
    shifted = shift_augment(x, 2, torch.Generator().manual_seed(0))
    assert shifted.shape == (400, 1, 4, 4)
    lit = (shifted[:, 0] > 0).nonzero()[:, 1:]  # (row, col) of the lit pixel of each image
    assert len(lit) == 400 and bool(((lit - 1).abs() <= 1).all())
    assert len({tuple(p) for p in lit.tolist()}) == 9  # all nine shifts occur


def test_worker_processes_give_the_same_result(tmp_path):
    """Every (data set, repetition) job is seeded: 2 spawned workers reproduce the serial run."""
    tiny = [
        *TINY,
        ("num_seeds", 2),
        ("variants", ("sab",)),
        ("teacher_steps", 6),
        ("stage1_steps", 2),
        ("stage2_steps", 2),
        ("augment_copies", 0),
    ]
    docs = []
    for workers in (1, 2):
        out = tmp_path / str(workers)
        outcome = run_study("bivit", out=out, overrides=[*tiny, ("workers", workers)], index=False)
        assert outcome.status in ("passed", "failed"), outcome.error
        docs.append(json.loads((out / "bivit" / "result.json").read_text()))
    serial, parallel = (d["metrics"] for d in docs)
    assert len(serial["accuracy"]["digits"]["sab"]) == 2
    for key in ("accuracy", "teacher_empty_rows", "own_empty_rows", "packed"):
        assert parallel[key] == serial[key], key
