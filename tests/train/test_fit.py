"""fit: learning, clipping, logging, callbacks, epochs, errors, RNG hygiene, in-process resume."""

from __future__ import annotations

import collections
import json
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from perceptrons.data.loader import TensorLoader
from perceptrons.train import (
    Callback,
    EarlyStopping,
    Evaluator,
    FitConfig,
    OptimizerConfig,
    ScheduleConfig,
    TrainState,
    fit,
)
from perceptrons.train.loop import _to_device
from perceptrons.train.progress import progress_enabled


def _problem(n: int = 64, d: int = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = x @ torch.randn(d, 1, generator=g) + 0.01 * torch.randn(n, 1, generator=g)
    return x, y


def _mlp(d: int = 5, dropout: float = 0.0, seed: int = 0) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(d, 16), nn.Tanh(), nn.Dropout(dropout), nn.Linear(16, 1))


def mse_step(model, batch):
    x, y = batch
    return {"loss": F.mse_loss(model(x), y)}


def _config(**kwargs) -> FitConfig:
    kwargs.setdefault("progress", False)
    return FitConfig(**kwargs)


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_loss_decreases_on_regression():
    x, y = _problem()
    model = nn.Linear(5, 1)
    config = _config(max_steps=150, log_every=10, optimizer=OptimizerConfig(lr=0.05))
    result = fit(model, mse_step, TensorLoader((x, y), 16), config)
    losses = [r["loss"] for r in result.history if r["split"] == "train"]
    assert len(losses) == 15
    assert losses[-1] < 0.01 * losses[0]
    assert result.final["loss"] == losses[-1]
    assert result.steps == 150 and result.epochs == pytest.approx(150 / 4)
    assert not result.stopped_early and result.resumed_from is None and result.wall_time > 0


class GradNorms(Callback):
    def __init__(self) -> None:
        self.norms: list[float] = []

    def on_step_end(self, state: TrainState) -> None:
        grads = [p.grad for p in state.model.parameters()]
        self.norms.append(torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads])).item())


def test_grad_clipping_caps_the_norm():
    x, y = _problem()
    recorder = GradNorms()
    config = _config(max_steps=20, log_every=1, grad_clip_norm=0.05)
    result = fit(
        _mlp(),
        lambda m, b: {"loss": 100 * mse_step(m, b)["loss"]},
        TensorLoader((x, y), 16),
        config,
        [recorder],
    )
    pre_clip = [r["grad_norm"] for r in result.history]
    assert min(pre_clip) > 0.05  # clipping was active on every step
    assert max(recorder.norms) <= 0.05 * (1 + 1e-4)
    assert min(recorder.norms) >= 0.05 * (1 - 1e-4)


def test_train_records_average_the_window_and_match_metrics_file(tmp_path):
    x, y = _problem()
    seen = []

    def step(model, batch):
        out = mse_step(model, batch)
        seen.append((out["loss"].item(), float(len(batch[0]))))
        return {**out, "size": torch.tensor(float(len(batch[0]))), "const": 2.0}

    lrs = []

    class LR(Callback):
        def on_step_end(self, state):
            lrs.append(state.scheduler.get_last_lr()[0])

    config = _config(
        max_steps=10,
        log_every=3,
        optimizer=OptimizerConfig(lr=0.1),
        schedule=ScheduleConfig(name="linear"),
    )
    result = fit(_mlp(), step, TensorLoader((x, y), 24), config, [LR()], out_dir=tmp_path)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert records == result.history
    assert [r["step"] for r in records] == [3, 6, 9, 10]
    windows = [(0, 3), (3, 6), (6, 9), (9, 10)]
    for record, (lo, hi) in zip(records, windows, strict=True):
        assert set(record) == {"step", "epoch", "split", "loss", "lr", "time", "size", "const"}
        assert record["split"] == "train" and record["const"] == 2.0
        assert record["loss"] == pytest.approx(np.mean([s[0] for s in seen[lo:hi]]), rel=1e-6)
        assert record["size"] == pytest.approx(np.mean([s[1] for s in seen[lo:hi]]))
        assert record["epoch"] == pytest.approx(record["step"] / 3)
        # lr of the last step of the window: base * (1 - (step - 1) / total)
        assert record["lr"] == pytest.approx(0.1 * (1 - (record["step"] - 1) / 10))
    assert [r["time"] for r in records] == sorted(r["time"] for r in records)


