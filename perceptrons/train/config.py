"""Configurations of the training loop: optimiser, learning-rate schedule and `fit` itself."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from perceptrons.config import Config, require

__all__ = ["FitConfig", "OptimizerConfig", "ScheduleConfig"]


@dataclass(frozen=True, kw_only=True)
class OptimizerConfig(Config):
    """Optimiser built by `make_optimizer`.

    Attributes:
        name: Which torch optimiser: ``"sgd"``, ``"adam"`` or ``"adamw"`` (decoupled weight
            decay).
        lr: Base learning rate (before the schedule's factor).
        weight_decay: L2 penalty (sgd, adam) or decoupled weight decay (adamw).
        momentum: Heavy-ball momentum of sgd; must stay 0 for adam and adamw.
        betas: Adam's running-average coefficients for the gradient and its square.
        eps: Adam's denominator constant.
        fused: Use torch's fused single-kernel Adam/AdamW step (``fused=True``; floating
            parameters on CPU or CUDA) instead of the default multi-tensor one. Same update up
            to rounding; faster when the parameters are large (e.g. CTR embedding tables: 23
            ms -> 3 ms per step for 3.3M parameters on one CPU thread). Ignored by sgd.
        embedding_optimizer: Optimiser of the model's sparse embedding tables (the weights of
            its ``nn.Embedding``/``nn.EmbeddingBag`` modules built with ``sparse=True``, e.g.
            a CTR model with ``sparse_embeddings=True``): ``"same"`` (one optimiser ``name``
            over every parameter; sparse tables then need plain sgd), ``"sparse_adam"``
            (`torch.optim.SparseAdam`, run by its row-wise subclass `RowSparseAdam`, with
            ``betas`` and ``eps``: Adam's moments updated and applied only on the rows of the
            batch; torch adds ``eps`` to the uncorrected ``sqrt(v)``, which is Adam with
            ``eps / sqrt(1 - beta2^t)``) or ``"adagrad"`` (`torch.optim.Adagrad` with torch's
            defaults besides the learning rate, updated only on the rows of the batch) or
            ``"rowwise_adagrad"`` (`RowwiseAdagrad`: one accumulator per row, the mean of its
            squared gradient, as PyTorch-BigGraph and torchrec train their tables; state 16x
            smaller for 16-wide rows). With any of them, ``name`` optimises the other (dense)
            parameters, and the tables' update
            costs O(rows of the batch) instead of O(rows of the table). Neither has weight
            decay: ``weight_decay`` acts on the dense parameters only; an L2 penalty on the
            looked-up rows is ``CTRStep(embedding_l2=...)``.
        embedding_lr: Base learning rate of the embedding optimiser (None: ``lr``); scaled by
            the same schedule. Only with ``embedding_optimizer != "same"``.
    """

    name: Literal["sgd", "adam", "adamw"] = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    fused: bool = False
    embedding_optimizer: Literal["same", "sparse_adam", "adagrad", "rowwise_adagrad"] = "same"
    embedding_lr: float | None = None

    def validate(self) -> None:
        require(math.isfinite(self.lr) and self.lr > 0, "lr", "must be finite and > 0", self.lr)
        if self.embedding_lr is not None:
            require(
                math.isfinite(self.embedding_lr) and self.embedding_lr > 0,
                "embedding_lr",
                "must be finite and > 0 (or None: lr)",
                self.embedding_lr,
            )
            require(
                self.embedding_optimizer != "same",
                "embedding_lr",
                "is only used with embedding_optimizer 'sparse_adam', 'adagrad' or "
                "'rowwise_adagrad' (it is 'same'); leave it None",
                self.embedding_lr,
            )
        require(
            math.isfinite(self.weight_decay) and self.weight_decay >= 0,
            "weight_decay",
            "must be finite and >= 0",
            self.weight_decay,
        )
        require(0 <= self.momentum < 1, "momentum", "must be in [0, 1)", self.momentum)
        require(
            self.name == "sgd" or self.momentum == 0,
            "momentum",
            f"is only used by sgd; must be 0 for {self.name!r}",
            self.momentum,
        )
        for i, beta in enumerate(self.betas):
            require(0 <= beta < 1, f"betas[{i}]", "must be in [0, 1)", beta)
        require(math.isfinite(self.eps) and self.eps > 0, "eps", "must be finite and > 0", self.eps)


@dataclass(frozen=True, kw_only=True)
class ScheduleConfig(Config):
    """Learning-rate schedule built by `make_scheduler`: a factor multiplying the base rate.

    With ``t`` the number of completed optimiser steps, ``W = warmup_steps``, ``T`` the total
    number of steps, ``s = t - W`` and ``D = max(1, T - W)``, the factor is
    ``(t + 1) / W`` during warm-up (``t < W``) and afterwards

    * constant: ``1``;
    * cosine: ``r + (1 - r) * (1 + cos(pi * min(s, D) / D)) / 2`` with ``r = min_lr_ratio``;
    * linear: ``1 - (1 - r) * min(s, D) / D``;
    * step: ``gamma ** (s // step_size)``.

    Attributes:
        name: Shape of the schedule after warm-up: ``"constant"``, ``"cosine"``, ``"linear"``
            or ``"step"``.
        warmup_steps: Number of steps of linear warm-up from ``lr / warmup_steps`` to ``lr``
            (0 disables warm-up).
        min_lr_ratio: Final learning rate of the cosine and linear schedules as a fraction of
            the base rate.
        step_size: Steps between two decays of the step schedule.
        gamma: Multiplicative decay of the step schedule.
    """

    name: Literal["constant", "cosine", "linear", "step"] = "constant"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    step_size: int = 1000
    gamma: float = 0.1

    def validate(self) -> None:
        require(self.warmup_steps >= 0, "warmup_steps", "must be >= 0", self.warmup_steps)
        require(0 <= self.min_lr_ratio <= 1, "min_lr_ratio", "must be in [0, 1]", self.min_lr_ratio)
        require(self.step_size >= 1, "step_size", "must be >= 1", self.step_size)
        require(0 < self.gamma <= 1, "gamma", "must be in (0, 1]", self.gamma)


@dataclass(frozen=True, kw_only=True)
class FitConfig(Config):
    """Everything `fit` needs besides the model, the step and the data.

    Attributes:
        max_steps: Number of optimiser steps to run; exactly one of ``max_steps`` and
            ``max_epochs`` is set.
        max_epochs: Number of passes over the data (needs ``len(data)``); exactly one of
            ``max_steps`` and ``max_epochs`` is set.
        optimizer: The optimiser (see `OptimizerConfig`).
        schedule: The learning-rate schedule (see `ScheduleConfig`).
        grad_clip_norm: Clip the global gradient 2-norm to this value (None: no clipping);
            when set, the pre-clipping norm is logged as ``grad_norm``.
        log_every: Write a train record (window averages of the step's metrics) every this
            many steps.
        checkpoint_every: Save a resumable checkpoint every this many steps and at the end
            (None: no checkpoints). Needs ``out_dir`` and data with ``state_dict``.
        keep_checkpoints: Number of newest checkpoints kept on disk.
        progress: Show progress: a rich bar when stdout is a terminal and the ``CI`` variable
            is unset; otherwise (CI, pipes, files) a line on stderr every ``progress_every``
            steps with step/total, steps/s, rows/s (rows counted from the first tensor of each
            batch), the latest logged loss, elapsed time and ETA. False: nothing is printed.
        progress_every: Steps between two progress lines on stderr (None: the smallest
            multiple of ``log_every`` that gives at most about 20 lines per run). Unused by
            the terminal bar.
        seed: Seed of the torch random generator (dropout, sampling in the step) of a fresh run.
        device: Torch device the model and every batch are moved to, e.g. ``"cpu"``,
            ``"cuda:0"``.
    """

    max_steps: int | None = 1000
    max_epochs: int | None = None
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    grad_clip_norm: float | None = None
    log_every: int = 10
    checkpoint_every: int | None = None
    keep_checkpoints: int = 2
    progress: bool = True
    progress_every: int | None = None
    seed: int = 0
    device: str = "cpu"

    def validate(self) -> None:
        require(
            (self.max_steps is None) != (self.max_epochs is None),
            "max_steps",
            "exactly one of max_steps and max_epochs must be set (the other None), got "
            f"max_steps={self.max_steps!r}, max_epochs={self.max_epochs!r}",
        )
        if self.max_steps is not None:
            require(self.max_steps >= 1, "max_steps", "must be >= 1", self.max_steps)
        if self.max_epochs is not None:
            require(self.max_epochs >= 1, "max_epochs", "must be >= 1", self.max_epochs)
        if self.grad_clip_norm is not None:
            require(
                math.isfinite(self.grad_clip_norm) and self.grad_clip_norm > 0,
                "grad_clip_norm",
                "must be finite and > 0 (or None)",
                self.grad_clip_norm,
            )
        require(self.log_every >= 1, "log_every", "must be >= 1", self.log_every)
        if self.checkpoint_every is not None:
            require(
                self.checkpoint_every >= 1,
                "checkpoint_every",
                "must be >= 1 (or None)",
                self.checkpoint_every,
            )
        require(
            self.keep_checkpoints >= 1, "keep_checkpoints", "must be >= 1", self.keep_checkpoints
        )
        if self.progress_every is not None:
            require(
                self.progress_every >= 1,
                "progress_every",
                "must be >= 1 (or None)",
                self.progress_every,
            )
        try:
            torch.device(self.device)
        except (RuntimeError, ValueError):
            require(False, "device", "is not a valid torch device", self.device)
