"""`RestoreBest`: the best evaluated weights back at the end, through checkpoints and resume."""

from __future__ import annotations

import math

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
    RestoreBest,
    TrainState,
    fit,
)


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


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class Snapshots(Callback):
    """The model's weights at every evaluated step (put between the Evaluator and
    RestoreBest)."""

    def __init__(self) -> None:
        self.at: dict[int, dict[str, torch.Tensor]] = {}

    def on_step_end(self, state: TrainState) -> None:
        if state.eval_step == state.step:
            self.at[state.step] = _weights(state.model)

    def on_fit_end(self, state: TrainState) -> None:
        self.on_step_end(state)


class Interrupt(Callback):
    def __init__(self, at: int | None) -> None:
        self.at = at

    def on_step_end(self, state: TrainState) -> None:
        if state.step == self.at:
            raise KeyboardInterrupt


def _scripted(values):
    """An evaluation fn returning ``values`` one after the other."""
    it = iter(values)
    return lambda m: {"m": next(it)}


def _wiggly(m: nn.Module) -> dict[str, float]:
    """A deterministic function of the weights that goes up and down as they train."""
    total = float(sum(p.detach().double().sum() for p in m.parameters()))
    return {"m": math.sin(1e3 * total)}


@pytest.mark.parametrize(("mode", "best"), [("max", 6), ("min", 3)])
def test_restores_the_best_not_the_last(mode, best):
    x, y = _problem()
    model = _mlp()
    snapshots = Snapshots()
    keeper = RestoreBest("val/m", mode=mode)
    callbacks = [Evaluator(_scripted([0.3, 0.9, 0.5, 0.7]), every=3), snapshots, keeper]
    config = FitConfig(max_steps=12, progress=False, optimizer=OptimizerConfig(lr=0.05))
    fit(model, mse_step, TensorLoader((x, y), 16), config, callbacks)
    assert sorted(snapshots.at) == [3, 6, 9, 12]
    assert keeper.best_step == best and keeper.best_value == (0.9 if mode == "max" else 0.3)
    assert keeper.restored_step == 12
    assert _same(_weights(model), snapshots.at[best])
    assert not _same(_weights(model), snapshots.at[12])


def test_best_at_the_last_step_keeps_the_weights_and_the_final_evaluation_counts():
    x, y = _problem()
    model = _mlp()
    keeper = RestoreBest("val/m")
    snapshots = Snapshots()
    # every=5 over 12 steps: evaluations at 5, 10 and (at the end) 12
    callbacks = [Evaluator(_scripted([0.1, 0.2, 0.8]), every=5), snapshots, keeper]
    config = FitConfig(max_steps=12, progress=False)
    fit(model, mse_step, TensorLoader((x, y), 16), config, callbacks)
    assert keeper.best_step == 12 and keeper.best_value == 0.8 and keeper.restored_step is None
    assert _same(_weights(model), snapshots.at[12])


def test_nan_values_never_count_as_best():
    x, y = _problem()
    keeper = RestoreBest("val/m")
    callbacks = [Evaluator(_scripted([float("nan"), 0.4, float("nan"), 0.2]), every=3), keeper]
    fit(
        _mlp(),
        mse_step,
        TensorLoader((x, y), 16),
        FitConfig(max_steps=12, progress=False),
        callbacks,
    )
    assert (keeper.best_step, keeper.best_value) == (6, 0.4)


def test_missing_metric_is_named():
    x, y = _problem()
    config = FitConfig(max_steps=6, progress=False)
    loader = TensorLoader((x, y), 16)
    with pytest.raises(KeyError, match=r"RestoreBest: metric 'val/auc' not found.*have: val/loss"):
        fit(
            _mlp(),
            mse_step,
            loader,
            config,
            [Evaluator(lambda m: {"loss": 1.0}, every=2), RestoreBest()],
        )
    with pytest.raises(KeyError, match=r"'val/auc' not found .*have: none"):
        fit(_mlp(), mse_step, loader, config, [RestoreBest()])


def test_before_its_evaluator_is_refused():
    x, y = _problem()
    config = FitConfig(max_steps=6, progress=False)
    callbacks = [RestoreBest("val/m"), Evaluator(_scripted([1.0, 2.0, 3.0]), every=2)]
    with pytest.raises(ValueError, match="after the Evaluator"):
        fit(_mlp(), mse_step, TensorLoader((x, y), 16), config, callbacks)