def test_evaluator_records_and_restores_mode():
    x, y = _problem()
    calls = []

    def validate(model):
        assert not model.training and not torch.is_grad_enabled()
        calls.append(True)
        return {"loss": F.mse_loss(model(x), y).item(), "n": len(calls)}

    class Mode(Callback):
        def on_step_end(self, state):
            assert state.model.training

    config = _config(max_steps=12, log_every=100)
    result = fit(
        _mlp(), mse_step, TensorLoader((x, y), 16), config, [Evaluator(validate, every=5), Mode()]
    )
    evals = [r for r in result.history if r["split"] == "val"]
    assert [r["step"] for r in evals] == [5, 10, 12]
    assert all(set(r) == {"step", "epoch", "split", "time", "loss", "n"} for r in evals)
    assert result.final["val/loss"] == evals[-1]["loss"] and result.final["val/n"] == 3
    assert result.final["loss"] == result.history[-2]["loss"]  # the train record at step 12


def test_evaluator_not_repeated_at_the_end():
    x, y = _problem()
    config = _config(max_steps=10, log_every=100)
    result = fit(
        _mlp(),
        mse_step,
        TensorLoader((x, y), 16),
        config,
        [Evaluator(lambda m: {"v": 1.0}, every=5, split="test")],
    )
    assert [r["step"] for r in result.history if r["split"] == "test"] == [5, 10]


@pytest.mark.parametrize("mode", ["min", "max"])
def test_early_stopping_stops_after_patience(mode):
    x, y = _problem()
    values = iter([1.0, 2.0, 0.5, 0.5, 0.6, 0.4, 0.4, 0.4, 0.4, 0.4] * 3)
    sign = 1.0 if mode == "min" else -1.0
    stopper = EarlyStopping("val/m", mode=mode, patience=3, min_delta=0.05)
    config = _config(max_steps=1000, log_every=100)
    result = fit(
        _mlp(),
        mse_step,
        TensorLoader((x, y), 16),
        config,
        [Evaluator(lambda m: {"m": sign * next(values)}, every=2), stopper],
    )
    # evaluations at steps 2, 4, ...: best improves at 1.0 (step 2), 0.5 (6), 0.4 (12),
    # then three evaluations without an improvement > min_delta: stop at step 18.
    assert result.stopped_early and result.steps == 18
    assert stopper.best == sign * 0.4 and stopper.best_step == 12 and stopper.stopped_step == 18
    assert [r["step"] for r in result.history if r["split"] == "val"][-1] == 18


def test_early_stopping_without_metric_raises():
    x, y = _problem()
    config = _config(max_steps=6, log_every=100)
    with pytest.raises(KeyError, match="val/accuracy.*val/loss"):
        fit(
            _mlp(),
            mse_step,
            TensorLoader((x, y), 16),
            config,
            [Evaluator(lambda m: {"loss": 1.0}, every=2), EarlyStopping("val/accuracy")],
        )
    with pytest.raises(KeyError, match="never|not found"):
        fit(_mlp(), mse_step, TensorLoader((x, y), 16), config, [EarlyStopping()])


def test_max_epochs_counts_every_sample_once_per_epoch():
    x, y = _problem(n=10)
    ids = torch.arange(10)
    seen = collections.Counter()

    def step(model, batch):
        xb, yb, idx = batch
        seen.update(idx.tolist())
        return mse_step(model, (xb, yb))

    config = _config(max_steps=None, max_epochs=3, log_every=2)
    result = fit(_mlp(), step, TensorLoader((x, y, ids), 4), config)
    assert result.steps == 9 and result.epochs == pytest.approx(3.0)
    assert seen == {i: 3 for i in range(10)}


