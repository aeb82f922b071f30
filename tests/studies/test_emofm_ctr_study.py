"""The emofm-ctr study end to end on a tiny configuration (the quick preset is ~45 s of CPU)."""

import csv
import json

import pytest
import torch

from perceptrons.registry import STUDIES
from perceptrons.studies.runner import run_study

TINY = [
    ("num_train", 2000),
    ("num_val", 500),
    ("num_test", 1000),
    ("models", ("lr", "dnn", "emofm")),
    ("ablations", ("no_field_mixer", "no_ensemble")),
    ("tie_models", ("lr", "dnn")),
    ("family_models", ("dnn", "emofm")),
    ("batch_size", 256),
    ("eval_every", 4),
    ("fit.max_epochs", 1),
    ("task.calibration_rows", 2000),
]
CLAIMS = [
    "lr_matches_first_order_oracle",
    "mixer_beats_dnn",
    "no_interaction_tie",
    "type_model_informative",
    "ensemble_not_worse",
    "pcoc_calibrated",
]


def test_presets_keep_the_targets_fixed_before_measuring():
    study = STUDIES.get("emofm-ctr").obj
    full = study.presets["full"]
    assert full.num_seeds >= 3 and full.num_train >= 200_000  # docs/ctr.md, "Full preset"
    for preset in study.presets.values():
        assert preset.lr_tolerance == 0.01 and preset.mixer_margin == 0.005
        assert preset.mixer_gap_fraction == 0.30 and preset.tie_tolerance == 0.002
        assert preset.pcoc_tolerance == 0.05


def test_tiny_run_writes_every_claim_table_and_figure(tmp_path):
    outcome = run_study("emofm-ctr", out=tmp_path, overrides=TINY, index=False)
    assert outcome.status in ("passed", "failed"), outcome.error
    folder = tmp_path / "emofm-ctr"
    doc = json.loads((folder / "result.json").read_text())
    assert [c["id"] for c in doc["claims"]] == CLAIMS
    for claim in doc["claims"]:
        assert isinstance(claim["measured"], float) and isinstance(claim["threshold"], float)
    for name in ("models", "ablations", "no_interactions", "families"):
        with open(folder / "tables" / f"{name}.csv") as f:
            rows = list(csv.reader(f))
        assert len(rows) >= 3, name
    with open(folder / "tables" / "models.csv") as f:
        names = [r["model"] for r in csv.DictReader(f)]
    assert names[:3] == ["lr", "dnn", "emofm"] and "first-order oracle" in names
    assert len(doc["figures"]) == 3
    for figure in doc["figures"]:
        assert (folder / figure).read_bytes()[:4] == b"\x89PNG"
    metrics = doc["metrics"]
    assert 0.5 < metrics["oracles"]["oracle"][0] <= 1.0
    assert len(metrics["type_accuracy"]) == 1 and len(metrics["ensemble_gain"]) == 1
    assert metrics["interaction"] == "product" and set(metrics["family_auc"]) == {"lookup"}
    assert set(metrics["family_auc"]["lookup"]) == {"dnn", "emofm"}
    assert "lookup" in metrics["family_emofm_minus_dnn"]


def test_extra_families_are_checked():
    config = STUDIES.get("emofm-ctr").obj.presets["quick"]
    assert config.extra_families == ("lookup",)
    with pytest.raises(ValueError, match="extra_families"):
        config.replace(extra_families=("product",))
    with pytest.raises(ValueError, match="family_models"):
        config.replace(family_models=("nope",))


def test_worker_processes_give_the_same_result(tmp_path):
    """Every (repetition, model) job is seeded: 2 spawned workers reproduce the serial run."""
    tiny = [*TINY, ("num_seeds", 2), ("models", ("lr", "dnn", "emofm")), ("ablations", ())]
    docs = []
    for workers in (1, 2):
        out = tmp_path / str(workers)
        outcome = run_study(
            "emofm-ctr", out=out, overrides=[*tiny, ("workers", workers)], index=False
        )
        assert outcome.status in ("passed", "failed"), outcome.error
        docs.append(json.loads((out / "emofm-ctr" / "result.json").read_text()))
    serial, parallel = (d["metrics"] for d in docs)
    assert len(serial["auc"]["emofm"]) == 2
    for key in ("auc", "logloss", "pcoc", "tie_auc", "best_step", "type_accuracy", "oracles"):
        assert parallel[key] == serial[key], key
    assert [c["measured"] for c in docs[1]["claims"]] == [c["measured"] for c in docs[0]["claims"]]


