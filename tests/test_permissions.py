"""Every file the library writes has the mode ``open()`` would give it (0666 & ~umask), every
folder the mode of ``mkdir`` (0777 & ~umask): model folders, checkpoints, ``ctr train`` /
``ctr predict`` outputs and study reports.

The umask is set to 0o027 while a test runs, so that ``mkstemp``'s private 0600 and
``mkdtemp``'s 0700 cannot pass for 0640 and 0750 by accident.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from matplotlib.figure import Figure

from perceptrons.cli.main import main
from perceptrons.ctr import SyntheticCTRConfig, SyntheticCTRTask
from perceptrons.data.loader import TensorLoader
from perceptrons.models import save_model
from perceptrons.registry import create_model
from perceptrons.studies.base import Study, StudyConfig, StudyResult
from perceptrons.studies.common import save_figure
from perceptrons.studies.runner import run_study
from perceptrons.train import FitConfig, fit
from perceptrons.train.steps import regression_step

UMASK = 0o027
FILE, FOLDER = 0o666 & ~UMASK, 0o777 & ~UMASK


@pytest.fixture(autouse=True)
def umask():
    old = os.umask(UMASK)
    yield
    os.umask(old)


def modes_under(root: Path) -> dict[str, str]:
    """``relative path -> octal mode`` of every entry that has not the ordinary mode."""
    wrong = {}
    for path in [root, *sorted(root.rglob("*"))]:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode != (FOLDER if path.is_dir() else FILE):
            wrong[str(path.relative_to(root.parent))] = oct(mode)
    return wrong


def test_save_model_and_checkpoints(tmp_path):
    model = create_model("mlp", seed=0, in_features=3, hidden_features=(4,), out_features=1)
    save_model(model, tmp_path / "model")
    assert {p.name for p in (tmp_path / "model").iterdir()} >= {"model.json", "model.safetensors"}
    x, y = torch.randn(32, 3), torch.randn(32, 1)
    config = FitConfig(max_steps=6, checkpoint_every=2, log_every=2, progress=False)
    fit(model, regression_step, TensorLoader((x, y), 8), config, out_dir=tmp_path / "run")
    assert (tmp_path / "run" / "checkpoints" / "step_00000006" / "state.json").is_file()
    assert modes_under(tmp_path / "model") == {}
    assert modes_under(tmp_path / "run") == {}


def test_ctr_train_and_predict(tmp_path, capsys):
    task = SyntheticCTRTask(
        SyntheticCTRConfig(
            num_user_fields=2,
            num_scene_fields=1,
            num_ad_fields=2,
            num_multi_fields=1,
            max_cardinality=20,
            calibration_rows=500,
        )
    )
    task.sample(400, seed=1).write(tmp_path / "train.cvr", "cvr")
    out = tmp_path / "lr"
    args = ["ctr", "train", "--train", tmp_path / "train.cvr", "--format", "cvr"]
    args += ["--model", "lr", "--epochs", "1", "--out", out]
    assert main([str(a) for a in args]) == 0
    predict = ["ctr", "predict", "--model-dir", out, "--data", tmp_path / "train.cvr"]
    assert main([str(a) for a in [*predict, "--out", tmp_path / "p.csv"]]) == 0
    capsys.readouterr()
    assert modes_under(out) == {}
    assert stat.S_IMODE((tmp_path / "p.csv").stat().st_mode) == FILE


@dataclass(frozen=True, kw_only=True)
class _Config(StudyConfig):
    """Config of the test study."""


def _run(config: _Config, out_dir: Path) -> StudyResult:
    fig = Figure()
    fig.subplots().plot([0, 1], [0, 1])
    result = StudyResult()
    result.figures.append(save_figure(fig, out_dir / "line.png"))
    result.claim("ran", "it ran", 1.0, 0.0, ">")
    return result


def test_study_report(tmp_path):
    study = Study("perm", _run, _Config, {"quick": _Config(), "full": _Config()}, paper="none")
    outcome = run_study(study, out=tmp_path / "reports")
    assert outcome.status == "passed"
    names = {p.name for p in (tmp_path / "reports" / "perm").iterdir()}
    assert {"config.json", "result.json", "report.md", "line.png"} <= names
    assert modes_under(tmp_path / "reports") == {}
