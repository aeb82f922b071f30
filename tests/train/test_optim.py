"""Optimiser factories and learning-rate schedules against their closed forms."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from perceptrons.train import OptimizerConfig, ScheduleConfig, make_optimizer, make_scheduler
from perceptrons.train.optim import lr_factor


@pytest.mark.parametrize(
    ("name", "cls"),
    [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)],
)
def test_make_optimizer_type_and_hyperparameters(name, cls):
    momentum = 0.8 if name == "sgd" else 0.0
    config = OptimizerConfig(
        name=name, lr=0.05, weight_decay=0.01, momentum=momentum, betas=(0.8, 0.99), eps=1e-6
    )
    optimizer = make_optimizer(nn.Linear(3, 2).parameters(), config)
    assert type(optimizer) is cls
    group = optimizer.param_groups[0]
    assert group["lr"] == 0.05 and group["weight_decay"] == 0.01
    if name == "sgd":
        assert group["momentum"] == 0.8
    else:
        assert tuple(group["betas"]) == (0.8, 0.99) and group["eps"] == 1e-6


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_fused_adam_takes_the_same_steps_up_to_rounding(name):
    results = []
    for fused in (False, True):
        model = nn.Linear(5, 3, dtype=torch.float64)
        with torch.no_grad():
            model.weight.copy_(torch.arange(15.0).reshape(3, 5) / 10)
            model.bias.fill_(0.1)
        optimizer = make_optimizer(
            model.parameters(), OptimizerConfig(name=name, lr=0.01, weight_decay=0.1, fused=fused)
        )
        assert bool(optimizer.param_groups[0]["fused"]) is fused
        x = torch.linspace(-1, 1, 20, dtype=torch.float64).reshape(4, 5)
        for _ in range(5):
            optimizer.zero_grad()
            (model(x) ** 2).sum().backward()
            optimizer.step()
        results.append(model.weight.detach().clone())
    torch.testing.assert_close(results[0], results[1], rtol=1e-12, atol=1e-14)
    assert not torch.equal(results[0], torch.arange(15.0, dtype=torch.float64).reshape(3, 5) / 10)


def test_sgd_step_matches_formula():
    torch.manual_seed(0)
    layer = nn.Linear(4, 1, bias=False)
    before = layer.weight.detach().clone()
    optimizer = make_optimizer(layer.parameters(), OptimizerConfig(name="sgd", lr=0.1))
    layer(torch.ones(1, 4)).sum().backward()
    optimizer.step()
    torch.testing.assert_close(layer.weight.detach(), before - 0.1 * torch.ones(1, 4))


def _lrs(config: ScheduleConfig, total: int, base: float = 2.0) -> list[float]:
    """Learning rate used by each of the ``total`` optimiser steps."""
    param = nn.Parameter(torch.zeros(()))
    optimizer = torch.optim.SGD([param], lr=base)
    scheduler = make_scheduler(optimizer, config, total)
    lrs = []
    for _ in range(total):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_constant():
    assert _lrs(ScheduleConfig(), 5) == [2.0] * 5


def test_warmup_is_linear_then_constant():
    lrs = _lrs(ScheduleConfig(warmup_steps=4), 8)
    assert lrs == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.0, 2.0, 2.0, 2.0])


def test_cosine_closed_form_with_warmup():
    warmup, total, ratio = 3, 13, 0.1
    lrs = _lrs(ScheduleConfig(name="cosine", warmup_steps=warmup, min_lr_ratio=ratio), total)
    span = total - warmup
    for t, lr in enumerate(lrs):
        if t < warmup:
            expected = (t + 1) / warmup
        else:
            expected = ratio + (1 - ratio) * 0.5 * (1 + math.cos(math.pi * (t - warmup) / span))
        assert lr == pytest.approx(2.0 * expected, rel=1e-12)
    assert lrs[warmup] == pytest.approx(2.0)  # peak right after warm-up
    assert lrs[warmup + span // 2] == pytest.approx(2.0 * (ratio + (1 - ratio) * 0.5))
    assert lr_factor(ScheduleConfig(name="cosine", min_lr_ratio=ratio), total, total) == (
        pytest.approx(ratio)
    )
    assert all(a >= b for a, b in zip(lrs[warmup:], lrs[warmup + 1 :], strict=False))


def test_linear_closed_form():
    lrs = _lrs(ScheduleConfig(name="linear", min_lr_ratio=0.5), 5)
    assert lrs == pytest.approx([2.0 * (1 - 0.5 * t / 5) for t in range(5)])
    assert lr_factor(ScheduleConfig(name="linear"), 10, 10) == 0.0


def test_step_schedule():
    lrs = _lrs(ScheduleConfig(name="step", step_size=3, gamma=0.5, warmup_steps=2), 10)
    expected = [1.0, 2.0] + [2.0 * 0.5 ** ((t - 2) // 3) for t in range(2, 10)]
    assert lrs == pytest.approx(expected)


def test_factor_stays_at_floor_after_total():
    config = ScheduleConfig(name="cosine", min_lr_ratio=0.2)
    assert lr_factor(config, 50, 10) == pytest.approx(0.2)


def test_scheduler_state_is_plain_json():
    param = nn.Parameter(torch.zeros(()))
    optimizer = torch.optim.SGD([param], lr=1.0)
    scheduler = make_scheduler(optimizer, ScheduleConfig(name="cosine", warmup_steps=2), 10)
    optimizer.step()
    scheduler.step()
    json.dumps(scheduler.state_dict(), allow_nan=False)


def test_total_steps_must_be_positive():
    param = nn.Parameter(torch.zeros(()))
    with pytest.raises(ValueError, match="total_steps"):
        make_scheduler(torch.optim.SGD([param], lr=1.0), ScheduleConfig(), 0)
