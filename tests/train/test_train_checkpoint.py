"""Checkpoints: round trip, atomic layout, pruning, validation, no pickle, layering."""

from __future__ import annotations

import ast
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import perceptrons.train
from perceptrons.data.loader import TensorLoader
from perceptrons.train import (
    FitConfig,
    OptimizerConfig,
    ScheduleConfig,
    fit,
    latest_checkpoint,
    load_checkpoint,
    make_optimizer,
    make_scheduler,
    save_checkpoint,
)
from perceptrons.train.checkpoint import capture_rng_state, restore_rng_state, truncate_metrics

TRAIN_DIR = Path(perceptrons.train.__file__).parent
LOADER = TRAIN_DIR.parent / "data" / "loader.py"


def _setup(seed: int = 0, name: str = "adamw"):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.BatchNorm1d(8), nn.Linear(8, 2))
    momentum = 0.9 if name == "sgd" else 0.0
    optimizer = make_optimizer(model.parameters(), OptimizerConfig(name=name, momentum=momentum))
    scheduler = make_scheduler(optimizer, ScheduleConfig(name="cosine", warmup_steps=2), 20)
    return model, optimizer, scheduler


def _train(model, optimizer, scheduler, steps: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(16, 4, generator=g)
        optimizer.zero_grad()
        model(x).pow(2).mean().backward()
        optimizer.step()
        scheduler.step()


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_round_trip_continues_identically(tmp_path, name):
    model, optimizer, scheduler = _setup(name=name)
    _train(model, optimizer, scheduler, 3)
    path = save_checkpoint(
        tmp_path,
        3,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        state={"note": [1, 2]},
        tensors={"extra": torch.arange(3)},
    )
    assert path == tmp_path / "step_00000003"
    clone, clone_opt, clone_sched = _setup(seed=5, name=name)
    ckpt = load_checkpoint(path, model=clone, optimizer=clone_opt, scheduler=clone_sched)
    assert ckpt.step == 3 and ckpt.state == {"note": [1, 2]}
    assert torch.equal(ckpt.tensors["extra"], torch.arange(3))
    assert clone_sched.state_dict() == scheduler.state_dict()
    assert clone_opt.param_groups[0].keys() == optimizer.param_groups[0].keys()
    if name != "sgd":
        assert isinstance(clone_opt.param_groups[0]["betas"], tuple)
    _train(model, optimizer, scheduler, 4, seed=2)
    _train(clone, clone_opt, clone_sched, 4, seed=2)
    for (k, a), b in zip(model.state_dict().items(), clone.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_layout_is_safetensors_and_json_only(tmp_path):
    model, optimizer, scheduler = _setup()
    _train(model, optimizer, scheduler, 2)
    path = save_checkpoint(tmp_path, 2, model=model, optimizer=optimizer, scheduler=scheduler)
    names = sorted(p.name for p in path.iterdir())
    assert names == [
        "model.safetensors",
        "optimizer.json",
        "optimizer.safetensors",
        "state.json",
        "state.safetensors",
    ]
    assert (tmp_path / "latest").read_text().strip() == "step_00000002"
    json.loads((path / "optimizer.json").read_text())
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_no_pickle_anywhere_in_train():
    for source in [*TRAIN_DIR.glob("*.py"), LOADER]:
        text = source.read_text()
        for banned in ("import pickle", "torch.load(", "torch.save(", "weights_only"):
            assert banned not in text, f"{source.name} uses {banned}"


ALLOWED = {"perceptrons.config", "perceptrons.io", "torch", "numpy", "rich", "safetensors"}


@pytest.mark.parametrize("source", [*sorted(TRAIN_DIR.glob("*.py")), LOADER], ids=lambda p: p.name)
def test_layering(source):
    """train/ imports only config and io from perceptrons; data/loader.py the same."""
    tree = ast.parse(source.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            if name.startswith("perceptrons."):
                allowed = name.startswith("perceptrons.train.") and source.parent == TRAIN_DIR
                assert allowed or name in ALLOWED, f"{source.name} imports {name}"


def test_missing_file_is_named(tmp_path):
    model, optimizer, scheduler = _setup()
    path = save_checkpoint(tmp_path, 1, model=model, optimizer=optimizer, scheduler=scheduler)
    (path / "optimizer.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="optimizer.safetensors"):
        load_checkpoint(path, model=model, optimizer=optimizer)
    (path / "state.json").unlink()
    with pytest.raises(FileNotFoundError, match="state.json"):
        load_checkpoint(path, model=model)
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "step_00000099")


def test_optimiser_state_of_other_parameter_groups_is_refused_by_name(tmp_path):
    """A checkpoint whose optimiser grouped the parameters otherwise (one group) cannot load
    into an optimiser with decay / no-decay groups: the error names the file and both layouts,
    and the model weights alone still load."""
    model, optimizer, scheduler = _setup()
    _train(model, optimizer, scheduler, 2)
    path = save_checkpoint(tmp_path, 2, model=model, optimizer=optimizer, scheduler=scheduler)
    groups = [
        {"params": [model[0].weight, model[3].weight]},
        {"params": [model[0].bias, model[2].weight, model[2].bias, model[3].bias]},
    ]
    grouped = torch.optim.AdamW(groups, weight_decay=0.0)
    with pytest.raises(ValueError, match=r"optimizer\.json.*sizes \[6\].*optimiser \[2, 4\]"):
        load_checkpoint(path, model=model, optimizer=grouped)
    fresh, _, _ = _setup(seed=3)
    load_checkpoint(path, model=fresh)
    pairs = zip(fresh.parameters(), model.parameters(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)


def test_load_from_root_uses_newest_and_prunes(tmp_path):
    model, optimizer, _ = _setup()
    for step in (5, 10, 15, 20):
        save_checkpoint(tmp_path, step, model=model, optimizer=optimizer, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "latest",
        "step_00000015",
        "step_00000020",
    ]
    assert load_checkpoint(tmp_path, model=model).step == 20
    with pytest.raises(ValueError, match="scheduler"):
        load_checkpoint(
            tmp_path, model=model, scheduler=make_scheduler(optimizer, ScheduleConfig(), 3)
        )


def test_half_written_temp_directory_is_ignored_and_removed(tmp_path):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 3, generator=g), torch.randn(32, 1, generator=g)

    def step(model, batch):
        return {"loss": F.mse_loss(model(batch[0]), batch[1])}

    def run(max_steps):
        torch.manual_seed(0)
        config = FitConfig(max_steps=max_steps, checkpoint_every=4, log_every=1, progress=False)
        return fit(nn.Linear(3, 1), step, TensorLoader((x, y), 8), config, out_dir=tmp_path)

    run(8)
    root = tmp_path / "checkpoints"
    partial = root / ".tmp-step_00000012-abc"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"\x00garbage")
    (root / ".latest.xyz.tmp").write_text("step_00000012")
    assert latest_checkpoint(root) == root / "step_00000008"
    result = run(12)
    assert result.resumed_from == 8 and result.steps == 12
    assert not partial.exists() and not (root / ".latest.xyz.tmp").exists()
    assert latest_checkpoint(root) == root / "step_00000012"


def test_truncate_metrics_drops_later_records_and_partial_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    lines = [json.dumps({"step": s, "split": "train", "loss": 1.0}) for s in (1, 2, 3, 4)]
    path.write_text("\n".join(lines) + '\n{"step": 5, "spl')
    kept = truncate_metrics(path, 2)
    assert [r["step"] for r in kept] == [1, 2]
    assert path.read_text().splitlines() == lines[:2]
    assert truncate_metrics(tmp_path / "none.jsonl", 3) == []


def test_rng_state_round_trip():
    tensors, plain = capture_rng_state()
    json.dumps(plain)
    a = (torch.rand(3), np.random.rand(3), random.random())  # noqa: NPY002
    restore_rng_state(tensors, json.loads(json.dumps(plain)))
    b = (torch.rand(3), np.random.rand(3), random.random())  # noqa: NPY002
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


@pytest.mark.parametrize("saved_fused", [True, False])
def test_loading_keeps_the_optimizers_own_implementation_flags(tmp_path, saved_fused):
    """`fused` is how the step runs, chosen by the caller; only the state comes from disk."""
    model = torch.nn.Linear(3, 2)
    saver = torch.optim.Adam(model.parameters(), lr=0.1, fused=saved_fused or None)
    model(torch.ones(1, 3)).sum().backward()
    saver.step()
    path = save_checkpoint(tmp_path, 1, model=model, optimizer=saver)
    loader = torch.optim.Adam(model.parameters(), lr=0.1, fused=(not saved_fused) or None)
    load_checkpoint(path, optimizer=loader)
    assert bool(loader.param_groups[0]["fused"]) is (not saved_fused)
    torch.testing.assert_close(
        loader.state_dict()["state"][0]["exp_avg"], saver.state_dict()["state"][0]["exp_avg"]
    )


# ---------------------------------------------------------------------- durability
def _small_checkpoint(root, step, seed=0):
    model, optimizer, scheduler = _setup(seed=seed)
    _train(model, optimizer, scheduler, 2)
    save_checkpoint(root, step, model=model, optimizer=optimizer, scheduler=scheduler)
    return model


def _fail_on_state_json(monkeypatch):
    """Make the checkpoint writer raise half-way: after the tensors, at its last file."""
    import perceptrons.train.checkpoint as module

    real = module.save_json

    def failing(path, data, **kwargs):
        if Path(path).name == "state.json":
            raise OSError("disk full (simulated)")
        return real(path, data, **kwargs)

    monkeypatch.setattr(module, "save_json", failing)


@pytest.mark.parametrize("step", [8, 4])  # a new checkpoint, and one replacing step 4
def test_a_write_failing_half_way_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, step):
    good = _small_checkpoint(tmp_path, 4)
    _fail_on_state_json(monkeypatch)
    with pytest.raises(OSError, match="simulated"):
        _small_checkpoint(tmp_path, step, seed=3)
    assert latest_checkpoint(tmp_path) == tmp_path / "step_00000004"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("step_")] == ["step_00000004"]
    restored, _, _ = _setup(seed=9)
    assert load_checkpoint(tmp_path, model=restored).step == 4
    for a, b in zip(good.state_dict().values(), restored.state_dict().values(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd (Linux)")
def test_checkpoint_files_and_folders_are_fsynced(tmp_path, monkeypatch):
    import os

    synced: list[str] = []
    real = os.fsync

    def recording(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    _small_checkpoint(tmp_path, 4)
    root = str(tmp_path.resolve())
    folders = [p for p in synced if Path(p).parent == Path(root) and ".tmp-step_00000004" in p]
    assert len(folders) == 1, synced  # the checkpoint's folder, before its rename
    folder = folders[0]
    files = [Path(p).name for p in synced if Path(p).parent == Path(folder)]
    final = tmp_path / "step_00000004"
    for name in (p.name for p in final.iterdir()):
        assert any(f.startswith(f".{name}.") for f in files), (name, files)
    # the folder after its files, the root (the rename) after the folder, then the pointer
    assert synced.index(folder) > max(i for i, p in enumerate(synced) if p.startswith(folder + "/"))
    assert root in synced[synced.index(folder) :]
    assert any(Path(p).name.startswith(".latest.") for p in synced)