def test_plain_list_data_and_passes_without_len():
    x, y = _problem(n=8)
    batches = [(x[:4], y[:4]), (x[4:], y[4:])]
    result = fit(_mlp(), mse_step, batches, _config(max_steps=5, log_every=1))
    assert result.steps == 5 and result.epochs == pytest.approx(2.5)
    result = fit(_mlp(), mse_step, (b for b in [batches[0]] * 3), _config(max_steps=3))
    assert result.steps == 3
    with pytest.raises(ValueError, match="max_epochs.*len"):
        fit(_mlp(), mse_step, iter(batches), _config(max_steps=None, max_epochs=1))


def test_missing_and_nonfinite_loss_name_the_step():
    x, y = _problem()
    loader = TensorLoader((x, y), 16)
    calls = iter(range(100))

    def no_loss(model, batch):
        return (
            {"mse": mse_step(model, batch)["loss"]} if next(calls) == 2 else mse_step(model, batch)
        )

    with pytest.raises(ValueError, match=r"step 3: .*'loss'.*\['mse'\]"):
        fit(_mlp(), no_loss, loader, _config(max_steps=5))

    def nan_at_4(model, batch):
        loss = mse_step(model, batch)["loss"]
        return {"loss": loss * float("nan") if next(calls) == 3 else loss}

    calls = iter(range(100))
    with pytest.raises(FloatingPointError, match="step 4"):
        fit(_mlp(), nan_at_4, loader, _config(max_steps=5))
    with pytest.raises(ValueError, match="step 1: 'loss' must be a scalar"):
        fit(_mlp(), lambda m, b: {"loss": (m(b[0]) - b[1]) ** 2}, loader, _config(max_steps=2))
    with pytest.raises(ValueError, match="metric 'vec' must be a scalar"):
        fit(_mlp(), lambda m, b: {**mse_step(m, b), "vec": b[1]}, loader, _config(max_steps=2))


def test_configuration_errors(tmp_path):
    x, y = _problem()
    batches = [(x, y)]
    with pytest.raises(ValueError, match="out_dir"):
        fit(_mlp(), mse_step, TensorLoader((x, y), 16), _config(checkpoint_every=2))
    with pytest.raises(ValueError, match="state_dict"):
        fit(_mlp(), mse_step, batches, _config(checkpoint_every=2), out_dir=tmp_path)
    with pytest.raises(ValueError, match="no batches"):
        fit(_mlp(), mse_step, [], _config())
    with pytest.raises(TypeError, match=r"callbacks\[0\]"):
        fit(_mlp(), mse_step, batches, _config(), [print])


def test_global_rng_states_untouched():
    x, y = _problem()
    torch.manual_seed(123)
    np_state, py_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    before = torch.get_rng_state()
    fit(_mlp(dropout=0.5), mse_step, TensorLoader((x, y), 16), _config(max_steps=5))
    assert torch.equal(before, torch.get_rng_state())
    assert random.getstate() == py_state
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), np_state, strict=True))  # noqa: NPY002


def test_seed_determines_dropout():
    x, y = _problem()
    runs = {}
    for seed in (0, 0, 1):
        model = _mlp(dropout=0.5)
        fit(model, mse_step, TensorLoader((x, y), 16), _config(max_steps=8, seed=seed))
        runs.setdefault(seed, []).append(_weights(model))
    assert _same(runs[0][0], runs[0][1])
    assert not _same(runs[0][0], runs[1][0])


def test_batches_are_moved_recursively():
    Pair = collections.namedtuple("Pair", "a b")
    batch = {"x": [torch.zeros(2), (torch.ones(1), 3)], "p": Pair(torch.zeros(1), "s")}
    moved = _to_device(batch, torch.device("meta"))
    assert moved["x"][0].is_meta and moved["x"][1][0].is_meta and moved["x"][1][1] == 3
    assert isinstance(moved["p"], Pair) and moved["p"].a.is_meta and moved["p"].b == "s"
    assert isinstance(moved["x"], list) and isinstance(moved["x"][1], tuple)


