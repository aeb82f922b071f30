"""The amlp study end to end on a tiny configuration (the quick preset is < 60 s)."""

import json
import math

import pytest

from perceptrons.registry import STUDIES
from perceptrons.studies.amlp.experiments import crossover_length, interpolated_crossover
from perceptrons.studies.runner import run_study

TINY = [
    ("bench_embed_dim", 32),
    ("bench_num_heads", 2),
    ("memory_lengths", (16, 32, 64)),
    ("growth_length", 64),
    ("time_lengths", (16, 32, 64)),
    ("time_repeats", 1),
    ("model_dim", 16),
    ("model_heads", 2),
    ("num_layers", 1),
    ("ffn_features", 32),
    ("num_train", 64),
    ("num_test", 16),
    ("batch_size", 16),
    ("fit.max_steps", 2),
    ("decode_iterations", 2),
]
CLAIMS = [
    "no_quadratic_tensor",
    "memory_crossover",
    "time_crossover_vs_naive",
    "sort_accuracy",
    "translation_accuracy",
    "rank_bottleneck_documented",
]


def test_presets_keep_the_targets_fixed_before_measuring():
    study = STUDIES.get("amlp").obj
    quick, full = study.presets["quick"], study.presets["full"]
    for preset in (quick, full):
        assert preset.growth_max == 2.2 and preset.memory_crossover_max == 256
        assert preset.time_crossover_max == 4096 and preset.accuracy_min == 0.95
        assert preset.accuracy_gap_max == 0.03 and preset.num_landmarks == 16
    assert full.num_seeds >= 3 and full.reverse_lengths[0] >= 4 * full.reverse_landmarks
    assert quick.reverse_lengths[0] >= 4 * quick.reverse_landmarks


def test_crossover_length():
    n = [100.0, 200.0, 400.0, 800.0]
    naive = [x * x for x in n]
    assert crossover_length(n, naive, [300.0 * x for x in n]) == pytest.approx(300.0)
    assert crossover_length(n, naive, [1.0 for _ in n]) == pytest.approx(1.0)
    assert crossover_length(n, [1.0 for _ in n], [x for x in n]) == math.inf
    assert crossover_length(n, [x * x + 10 for x in n], [0.0 for _ in n]) == 0.0
    assert interpolated_crossover(n, [1.0, 2.0, 4.0, 8.0], [2.0, 4.0, 2.0, 2.0]) == pytest.approx(
        200.0 * 2**0.5
    )
    assert interpolated_crossover(n, [2.0] * 4, [1.0] * 4) == 0.0
    assert interpolated_crossover(n, [1.0] * 4, [2.0] * 4) == math.inf


def test_tiny_run_writes_every_claim_and_figure(tmp_path):
    outcome = run_study("amlp", out=tmp_path, overrides=TINY)
    assert outcome.status in ("passed", "failed"), outcome.error
    doc = json.loads((tmp_path / "amlp" / "result.json").read_text())
    assert [c["id"] for c in doc["claims"]] == CLAIMS
    claims = {c["id"]: c for c in doc["claims"]}
    for claim in doc["claims"]:  # a crossover beyond every length is inf, written as null
        assert claim["measured"] is None or isinstance(claim["measured"], float)
        assert isinstance(claim["threshold"], float)
    # deterministic: saved tensors of naive attention grow 4x, AMLP's 2x
    assert doc["metrics"]["largest_saved_growth_naive"] == pytest.approx(4.0)
    assert claims["no_quadratic_tensor"]["measured"] == pytest.approx(2.0)
    assert claims["no_quadratic_tensor"]["passed"]
    assert len(doc["figures"]) == 2
    for figure in doc["figures"]:
        assert (tmp_path / "amlp" / figure).read_bytes()[:4] == b"\x89PNG"