def test_bad_mode_and_checkpoints_without_directory(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        RestoreBest(mode="best")  # type: ignore[arg-type]
    x, y = _problem()
    config = FitConfig(max_steps=6, checkpoint_every=3, progress=False)
    callbacks = [Evaluator(_wiggly, every=2), RestoreBest("val/m")]
    with pytest.raises(ValueError, match=r"RestoreBest\(directory=\.\.\.\)"):
        fit(_mlp(), mse_step, TensorLoader((x, y), 16), config, callbacks, out_dir=tmp_path)


def _resumable_run(out_dir, interrupt_at=None, max_steps=30, **overrides):
    x, y = _problem()
    model = _mlp(dropout=0.3)
    config = FitConfig(
        max_steps=max_steps,
        log_every=4,
        checkpoint_every=5,
        progress=False,
        optimizer=OptimizerConfig(lr=0.02, weight_decay=0.1),
        **overrides,
    )
    keeper = RestoreBest("val/m", directory=out_dir / "restore_best")
    callbacks = [
        Evaluator(_wiggly, every=3),
        keeper,
        EarlyStopping("val/m", mode="max", patience=100),
        Interrupt(interrupt_at),  # the same callbacks in every session
    ]
    result = fit(
        model, mse_step, TensorLoader((x, y), 16, seed=4), config, callbacks, out_dir=out_dir
    )
    return model, keeper, result


def _strip_time(history):
    return [{k: v for k, v in r.items() if k != "time"} for r in history]


@pytest.mark.parametrize("interrupt_at", [4, 8, 14, 29])
def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path, interrupt_at):
    reference, ref_keeper, expected = _resumable_run(tmp_path / "ref")
    assert ref_keeper.best_step not in (None, 30)  # the test restores an earlier step
    with pytest.raises(KeyboardInterrupt):
        _resumable_run(tmp_path / "run", interrupt_at)
    model, keeper, result = _resumable_run(tmp_path / "run")
    assert result.resumed_from == ((interrupt_at - 1) // 5 * 5 or None)
    assert (keeper.best_step, keeper.best_value) == (ref_keeper.best_step, ref_keeper.best_value)
    assert _same(_weights(model), _weights(reference))
    assert _strip_time(result.history) == _strip_time(expected.history)


def test_a_longer_budget_continues_from_the_last_weights_not_the_restored_ones(tmp_path):
    reference, ref_keeper, _ = _resumable_run(tmp_path / "ref", max_steps=40)
    model, keeper, first = _resumable_run(tmp_path / "run", max_steps=30)
    assert keeper.restored_step == 30
    files = sorted(p.name for p in (tmp_path / "run" / "restore_best").iterdir())
    assert f"last_step_{30:08d}.safetensors" in files
    assert f"best_step_{keeper.best_step:08d}.safetensors" in files
    model, keeper, result = _resumable_run(tmp_path / "run", max_steps=40)
    assert result.resumed_from == 30 and result.steps == 40
    assert (keeper.best_step, keeper.best_value) == (ref_keeper.best_step, ref_keeper.best_value)
    assert _same(_weights(model), _weights(reference))


def test_finished_run_resumed_again_keeps_the_best(tmp_path):
    model, keeper, _ = _resumable_run(tmp_path)
    best = _weights(model)
    again, keeper2, result = _resumable_run(tmp_path)
    assert result.resumed_from == 30 and keeper2.best_step == keeper.best_step
    assert _same(_weights(again), best)


def test_weights_files_follow_the_kept_checkpoints(tmp_path):
    _resumable_run(tmp_path, keep_checkpoints=1)
    names = {p.name for p in (tmp_path / "restore_best").iterdir()}
    # files of the newest keep_checkpoints + 1 = 2 checkpoints (steps 25 and 30) at most
    assert 1 <= len(names) <= 4
    assert all(n.startswith(("best_step_", "last_step_")) for n in names)
    ckpts = sorted(p.name for p in (tmp_path / "checkpoints").iterdir() if p.is_dir())
    assert ckpts == [f"step_{30:08d}"]


def test_resume_with_another_metric_is_refused(tmp_path):
    _resumable_run(tmp_path, max_steps=10)
    x, y = _problem()
    config = FitConfig(
        max_steps=12,
        log_every=4,
        checkpoint_every=5,
        progress=False,
        optimizer=OptimizerConfig(lr=0.02, weight_decay=0.1),
    )
    callbacks = [
        Evaluator(_wiggly, every=3),
        RestoreBest("val/m", mode="min", directory=tmp_path / "restore_best"),
        EarlyStopping("val/m", mode="max", patience=100),
        Interrupt(None),
    ]
    with pytest.raises(ValueError, match=r"tracked 'val/m' \(max\)"):
        fit(
            _mlp(dropout=0.3),
            mse_step,
            TensorLoader((x, y), 16, seed=4),
            config,
            callbacks,
            out_dir=tmp_path,
        )