def test_progress_enabled_rules(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    assert not progress_enabled(False)
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert progress_enabled(True)
    monkeypatch.setenv("CI", "1")
    assert not progress_enabled(True)


class Interrupt(Callback):
    """Raises at a given step, standing in for a crash."""

    def __init__(self, at: int | None) -> None:
        self.at = at

    def on_step_end(self, state: TrainState) -> None:
        if state.step == self.at:
            raise KeyboardInterrupt


def _resumable_run(out_dir, interrupt_at=None, **overrides):
    x, y = _problem()
    x_val, y_val = _problem(seed=1)
    model = _mlp(dropout=0.3)
    config = _config(
        max_steps=30,
        log_every=4,
        checkpoint_every=5,
        grad_clip_norm=1.0,
        schedule=ScheduleConfig(name="cosine", warmup_steps=4),
        optimizer=OptimizerConfig(lr=0.01, weight_decay=0.1),
        **overrides,
    )
    callbacks = [
        Evaluator(lambda m: {"loss": F.mse_loss(m(x_val), y_val).item()}, every=6),
        EarlyStopping(patience=100),
    ]
    callbacks.append(Interrupt(interrupt_at))  # the same callbacks in every session
    result = fit(
        model, mse_step, TensorLoader((x, y), 16, seed=4), config, callbacks, out_dir=out_dir
    )
    return model, result


def _strip_time(history):
    return [{k: v for k, v in r.items() if k != "time"} for r in history]


@pytest.mark.parametrize("interrupt_at", [3, 10, 13, 29])
def test_in_process_resume_is_exact(tmp_path, interrupt_at):
    reference, expected = _resumable_run(tmp_path / "ref")
    with pytest.raises(KeyboardInterrupt):
        _resumable_run(tmp_path / "run", interrupt_at)
    model, result = _resumable_run(tmp_path / "run")
    # the interrupt fires in on_step_end, before that step's checkpoint
    assert result.resumed_from == ((interrupt_at - 1) // 5 * 5 or None)
    assert _same(_weights(model), _weights(reference))
    # the open log window (log_every=4 is not a multiple of checkpoint_every=5) is restored
    assert _strip_time(result.history) == _strip_time(expected.history)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert _strip_time([json.loads(line) for line in lines]) == _strip_time(expected.history)


def test_finished_run_is_not_repeated(tmp_path):
    _, first = _resumable_run(tmp_path)
    model, again = _resumable_run(tmp_path)
    assert again.resumed_from == 30 and again.steps == 30
    assert again.history == first.history and again.final == first.final


def test_resume_false_starts_again(tmp_path):
    _resumable_run(tmp_path)
    model = _mlp(dropout=0.3)
    x, y = _problem()
    config = _config(max_steps=10, log_every=5, checkpoint_every=5)
    result = fit(model, mse_step, TensorLoader((x, y), 16), config, out_dir=tmp_path, resume=False)
    assert result.resumed_from is None and result.steps == 10
    assert [r["step"] for r in result.history] == [5, 10]
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["latest", "step_00000005", "step_00000010"]


def test_early_stopped_run_stays_stopped(tmp_path):
    x, y = _problem()
    values = iter([1.0] + [2.0] * 100)

    def run():
        callbacks = [
            Evaluator(lambda m: {"loss": next(values)}, every=2),
            EarlyStopping(patience=2),
        ]
        config = _config(max_steps=100, checkpoint_every=3)
        return fit(_mlp(), mse_step, TensorLoader((x, y), 16), config, callbacks, out_dir=tmp_path)

    first = run()
    assert first.stopped_early and first.steps == 6
    second = run()
    assert second.stopped_early and second.steps == 6 and second.resumed_from == 6


def test_mismatched_callbacks_on_resume(tmp_path):
    x, y = _problem()
    config = _config(max_steps=10, checkpoint_every=5)
    evaluator = Evaluator(lambda m: {"loss": 1.0}, every=5)
    fit(_mlp(), mse_step, TensorLoader((x, y), 16), config, [evaluator], out_dir=tmp_path)
    with pytest.raises(ValueError, match="callbacks"):
        fit(_mlp(), mse_step, TensorLoader((x, y), 16), config, out_dir=tmp_path)


def _tree(root):
    """Every path under ``root`` with its bytes and modification time."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def _short_run(out_dir, config, *, resume=True):
    x, y = _problem()
    loader = TensorLoader((x, y), 16, seed=4)
    model = _mlp(dropout=0.3)
    return model, fit(model, mse_step, loader, config, out_dir=out_dir, resume=resume)


BASE = dict(max_steps=12, log_every=4, checkpoint_every=4, optimizer=OptimizerConfig(lr=0.1))


@pytest.mark.parametrize(
    ("change", "paths"),
    [
        ({"optimizer": OptimizerConfig(lr=1e-4)}, ["optimizer.lr"]),
        (
            {"optimizer": OptimizerConfig(name="sgd", lr=0.1, momentum=0.5), "seed": 3},
            ["optimizer.name", "optimizer.momentum", "seed"],
        ),
        (
            {"schedule": ScheduleConfig(name="cosine"), "grad_clip_norm": 1.0},
            ["schedule.name", "grad_clip_norm"],
        ),
    ],
)
def test_resume_under_another_config_is_refused(tmp_path, change, paths):
    _short_run(tmp_path, _config(**BASE))
    # a crash left a temporary folder: the refused call must not clean it either
    (tmp_path / "checkpoints" / ".tmp-step_00000099-x").mkdir()
    before = _tree(tmp_path)
    with pytest.raises(ValueError) as caught:
        _short_run(tmp_path, _config(**{**BASE, "max_steps": 20, **change}))
    message = str(caught.value)
    for path in paths:
        assert f"{path}: " in message
    assert "resume=False" in message and "out_dir" in message
    assert "max_steps" not in message.split("differs")[1].split("only")[0]
    assert "optimizer.lr: 0.1 -> 0.0001" in message or "optimizer.lr" not in paths
    assert _tree(tmp_path) == before


def test_resume_with_only_presentation_changes(tmp_path):
    _short_run(tmp_path / "ref", _config(**{**BASE, "max_steps": 20, "keep_checkpoints": 3}))
    _short_run(tmp_path / "run", _config(**BASE))
    changed = {
        **BASE,
        "max_steps": 20,
        "keep_checkpoints": 3,
        "progress": False,
        "checkpoint_every": 4,
    }
    _, result = _short_run(tmp_path / "run", _config(**changed))
    assert result.resumed_from == 12


def test_longer_budget_resumes_bit_identically(tmp_path):
    reference, expected = _short_run(tmp_path / "ref", _config(**{**BASE, "max_steps": 20}))
    _short_run(tmp_path / "run", _config(**BASE))
    model, result = _short_run(tmp_path / "run", _config(**{**BASE, "max_steps": 20}))
    assert result.resumed_from == 12 and result.steps == 20
    assert _same(_weights(model), _weights(reference))
    assert _strip_time(result.history) == _strip_time(expected.history)


def test_max_epochs_instead_of_max_steps_resumes(tmp_path):
    _short_run(tmp_path, _config(**BASE))  # 64 rows / 16 = 4 batches per epoch
    epochs = {**BASE, "max_steps": None, "max_epochs": 5}
    _, result = _short_run(tmp_path, _config(**epochs))
    assert result.resumed_from == 12 and result.steps == 20


def test_resume_false_replaces_a_run_under_another_config(tmp_path):
    _short_run(tmp_path, _config(**BASE))
    changed = _config(**{**BASE, "optimizer": OptimizerConfig(lr=1e-4)})
    _, result = _short_run(tmp_path, changed, resume=False)
    assert result.resumed_from is None and result.steps == 12
    _, again = _short_run(tmp_path, changed)  # the new run's checkpoints are its own
    assert again.resumed_from == 12
