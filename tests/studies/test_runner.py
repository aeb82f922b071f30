"""The runner: report files, error capture, atomic replacement of a study's folder."""

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from perceptrons.studies.base import Study, StudyConfig, StudyResult, Table
from perceptrons.studies.runner import run_study


@dataclass(frozen=True, kw_only=True)
class TinyConfig(StudyConfig):
    """Config of the test study.

    Attributes:
        value: The measured value to report.
        fail: Raise instead of returning.
    """

    value: float = 1.0
    fail: bool = False


def _tiny_run(config: TinyConfig, out_dir: Path) -> StudyResult:
    if config.fail:
        raise RuntimeError("planned failure\nsecond line")
    fig = Figure()
    fig.subplots().plot([0, 1], [0, config.value])
    path = out_dir / "line.png"
    fig.savefig(path)
    result = StudyResult(tables={"t": Table(["a", "b"], [[1, 2.5]])})
    result.claim("value_positive", "value is positive", config.value, 0.0, ">")
    result.metrics["nested"] = {"x": [1, 2]}
    result.figures.append(path)
    return result


TINY = Study(
    "tiny", _tiny_run, TinyConfig, {"quick": TinyConfig(), "full": TinyConfig()}, paper="none"
)

RESULT_KEYS = ["study", "budget", "seed", "claims", "metrics", "figures", "config", "environment"]


def test_report_files_and_exact_result_shape(tmp_path):
    outcome = run_study(TINY, out=tmp_path, seed=4, overrides=[("value", 2.0)])
    assert outcome.status == "passed"
    folder = tmp_path / "tiny"
    doc = json.loads((folder / "result.json").read_text())
    assert list(doc) == RESULT_KEYS
    assert doc["study"] == "tiny" and doc["budget"] == "quick" and doc["seed"] == 4
    assert doc["claims"] == [
        {
            "id": "value_positive",
            "statement": "value is positive",
            "measured": 2.0,
            "threshold": 0.0,
            "passed": True,
        }
    ]
    assert doc["figures"] == ["line.png"]
    assert doc["config"] == {"seed": 4, "num_threads": None, "value": 2.0, "fail": False}
    assert "torch" in doc["environment"]
    assert doc["environment"]["command"] == (
        "perceptrons reproduce tiny --budget quick --seed 4 --set value=2.0"
    )
    assert json.loads((folder / "config.json").read_text())["params"]["value"] == 2.0
    assert (folder / "line.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (folder / "tables" / "t.csv").read_text().splitlines() == ["a,b", "1,2.5"]
    report = (folder / "report.md").read_text()
    assert "| value_positive | value is positive | 2 | > 0 | pass |" in report
    index = (tmp_path / "index.html").read_text()
    assert "data:image/png;base64," in index and "value_positive" in index
    assert outcome.result.figures == [folder / "line.png"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_failed_claim_is_reported_not_raised(tmp_path):
    outcome = run_study(TINY, out=tmp_path, overrides=[("value", -1.0)])
    assert outcome.status == "failed"
    doc = json.loads((tmp_path / "tiny" / "result.json").read_text())
    assert doc["claims"][0]["passed"] is False
    assert "FAIL" in (tmp_path / "index.html").read_text()


def test_errored_study_is_recorded_and_replaces_old_report(tmp_path):
    run_study(TINY, out=tmp_path)
    assert (tmp_path / "tiny" / "result.json").exists()
    outcome = run_study(TINY, out=tmp_path, overrides=[("fail", True)])
    assert outcome.status == "errored"
    assert outcome.error == "RuntimeError: planned failure"
    folder = tmp_path / "tiny"
    assert not (folder / "result.json").exists()  # stale result must not survive
    assert "planned failure" in (folder / "traceback.txt").read_text()
    err = json.loads((folder / "error.json").read_text())
    assert err["message"] == "RuntimeError: planned failure"
    assert "errored" in (tmp_path / "index.html").read_text()


def test_keyboard_interrupt_leaves_previous_report(tmp_path, monkeypatch):
    run_study(TINY, out=tmp_path)
    before = (tmp_path / "tiny" / "result.json").read_text()

    def interrupted(config, out_dir):
        (out_dir / "partial.txt").write_text("half")
        raise KeyboardInterrupt

    study = Study("tiny", interrupted, TinyConfig, TINY.presets)
    with pytest.raises(KeyboardInterrupt):
        run_study(study, out=tmp_path)
    assert (tmp_path / "tiny" / "result.json").read_text() == before
    assert not (tmp_path / "tiny" / "partial.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_unknown_budget_and_field(tmp_path):
    with pytest.raises(ValueError, match="unknown budget 'huge'.*quick, full"):
        run_study(TINY, out=tmp_path, budget="huge")
    with pytest.raises(ValueError, match="valuee: unknown field of TinyConfig"):
        run_study(TINY, out=tmp_path, overrides=[("valuee", 1.0)])


def test_runner_applies_and_restores_num_threads(tmp_path):
    import torch

    seen = []

    def body(config, out_dir):
        seen.append(torch.get_num_threads())
        result = StudyResult()
        result.claim("ran", "ran", 1, 0, ">")
        return result

    before = torch.get_num_threads()
    study = Study(
        name="threads-probe",
        target=body,
        config=StudyConfig,
        presets={"quick": StudyConfig(num_threads=1), "full": StudyConfig()},
        paper="test",
    )
    run_study(study, budget="quick", out=tmp_path)
    run_study(study, budget="full", out=tmp_path)
    assert seen == [1, before] and torch.get_num_threads() == before
