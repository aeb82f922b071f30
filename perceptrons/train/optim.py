"""Optimiser and learning-rate schedule factories built from their configs."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR

from perceptrons.train.config import OptimizerConfig, ScheduleConfig

__all__ = ["lr_factor", "make_optimizer", "make_scheduler", "schedule_function"]


def make_optimizer(
    params: Iterable[torch.Tensor] | Iterable[dict[str, Any]], config: OptimizerConfig
) -> torch.optim.Optimizer:
    """Build the torch optimiser described by ``config``.

    Args:
        params: Parameters (or parameter groups) to optimise, e.g. ``model.parameters()``.
        config: Which optimiser and its hyper-parameters.

    Returns:
        A `torch.optim.SGD`, `torch.optim.Adam` or `torch.optim.AdamW`.
    """
    if config.name == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    if config.name == "adam":
        return torch.optim.Adam(
            params,
            lr=config.lr,
            betas=config.betas,
            eps=config.eps,
            weight_decay=config.weight_decay,
            fused=config.fused or None,
        )
    if config.name == "adamw":
        return torch.optim.AdamW(
            params,
            lr=config.lr,
            betas=config.betas,
            eps=config.eps,
            weight_decay=config.weight_decay,
            fused=config.fused or None,
        )
    raise ValueError(f"name: unknown optimizer {config.name!r}")  # unreachable: Literal-checked


def lr_factor(config: ScheduleConfig, step: int, total_steps: int) -> float:
    """Learning-rate factor after ``step`` completed optimiser steps (closed forms in
    `ScheduleConfig`).

    Args:
        config: The schedule.
        step: Number of completed optimiser steps ``t >= 0``.
        total_steps: Total number of steps ``T >= 1`` of the run.

    Returns:
        The factor multiplying the base learning rate for the next step.
    """
    warmup = config.warmup_steps
    if step < warmup:
        return (step + 1) / warmup
    after = step - warmup
    span = max(1, total_steps - warmup)
    ratio = config.min_lr_ratio
    if config.name == "constant":
        return 1.0
    if config.name == "cosine":
        progress = min(after, span) / span
        return ratio + (1.0 - ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
    if config.name == "linear":
        return 1.0 - (1.0 - ratio) * min(after, span) / span
    if config.name == "step":
        return config.gamma ** (after // config.step_size)
    raise ValueError(f"name: unknown schedule {config.name!r}")  # unreachable: Literal-checked


def schedule_function(config: ScheduleConfig, total_steps: int) -> Callable[[int], float]:
    """``t -> lr_factor(config, t, total_steps)``, the function given to `LambdaLR`.

    A closure (not a callable object), so `LambdaLR.state_dict` stays plain JSON.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps: must be >= 1, got {total_steps!r}")

    def factor(step: int) -> float:
        return lr_factor(config, step, total_steps)

    return factor


def make_scheduler(
    optimizer: torch.optim.Optimizer, config: ScheduleConfig, total_steps: int
) -> LambdaLR:
    """Build a `LambdaLR` scheduler (stepped once after every optimiser step).

    Args:
        optimizer: The optimiser whose groups' ``lr`` is scaled.
        config: The schedule.
        total_steps: Total number of optimiser steps of the run (``>= 1``).

    Returns:
        The scheduler; its ``state_dict()`` is JSON-able.
    """
    return LambdaLR(optimizer, schedule_function(config, total_steps))
