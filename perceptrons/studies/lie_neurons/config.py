"""Configuration, presets and registration of the ``lie-neurons`` study.

Lin, Zhu & Ghaffari, ICML 2024, arXiv:2310.04521. The tasks, sizes marked "paper" and the
Platonic-solid numbers come from the paper's synthetic experiments as its official code
(UMich-CURLY/LieNeurons) and ICML poster give them; the paper's own result tables are not
available, so every claim threshold is ours, fixed before measuring (docs/lie-neurons.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from perceptrons.config import Config, require
from perceptrons.studies.base import StudyConfig, register_study

__all__ = ["FULL", "PAPER", "QUICK", "LieNeuronsStudyConfig", "LieTaskConfig"]

PAPER = (
    "Lin, Zhu & Ghaffari 2023, Lie Neurons: Adjoint-Equivariant Neural Networks for Semisimple "
    "Lie Algebras, ICML 2024, arXiv:2310.04521"
)


@dataclass(frozen=True, kw_only=True)
class LieTaskConfig(Config):
    """Data sizes and training of one task (every model of the task uses them).

    Attributes:
        num_train: Training samples (drawn afresh for every seed).
        num_test: Test samples (the conjugated/rotated test sets transform these).
        width: Channels of every Lie Neurons block (paper: 256; 1024 for BCH).
        steps: Optimiser steps of every model (Adam, cosine decay to 0).
        batch_size: Mini-batch size (paper: 100 for the Platonic solids).
        lr: Adam learning rate of the Lie Neurons models.
        mlp_lr: Adam learning rate of the MLP baselines.
    """

    num_train: int = 1000
    num_test: int = 1000
    width: int = 64
    steps: int = 1000
    batch_size: int = 64
    lr: float = 3e-3
    mlp_lr: float = 1e-3

    def validate(self) -> None:
        for name in ("num_train", "num_test", "width", "steps", "batch_size"):
            value = getattr(self, name)
            require(value >= 1, name, "must be >= 1", value)
        for name in ("lr", "mlp_lr"):
            value = getattr(self, name)
            require(math.isfinite(value) and value > 0, name, "must be finite and > 0", value)


@dataclass(frozen=True, kw_only=True)
class LieNeuronsStudyConfig(StudyConfig):
    """Lie Neurons against MLP baselines on the paper's synthetic tasks.

    Our choices, for a minute of CPU (docs/lie-neurons.md): widths 32-64 in ``quick`` (paper
    and ``full``: 256) and Adam with cosine decay (``quick``: learning rate 3e-3 for Lie
    Neurons, 1e-3 for MLPs) instead of the paper's constant 1e-4 / 1e-5 over hundreds of
    epochs. Every threshold is ours, fixed before measuring.

    Attributes:
        num_seeds: Independent repetitions (data, initialisation, shuffling); tables report
            mean ± std over them.
        mlp_hidden: Hidden widths of every MLP baseline (paper: three layers of 256).
        conjugation_scale: Conjugated test sets use g = exp(hat(h)), h ~ U[-s, s]^K (paper:
            0.5); also the scale of equivariance_error's group elements.
        augment_copies: Conjugated (sl3) or camera-rotated (Platonic) copies of the training
            set added for the "MLP + augmentation" baselines (paper: 1).
        error_samples: Test inputs on which equivariance_error runs (per model and seed).
        error_trials: Random group elements (one per sample per trial) of equivariance_error.
        invariant: The sl(3) invariant regression (claims ln_invariance_error,
            mlp_not_invariant, ln_conjugated_mse_unchanged).
        equivariant: The sl(3) equivariant regression (claims ln_equivariance_error,
            bracket_helps_equivariant); width is that of all three blocks.
        platonic: The Platonic-solid classification (claim platonic_rotated_accuracy).
        platonic_rotations: Random camera rotations of the whole test set (paper: 500).
        sp4: The sp(4) invariant regression (a table, no claim).
        run_sp4: Run the sp(4) task.
        bch: The so(3) BCH regression (a table against the truncated series, no claim).
        bch_max_angle: Rotation angles of the BCH inputs are U[0, bch_max_angle) (ours: below
            pi/2 stays clear of the branch cut of log at pi; the official code draws angles in
            (0, pi)).
        run_bch: Run the BCH task.
        invariance_tolerance: Claim ln_invariance_error: max relative invariance error in
            float32 (1e-5).
        invariance_tolerance_float64: Claim ln_invariance_error_float64: the same in float64
            (1e-9).
        mlp_invariance_threshold: Claim mlp_not_invariant: minimum relative invariance error
            of the MLP (0.1).
        conjugated_mse_tolerance: Claim ln_conjugated_mse_unchanged: maximum
            |MSE(conjugated) / MSE(plain) - 1| of Lie Neurons (5%).
        mlp_conjugated_mse_factor: Claim mlp_conjugated_mse_grows: minimum MSE(conjugated) /
            MSE(plain) of the MLP (2).
        equivariance_tolerance: Claim ln_equivariance_error: max relative equivariance error
            in float32 (1e-5).
        bracket_mse_ratio: Claim bracket_helps_equivariant: MSE(LN-LB, LN-LB, LN-LR) /
            MSE(LN-LR x 3) must be below this (1: "fits better").
        platonic_accuracy_threshold: Claim platonic_rotated_accuracy: minimum accuracy of
            Lie Neurons on the rotated test sets (95%; paper poster: 99.5%).
        mlp_rotated_drop: Claim mlp_rotated_accuracy_drops: minimum drop of the MLP's accuracy
            from plain to rotated test sets (0.25 for "far below"; paper poster: 95.8% ->
            36.5%).
        num_threads: torch intra-op threads while the study runs (restored afterwards); 1 is
            as fast for these small models, and 2 threads on a 2-core machine that is also
            doing anything else made the quick preset 5x slower.
    """

    num_seeds: int = 1
    mlp_hidden: tuple[int, ...] = (256, 256, 256)  # paper: 3-layer MLP, width 256
    conjugation_scale: float = 0.5  # paper
    augment_copies: int = 1  # paper: the training set doubled with one conjugated copy
    error_samples: int = 256
    error_trials: int = 20  # ours: 20 random group elements
    invariant: LieTaskConfig = LieTaskConfig(steps=800)
    equivariant: LieTaskConfig = LieTaskConfig(width=32, steps=500)
    # Samples "generated on the fly" as in the paper: one pass of steps x batch_size samples.
    platonic: LieTaskConfig = LieTaskConfig(num_train=40_000, width=32, steps=800, batch_size=50)
    platonic_rotations: int = 10
    sp4: LieTaskConfig = LieTaskConfig(steps=500)
    run_sp4: bool = True
    bch: LieTaskConfig = LieTaskConfig(width=32, steps=600)
    bch_max_angle: float = math.pi / 2  # ours: clear of the branch cut of log
    run_bch: bool = True
    invariance_tolerance: float = 1e-5  # thresholds: ours, fixed before measuring
    invariance_tolerance_float64: float = 1e-9
    mlp_invariance_threshold: float = 0.1
    conjugated_mse_tolerance: float = 0.05
    mlp_conjugated_mse_factor: float = 2.0
    equivariance_tolerance: float = 1e-5
    bracket_mse_ratio: float = 1.0  # "fits better"
    platonic_accuracy_threshold: float = 0.95
    mlp_rotated_drop: float = 0.25  # paper poster: a drop of 59 points
    num_threads: int = 1

    def validate(self) -> None:
        super().validate()
        for name in ("num_seeds", "error_samples", "error_trials", "num_threads"):
            value = getattr(self, name)
            require(value >= 1, name, "must be >= 1", value)
        require(self.augment_copies >= 0, "augment_copies", "must be >= 0", self.augment_copies)
        require(len(self.mlp_hidden) >= 1, "mlp_hidden", "needs at least one layer")
        require(
            all(w >= 1 for w in self.mlp_hidden),
            "mlp_hidden",
            "widths must be >= 1",
            self.mlp_hidden,
        )
        require(
            0 < self.conjugation_scale < math.inf,
            "conjugation_scale",
            "must be finite and > 0",
            self.conjugation_scale,
        )
        require(
            self.platonic_rotations >= 1,
            "platonic_rotations",
            "must be >= 1",
            self.platonic_rotations,
        )
        require(
            0 < self.bch_max_angle <= math.pi,
            "bch_max_angle",
            "must be in (0, pi]",
            self.bch_max_angle,
        )
        for name in (
            "invariance_tolerance",
            "invariance_tolerance_float64",
            "mlp_invariance_threshold",
            "conjugated_mse_tolerance",
            "mlp_conjugated_mse_factor",
            "equivariance_tolerance",
            "bracket_mse_ratio",
            "mlp_rotated_drop",
        ):
            value = getattr(self, name)
            require(value > 0, name, "must be > 0", value)
        require(
            0 < self.platonic_accuracy_threshold <= 1,
            "platonic_accuracy_threshold",
            "must be in (0, 1]",
            self.platonic_accuracy_threshold,
        )


QUICK = LieNeuronsStudyConfig()
FULL = LieNeuronsStudyConfig(
    num_seeds=3,  # mean ± std over 3 seeds
    invariant=LieTaskConfig(num_train=2000, num_test=2000, width=256, steps=4000, lr=1e-3),
    equivariant=LieTaskConfig(num_train=2000, num_test=2000, width=256, steps=2000, lr=1e-3),
    platonic=LieTaskConfig(
        num_train=200_000, num_test=1000, width=256, steps=2000, batch_size=100, lr=1e-3
    ),  # paper: width 256, batch 100, samples on the fly
    platonic_rotations=50,  # paper: 500
    sp4=LieTaskConfig(num_train=2000, num_test=2000, width=256, steps=4000, lr=1e-3),
    bch=LieTaskConfig(num_train=2000, num_test=2000, width=256, steps=4000, lr=1e-3),
)

register_study(
    "lie-neurons",
    config=LieNeuronsStudyConfig,
    presets={"quick": QUICK, "full": FULL},
    paper=PAPER,
    summary="Lie Neurons vs MLPs: invariance, equivariance, conjugated and rotated test sets.",
    run="perceptrons.studies.lie_neurons.run:run",
    modules=(
        "perceptrons.lie",
        "perceptrons.layers.lie",
        "perceptrons.models.lie_neurons",
        "perceptrons.data.lie",
        "perceptrons.data.platonic",
        "perceptrons.testing",
    ),
    docs="docs/lie-neurons.md",
)
