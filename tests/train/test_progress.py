"""Progress of `fit`: the stderr lines off a terminal (format, cadence, rates, ETA), the choice
between bar, lines and nothing, and silence with ``progress=False``."""

from __future__ import annotations

import io
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from perceptrons.data.loader import TensorLoader
from perceptrons.train import FitConfig, fit
from perceptrons.train.progress import (
    ProgressBar,
    ProgressLines,
    batch_rows,
    default_progress_every,
    open_progress,
    progress_mode,
)

LINE = re.compile(
    r"^fit step (?P<step>\d+)/(?P<total>\d+) \((?P<pct>\d+)%\) \| loss (?P<loss>\S+) \| "
    r"(?P<steps>[\d.e+]+) steps/s, (?P<rows>[\d,]+) rows/s \| elapsed \d+:\d\d:\d\d \| "
    r"ETA \d+:\d\d:\d\d$"
)


def _run(tmp_path=None, **overrides):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 3, generator=g), torch.randn(64, 1, generator=g)
    config = FitConfig(**{"max_steps": 12, "log_every": 5, "progress_every": 5, **overrides})

    def step(model, batch):
        return {"loss": F.mse_loss(model(batch[0]), batch[1])}

    return fit(nn.Linear(3, 1), step, TensorLoader((x, y), 16), config, out_dir=tmp_path)


def test_lines_on_stderr_off_a_terminal(capsys, monkeypatch):
    monkeypatch.setenv("CI", "1")
    result = _run()
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    matches = [LINE.match(line) for line in lines]
    assert all(matches), lines
    # every 5 steps, then the last step (12 is not a multiple of 5)
    assert [int(m["step"]) for m in matches] == [5, 10, 12]
    assert {m["total"] for m in matches} == {"12"}
    assert [int(m["pct"]) for m in matches] == [41, 83, 100]
    # the latest logged loss: records at 5, 10 and the final partial window at 12
    losses = {r["step"]: r["loss"] for r in result.history}
    assert [m["loss"] for m in matches] == [f"{losses[s]:.4g}" for s in (5, 10, 12)]
    assert all(int(m["rows"].replace(",", "")) > 0 for m in matches)


def test_default_cadence_follows_log_every(capsys, monkeypatch):
    monkeypatch.setenv("CI", "1")
    _run(max_steps=100, log_every=3, progress_every=None)  # ceil(100 / 20) = 5 -> 6
    steps = [int(LINE.match(line)["step"]) for line in capsys.readouterr().err.splitlines()]
    assert steps == [*range(6, 100, 6), 100]
    assert default_progress_every(1000, 10) == 50
    assert default_progress_every(30, 4) == 4
    assert default_progress_every(7, 10) == 10


def test_progress_false_prints_nothing(capsys, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    _run(progress=False)
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)  # not even on a terminal
    _run(progress=False)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_resumed_run_counts_from_its_resume_step(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CI", "1")
    _run(tmp_path, max_steps=10, checkpoint_every=5)
    capsys.readouterr()
    _run(tmp_path, max_steps=20, checkpoint_every=5)
    steps = [int(LINE.match(line)["step"]) for line in capsys.readouterr().err.splitlines()]
    assert steps == [15, 20]
    _run(tmp_path, max_steps=20, checkpoint_every=5)  # finished: nothing to do, nothing printed
    assert capsys.readouterr().err == ""


def test_progress_mode_rules(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    assert progress_mode(False) == "off"
    monkeypatch.setattr("sys.stdout.isatty", lambda: False)
    assert progress_mode(True) == "lines"
    assert isinstance(open_progress(True, 10, every=2), ProgressLines)
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert progress_mode(True) == "bar"
    bar = open_progress(True, 10, every=2)
    assert isinstance(bar, ProgressBar) and bar.enabled
    monkeypatch.setenv("CI", "1")
    assert progress_mode(True) == "lines"
    off = open_progress(False, 10, every=2)
    assert isinstance(off, ProgressBar) and not off.enabled


def test_line_rates_and_eta_with_a_fake_clock():
    now = [100.0]
    stream = io.StringIO()
    lines = ProgressLines(100, 10, initial=20, stream=stream, clock=lambda: now[0])
    with lines:
        for step in range(21, 41):
            now[0] = 100.0 + (step - 20) * 0.5
            lines.add_rows(50)
            lines.update(step, loss=0.25 if step == 40 else None)
        assert stream.getvalue().splitlines() == [
            # 10 steps in 5 s, 500 rows; 70 steps left at 2 steps/s
            "fit step 30/100 (30%) | loss - | 2 steps/s, 100 rows/s | elapsed 0:00:05 | "
            "ETA 0:00:35",
            "fit step 40/100 (40%) | loss 0.25 | 2 steps/s, 100 rows/s | elapsed 0:00:10 | "
            "ETA 0:00:30",
        ]
        now[0] += 0.5
        lines.update(41)
        lines.update(41, loss=0.125)  # the final record of a run that stops at 41
    last = stream.getvalue().splitlines()[-1]
    assert last.startswith("fit step 41/100 (41%) | loss 0.125 | ")
    assert len(stream.getvalue().splitlines()) == 3
    # no rows counted: the rows/s part is left out
    quiet = io.StringIO()
    with ProgressLines(4, 2, stream=quiet, clock=lambda: now[0]) as other:
        now[0] += 1.0
        other.update(2)
    assert (
        quiet.getvalue()
        == "fit step 2/4 (50%) | loss - | 2 steps/s | elapsed 0:00:01 | ETA 0:00:01\n"
    )
    with pytest.raises(ValueError, match="every"):
        ProgressLines(4, 0)


def test_no_final_line_after_an_exception():
    stream = io.StringIO()
    with pytest.raises(KeyboardInterrupt), ProgressLines(10, 5, stream=stream):
        raise KeyboardInterrupt
    assert stream.getvalue() == ""


def test_batch_rows_reads_the_first_tensor():
    assert batch_rows(torch.zeros(7, 3)) == 7
    assert batch_rows((torch.zeros(5, 2), torch.zeros(9))) == 5
    assert batch_rows({"scale": torch.tensor(2.0), "x": [torch.zeros(4, 1)]}) == 4
    assert batch_rows({"name": "a", "n": 3}) is None
    assert batch_rows(torch.tensor(1.0)) is None
