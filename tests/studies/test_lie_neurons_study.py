"""The lie-neurons study end to end on a tiny configuration (the quick preset is ~40 s of CPU)."""

import csv
import json

from perceptrons.registry import STUDIES
from perceptrons.studies.runner import run_study


def _task(prefix: str, **extra) -> list:
    fields = {"num_train": 48, "num_test": 32, "width": 4, "steps": 4, "batch_size": 16, **extra}
    return [(f"{prefix}.{k}", v) for k, v in fields.items()]


TINY = [
    ("mlp_hidden", (8,)),
    ("error_samples", 8),
    ("error_trials", 3),
    ("platonic_rotations", 2),
    *_task("invariant"),
    *_task("equivariant"),
    *_task("platonic"),
    *_task("sp4"),
    *_task("bch"),
]
CLAIMS = [
    "ln_invariance_error",
    "ln_invariance_error_float64",
    "mlp_not_invariant",
    "ln_conjugated_mse_unchanged",
    "mlp_conjugated_mse_grows",
    "ln_equivariance_error",
    "bracket_helps_equivariant",
    "platonic_rotated_accuracy",
    "mlp_rotated_accuracy_drops",
]
TABLES = ["sl3_invariant", "sl3_equivariant", "platonic", "sp4_invariant", "so3_bch"]


def test_presets_are_valid_and_full_follows_the_paper():
    study = STUDIES.get("lie-neurons").obj
    assert set(study.presets) == {"quick", "full"}
    full, quick = study.presets["full"], study.presets["quick"]
    assert full.num_seeds >= 3  # mean ± std over >= 3 seeds
    assert full.invariant.num_train == 2000 and full.invariant.num_test == 2000  # ours
    assert full.invariant.width == 256 and full.platonic.batch_size == 100  # paper
    assert quick.mlp_hidden == (256, 256, 256)  # paper: 3-layer MLP of width 256
    assert quick.conjugation_scale == 0.5  # paper


def test_tiny_run_writes_every_claim_table_and_figure(tmp_path):
    outcome = run_study("lie-neurons", out=tmp_path, overrides=TINY, index=False)
    assert outcome.status in ("passed", "failed"), outcome.error
    folder = tmp_path / "lie-neurons"
    doc = json.loads((folder / "result.json").read_text())
    assert [c["id"] for c in doc["claims"]] == CLAIMS
    for claim in doc["claims"]:
        assert isinstance(claim["measured"], float) and isinstance(claim["threshold"], float)
    claims = {c["id"]: c for c in doc["claims"]}
    # exactness does not depend on training: even 4 steps give float64-exact invariance
    assert claims["ln_invariance_error_float64"]["passed"]
    assert claims["ln_invariance_error"]["passed"]
    assert claims["ln_equivariance_error"]["passed"]
    assert claims["ln_conjugated_mse_unchanged"]["passed"]
    for name in TABLES:
        with open(folder / "tables" / f"{name}.csv") as f:
            rows = list(csv.reader(f))
        assert len(rows) >= 3, name
    with open(folder / "tables" / "platonic.csv") as f:
        platonic = list(csv.DictReader(f))
    assert [r["model"] for r in platonic] == ["LN-LR", "MLP", "MLP + augmentation"]
    assert platonic[0]["paper rotated %"] == "99.51"
    assert len(doc["figures"]) == 3
    for figure in doc["figures"]:
        assert (folder / figure).read_bytes()[:4] == b"\x89PNG"
    assert set(doc["metrics"]["seconds"]) == set(TABLES)


def test_several_seeds_and_optional_tasks_skipped(tmp_path):
    overrides = [*TINY, ("num_seeds", 2), ("run_sp4", False), ("run_bch", False)]
    outcome = run_study("lie-neurons", out=tmp_path, overrides=overrides, index=False)
    assert outcome.status in ("passed", "failed"), outcome.error
    folder = tmp_path / "lie-neurons"
    tables = {p.stem for p in (folder / "tables").glob("*.csv")}
    assert tables == {"sl3_invariant", "sl3_equivariant", "platonic"}
    with open(folder / "tables" / "sl3_invariant.csv") as f:
        rows = list(csv.DictReader(f))
    assert all("±" in row["MSE"] for row in rows)  # mean ± std over the two seeds
    doc = json.loads((folder / "result.json").read_text())
    assert len(doc["metrics"]["sl3_invariant"]["LN-LR"]["mse"]) == 2