def test_device_name_is_checked():
    config = STUDIES.get("emofm-ctr").obj.presets["quick"]
    with pytest.raises(ValueError, match="device"):
        config.replace(device="not-a-device")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_tiny_run_on_cuda(tmp_path):
    outcome = run_study(
        "emofm-ctr", out=tmp_path, overrides=[*TINY, ("device", "cuda")], index=False
    )
    assert outcome.status in ("passed", "failed"), outcome.error
    doc = json.loads((tmp_path / "emofm-ctr" / "result.json").read_text())
    assert 0.5 < doc["metrics"]["auc"]["emofm"][0] <= 1.0


def _metrics_and_claims(out):
    doc = json.loads((out / "emofm-ctr" / "result.json").read_text())
    return doc["metrics"], [(c["id"], c["measured"], c["passed"]) for c in doc["claims"]]


def test_runs_in_parts_merge_into_the_whole_run(tmp_path, monkeypatch):
    """Seeds 0 and 1 run separately with ``job_dir``; the 2-seed run then trains nothing (the
    training entry point is made to fail) and reports exactly what the 2-seed run without
    records does."""
    from perceptrons.studies.emofm_ctr import experiments

    tiny = [*TINY, ("models", ("lr", "dnn", "emofm")), ("ablations", ("no_ensemble",))]
    jobs = str(tmp_path / "jobs")
    whole = run_study(
        "emofm-ctr", out=tmp_path / "whole", overrides=[*tiny, ("num_seeds", 2)], index=False
    )
    assert whole.status in ("passed", "failed"), whole.error
    for seed in (0, 1):
        part = [*tiny, ("seed", seed), ("num_seeds", 1), ("job_dir", jobs)]
        outcome = run_study("emofm-ctr", out=tmp_path / f"part{seed}", overrides=part, index=False)
        assert outcome.status in ("passed", "failed"), outcome.error
    (folder,) = (tmp_path / "jobs").iterdir()
    # 3 models + 1 ablation planted, 2 control models, 2 family models; per seed
    assert len(list(folder.glob("seed*-*.json"))) == 2 * 8
    assert (folder / "settings.json").exists()

    def no_training(*args, **kwargs):
        raise AssertionError("a job with a record was trained again")

    monkeypatch.setattr(experiments, "train_model", no_training)
    merged = run_study(
        "emofm-ctr",
        out=tmp_path / "merged",
        overrides=[*tiny, ("num_seeds", 2), ("job_dir", jobs), ("workers", 1)],
        index=False,
    )
    assert merged.status in ("passed", "failed"), merged.error
    (m_whole, c_whole), (m_merged, c_merged) = (
        _metrics_and_claims(tmp_path / name) for name in ("whole", "merged")
    )
    assert c_merged == c_whole
    for key in ("auc", "logloss", "pcoc", "tie_auc", "best_step", "type_accuracy", "family_auc"):
        assert m_merged[key] == m_whole[key], key


def test_job_records_are_keyed_by_what_changes_a_result(tmp_path):
    from perceptrons.studies.emofm_ctr.experiments import (
        Job,
        job_key,
        job_record_path,
        load_job_record,
    )

    config = STUDIES.get("emofm-ctr").obj.presets["quick"].replace(job_dir=str(tmp_path))
    key = job_key(config)
    same = [("seed", 5), ("num_seeds", 3), ("workers", 2), ("models", ("lr", "dnn", "emofm"))]
    same += [("ablations", ()), ("tie_tolerance", 0.5), ("job_dir", "elsewhere")]
    for field, value in same:
        assert job_key(config.replace(**{field: value})) == key, field
    for field, value in [("num_train", 999), ("embed_dim", 4), ("dropout", 0.0)]:
        assert job_key(config.replace(**{field: value})) != key, field
    assert job_key(config.replace_path("fit.optimizer.lr", 0.5)) != key
    assert job_key(config.replace_path("task.max_cardinality", 50)) != key
    # repetition i of seed s is repetition 0 of seed s + i
    later = config.replace(seed=2)
    assert job_record_path(config, Job(2, "fm", True)) == job_record_path(later, Job(0, "fm", True))
    assert load_job_record(config, Job(0, "fm", False)) is None
    path = job_record_path(config, Job(0, "fm", False))
    path.parent.mkdir(parents=True)
    path.write_text('{"seed": 0, "model": "fm"}')
    with pytest.raises(ValueError, match=r"seed0-planted-fm\.json.*not a job record"):
        load_job_record(config, Job(0, "fm", False))
    path.write_text('{"seed": 7, "model": "fm", "tie": false, "family": "", "fit": {}, "test": {}}')
    with pytest.raises(ValueError, match="holds the job"):
        load_job_record(config, Job(0, "fm", False))
