"""Measurements of the ``lie-neurons`` study: Lie Neurons and MLP baselines on synthetic tasks.

Tasks (data from `perceptrons.data.lie` and `perceptrons.data.platonic`, exact analytic
targets, drawn afresh per seed), the paper's synthetic experiments as in its official code
(UMich-CURLY/LieNeurons, ``data_gen/``):

* `invariant_experiment`: sl(3) (or sp(4)) invariant regression; ``lie_neurons`` (LN-LR ->
  self-Killing -> Linear) against ``lie_mlp`` with and without augmentation (conjugated copies
  of the training set); MSE on the plain and on a conjugated test set, and the relative
  invariance error of the *trained* models (`perceptrons.testing.equivariance_error`) in
  float32 and float64;
* `equivariant_experiment`: sl(3) equivariant regression; ``lie_neurons_equivariant`` with
  blocks (LN-LB, LN-LB, LN-LR leaky), the same with three LN-LR blocks (no bracket), and
  ``lie_mlp``;
* `platonic_experiment`: Platonic-solid classification from homographies; ``lie_neurons``
  (LN-LR -> LN-MaxPool -> self-Killing -> Linear) against the MLP with and without
  camera-rotation augmentation; accuracy on the plain test set and on the test set seen by
  ``platonic_rotations`` random cameras;
* `bch_experiment`: so(3) BCH regression against the 1st/2nd/3rd-order BCH series.

Every model is trained by `train_model` (`perceptrons.train.fit`, Adam with cosine decay: our
choice for a minute of CPU, see `LieTaskConfig`). The Platonic features are divided by one
scalar, the RMS of the training features (entries reach ~20 and the network has no
normalisation); a scalar commutes with ``Ad_g``, so invariance is untouched.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import torch
from torch import nn

from perceptrons.data.lie import (
    bch_regression,
    bch_series,
    conjugate,
    equivariant_regression,
    invariant_regression,
    random_conjugation,
    rotation_log_error,
)
from perceptrons.data.loader import TensorLoader
from perceptrons.data.platonic import platonic_homographies, random_rotations, rotate_camera
from perceptrons.lie import LieAlgebra, get_algebra
from perceptrons.registry import create_model
from perceptrons.studies.base import Table
from perceptrons.studies.common import (
    accuracy,
    format_mean_std,
    generator,
    mse,
    num_parameters,
    predict,
)
from perceptrons.studies.lie_neurons.config import LieNeuronsStudyConfig, LieTaskConfig
from perceptrons.testing import (
    EquivarianceError,
    equivariance_error,
    per_sample_equivariance_error,
)
from perceptrons.train import FitConfig, OptimizerConfig, ScheduleConfig, fit
from perceptrons.train.steps import classification_step, regression_step

__all__ = [
    "ERROR_FLOOR",
    "PAPER_PLATONIC",
    "PLATONIC_EDGES",
    "BCHRun",
    "EquivariantRun",
    "InvariantRun",
    "PlatonicRun",
    "TaskResult",
    "bch_experiment",
    "bch_seed",
    "equivariant_experiment",
    "equivariant_seed",
    "invariant_experiment",
    "invariant_seed",
    "platonic_experiment",
    "platonic_seed",
    "train_model",
]

_F32, _F64 = torch.float32, torch.float64
PLATONIC_EDGES = 12
"""Random edges per Platonic sample (the paper's official code)."""
ERROR_FLOOR = 1e-17
"""Per-sample errors below this (exact zeros) are drawn at the floor in the histograms."""
PAPER_PLATONIC = {
    "MLP": (95.76, 36.54, 206_339),
    "MLP + augmentation": (81.47, 81.20, 206_339),
    "LN-LR": (99.56, 99.51, 134_664),
}
"""The paper's Platonic-solid results (its ICML 2024 poster, in the official repository):
model -> (accuracy %, accuracy % under random camera rotations, parameters)."""


# -------------------------------------------------------------------- results
@dataclass(frozen=True)
class InvariantRun:
    """One model on one seed of an invariant regression task.

    Attributes:
        params: Number of parameters.
        seconds: Wall time of its training.
        mse: Test MSE.
        mse_conjugated: MSE on the conjugated test set (the targets are invariant).
        relative_mse: ``mse / Var(y_test)``.
        mse_ratio: ``mse_conjugated / mse``.
        mean_abs_invariance: Mean ``|f(x) - f(Ad_g x)|`` over the test set (the paper's
            invariance metric).
        invariance_float32: Relative invariance error in float32, max over trials.
        invariance_float32_median: Its median over trials.
        invariance_float64: Relative invariance error in float64, max over trials.
        hist_float32: Per-sample relative errors in float32 (histogram figure).
        hist_float64: Per-sample relative errors in float64.
    """

    params: int
    seconds: float
    mse: float
    mse_conjugated: float
    relative_mse: float
    mse_ratio: float
    mean_abs_invariance: float
    invariance_float32: float
    invariance_float32_median: float
    invariance_float64: float
    hist_float32: np.ndarray
    hist_float64: np.ndarray


@dataclass(frozen=True)
class EquivariantRun:
    """One model on one seed of the sl(3) equivariant regression.

    Attributes:
        params: Number of parameters.
        seconds: Wall time of its training.
        mse: Test MSE.
        relative_mse: ``mse / E[y_test^2]``.
        mse_conjugated: MSE on the conjugated test set against the conjugated targets.
        equivariance_float32: Relative equivariance error in float32, max over trials.
        equivariance_float32_median: Its median over trials.
        equivariance_float64: Relative equivariance error in float64, max over trials.
        hist_float32: Per-sample relative errors in float32 (histogram figure).
        hist_float64: Per-sample relative errors in float64.
    """

    params: int
    seconds: float
    mse: float
    relative_mse: float
    mse_conjugated: float
    equivariance_float32: float
    equivariance_float32_median: float
    equivariance_float64: float
    hist_float32: np.ndarray
    hist_float64: np.ndarray


@dataclass(frozen=True)
class PlatonicRun:
    """One model on one seed of the Platonic-solid classification.

    Attributes:
        params: Number of parameters.
        seconds: Wall time of its training.
        accuracy: Test accuracy.
        accuracy_rotated: Mean accuracy over the randomly rotated cameras' test sets.
        accuracy_rotated_min: The worst of them.
        invariance_float32: Relative invariance error of the logits in float32 (max).
        invariance_float64: The same in float64.
    """

    params: int
    seconds: float
    accuracy: float
    accuracy_rotated: float
    accuracy_rotated_min: float
    invariance_float32: float
    invariance_float64: float


@dataclass(frozen=True)
class BCHRun:
    """One model (or BCH series) on one seed of the so(3) BCH regression.

    Attributes:
        params: Number of parameters (0 for a series).
        seconds: Wall time of its training (0 for a series).
        angle_error: Mean rotation angle of ``log(R1 R2 exp(-y_hat))`` over the test set.
        equivariance_float32: Relative equivariance error in float32 (NaN for a series:
            exact).
    """

    params: int
    seconds: float
    angle_error: float
    equivariance_float32: float


Run = TypeVar("Run", InvariantRun, EquivariantRun, PlatonicRun, BCHRun)


@dataclass(frozen=True)
class TaskResult(Generic[Run]):
    """One task over every seed.

    Attributes:
        runs: Per seed, model label -> its run (the same labels in every seed).
        seconds: Wall time of the task over all seeds.
        table: The task's report table (mean ± std over seeds; errors: max over seeds).
    """

    runs: list[dict[str, Run]]
    seconds: float
    table: Table

    @property
    def models(self) -> list[str]:
        """The model labels, in order."""
        return list(self.runs[0])

    def values(self, model: str, field: str) -> list[float]:
        """Field ``field`` of ``model``'s run, per seed."""
        return _values(self.runs, model, field)

    def scalars(self) -> dict[str, dict[str, list[float]]]:
        """Model -> every scalar field -> its values per seed (the study's metrics)."""
        return {
            m: {
                f.name: [getattr(r[m], f.name) for r in self.runs]
                for f in dataclasses.fields(self.runs[0][m])
                if np.isscalar(getattr(self.runs[0][m], f.name))
            }
            for m in self.models
        }


# -------------------------------------------------------------------- helpers
def _values(runs: list[dict[str, Any]], model: str, field: str) -> list[float]:
    return [float(getattr(run[model], field)) for run in runs]


def train_model(
    model: nn.Module,
    step: Callable[[nn.Module, Any], dict[str, torch.Tensor]],
    data: tuple[torch.Tensor, torch.Tensor],
    task: LieTaskConfig,
    lr: float,
    seed: int,
    out_dir: Path,
) -> float:
    """Train with `fit` (Adam at ``lr``, cosine decay over ``task.steps``); returns the wall
    time in seconds and leaves the model in eval mode."""
    loader = TensorLoader(data, task.batch_size, seed=seed)
    config = FitConfig(
        max_steps=task.steps,
        optimizer=OptimizerConfig(name="adam", lr=lr),
        schedule=ScheduleConfig(name="cosine"),
        log_every=max(1, task.steps // 20),
        progress=False,
        seed=seed,
    )
    start = time.perf_counter()
    fit(model, step, loader, config, out_dir=out_dir)
    model.eval()
    return time.perf_counter() - start


def _errors(
    model: nn.Module, algebra: LieAlgebra, x: torch.Tensor, config: LieNeuronsStudyConfig, seed: int
) -> dict[str, EquivarianceError]:
    """`equivariance_error` of a trained model in float32 and float64 (same group elements)."""
    return {
        label: equivariance_error(
            model,
            algebra,
            x[: config.error_samples],
            num_trials=config.error_trials,
            generator=generator(seed, 99),
            scale=config.conjugation_scale,
            dtype=dtype,
        )
        for label, dtype in (("float32", _F32), ("float64", _F64))
    }


def _symmetry_metrics(
    model: nn.Module,
    algebra: LieAlgebra,
    xt: torch.Tensor,
    g: torch.Tensor,
    config: LieNeuronsStudyConfig,
    seed: int,
    *,
    invariant: bool,
) -> dict[str, Any]:
    """Max/median `equivariance_error` (float32, float64) and the per-sample errors under the
    test set's own conjugations ``g`` (`perceptrons.testing.per_sample_equivariance_error`,
    clipped below at `ERROR_FLOOR`), with keys ``invariance_*`` or ``equivariance_*`` and
    ``hist_float32`` / ``hist_float64``."""
    errors = _errors(model, algebra, xt, config, seed)
    kind, n = ("invariance" if invariant else "equivariance"), config.error_samples
    hists = {
        f"hist_{name}": np.maximum(
            per_sample_equivariance_error(
                model, algebra, xt[:n], g[:n], invariant=invariant, dtype=dtype
            ).numpy(),
            ERROR_FLOOR,
        )
        for name, dtype in (("float32", _F32), ("float64", _F64))
    }
    return {
        f"{kind}_float32": errors["float32"].max,
        f"{kind}_float32_median": errors["float32"].median,
        f"{kind}_float64": errors["float64"].max,
        **hists,
    }


def _cell(values: list[float], digits: int = 4) -> str:
    """A table cell: ``digits`` significant digits of the mean, 2 of the sample std."""
    return format_mean_std(values, digits, std_digits=2, spec="g")


def _over_seeds(
    config: LieNeuronsStudyConfig, one_seed: Callable[[int], dict[str, Run]]
) -> tuple[list[dict[str, Run]], float]:
    """``one_seed`` for every seed, and the wall time of them all."""
    start = time.perf_counter()
    runs = [one_seed(config.seed + i) for i in range(config.num_seeds)]
    return runs, time.perf_counter() - start


# -------------------------------------------------------------------- invariant regression
def invariant_seed(
    config: LieNeuronsStudyConfig,
    algebra: LieAlgebra,
    task: LieTaskConfig,
    seed: int,
    out_dir: Path,
    *,
    augmentation: bool,
) -> dict[str, InvariantRun]:
    """One seed of the invariant regression: LN-LR vs MLP (vs MLP + augmentation)."""
    name = algebra.name
    x, y = invariant_regression(algebra, task.num_train, generator=generator(seed, 1), dtype=_F32)
    xt, yt = invariant_regression(algebra, task.num_test, generator=generator(seed, 2), dtype=_F32)
    xc, g = random_conjugation(
        algebra, xt, generator=generator(seed, 3), scale=config.conjugation_scale
    )
    models: dict[str, tuple[nn.Module, tuple[torch.Tensor, torch.Tensor], float]] = {
        "LN-LR": (
            create_model("lie_neurons", seed=seed, algebra=name, hidden_channels=(task.width,)),
            (x, y[:, None]),
            task.lr,
        ),
        "MLP": (
            create_model("lie_mlp", seed=seed, algebra=name, hidden_features=config.mlp_hidden),
            (x, y[:, None]),
            task.mlp_lr,
        ),
    }
    if augmentation:
        copies = [
            random_conjugation(
                algebra, x, generator=generator(seed, 10 + k), scale=config.conjugation_scale
            )[0]
            for k in range(config.augment_copies)
        ]
        x_aug = torch.cat([x, *copies])
        y_aug = y.repeat(config.augment_copies + 1)
        models["MLP + augmentation"] = (
            create_model("lie_mlp", seed=seed, algebra=name, hidden_features=config.mlp_hidden),
            (x_aug, y_aug[:, None]),
            task.mlp_lr,
        )
    out: dict[str, InvariantRun] = {}
    for label, (model, data, lr) in models.items():
        slug = label.lower().replace(" + ", "_").replace("-", "_").replace(" ", "_")
        seconds = train_model(
            model, regression_step, data, task, lr, seed, out_dir / f"{name}_inv_{slug}_s{seed}"
        )
        pred, pred_c = predict(model, xt)[:, 0], predict(model, xc)[:, 0]
        error = float((pred - yt).pow(2).mean())
        error_c = float((pred_c - yt).pow(2).mean())
        out[label] = InvariantRun(
            params=num_parameters(model),
            seconds=seconds,
            mse=error,
            mse_conjugated=error_c,
            relative_mse=error / float(yt.var()),
            mse_ratio=error_c / error,
            mean_abs_invariance=float((pred_c - pred).abs().mean()),
            **_symmetry_metrics(model, algebra, xt, g, config, seed, invariant=True),
        )
    return out


def _invariant_table(runs: list[dict[str, InvariantRun]]) -> Table:
    table = Table(
        [
            "model",
            "params",
            "MSE",
            "MSE / Var(y)",
            "MSE conjugated",
            "ratio",
            "mean abs f(x) - f(Ad x)",
            "invariance error f32 (max)",
            "invariance error f64 (max)",
        ]
    )
    for m in runs[0]:
        table.rows.append(
            [
                m,
                runs[0][m].params,
                _cell(_values(runs, m, "mse")),
                _cell(_values(runs, m, "relative_mse")),
                _cell(_values(runs, m, "mse_conjugated")),
                _cell(_values(runs, m, "mse_ratio")),
                _cell(_values(runs, m, "mean_abs_invariance"), 3),
                f"{max(_values(runs, m, 'invariance_float32')):.2e}",
                f"{max(_values(runs, m, 'invariance_float64')):.2e}",
            ]
        )
    return table


def invariant_experiment(
    config: LieNeuronsStudyConfig,
    algebra: str,
    task: LieTaskConfig,
    out_dir: Path,
    *,
    augmentation: bool,
) -> TaskResult[InvariantRun]:
    """The invariant regression on ``algebra`` ("sl3", "sp4") over every seed; the MLP +
    augmentation baseline only with ``augmentation``."""
    lie = get_algebra(algebra)
    runs, seconds = _over_seeds(
        config, lambda s: invariant_seed(config, lie, task, s, out_dir, augmentation=augmentation)
    )
    return TaskResult(runs, seconds, _invariant_table(runs))


# -------------------------------------------------------------------- equivariant regression
def equivariant_seed(
    config: LieNeuronsStudyConfig, task: LieTaskConfig, seed: int, out_dir: Path
) -> dict[str, EquivariantRun]:
    """One seed of the sl(3) equivariant regression: LN with brackets vs LN-ReLU only vs MLP."""
    algebra = get_algebra("sl3")
    x, y = equivariant_regression(algebra, task.num_train, generator=generator(seed, 1), dtype=_F32)
    xt, yt = equivariant_regression(
        algebra, task.num_test, generator=generator(seed, 2), dtype=_F32
    )
    xc, g = random_conjugation(
        algebra, xt, generator=generator(seed, 3), scale=config.conjugation_scale
    )
    yc = conjugate(algebra, yt[:, None], g.to(_F64))
    widths = (task.width,) * 3
    models = {
        "LN (LB, LB, LR)": (
            create_model("lie_neurons_equivariant", seed=seed, hidden_channels=widths),
            task.lr,
        ),
        "LN (LR, LR, LR)": (
            create_model(
                "lie_neurons_equivariant",
                seed=seed,
                hidden_channels=widths,
                blocks=("lr", "lr", "lr"),
            ),
            task.lr,
        ),
        "MLP": (
            create_model(
                "lie_mlp", seed=seed, hidden_features=config.mlp_hidden, equivariant_output=True
            ),
            task.mlp_lr,
        ),
    }
    scale = float(yt.pow(2).mean())
    out: dict[str, EquivariantRun] = {}
    for label, (model, lr) in models.items():
        slug = "".join(c for c in label.lower() if c.isalnum())
        seconds = train_model(
            model, regression_step, (x, y[:, None]), task, lr, seed, out_dir / f"eq_{slug}_s{seed}"
        )
        error = mse(model, xt, yt[:, None])
        out[label] = EquivariantRun(
            params=num_parameters(model),
            seconds=seconds,
            mse=error,
            relative_mse=error / scale,
            mse_conjugated=mse(model, xc, yc),
            **_symmetry_metrics(model, algebra, xt, g, config, seed, invariant=False),
        )
    return out


def equivariant_experiment(
    config: LieNeuronsStudyConfig, out_dir: Path
) -> TaskResult[EquivariantRun]:
    """The sl(3) equivariant regression (``config.equivariant``) over every seed."""
    runs, seconds = _over_seeds(
        config, lambda s: equivariant_seed(config, config.equivariant, s, out_dir)
    )
    table = Table(
        [
            "model",
            "params",
            "MSE",
            "MSE / E[y²]",
            "MSE conjugated",
            "equivariance error f32 (max)",
            "equivariance error f64 (max)",
        ]
    )
    for m in runs[0]:
        table.rows.append(
            [
                m,
                runs[0][m].params,
                _cell(_values(runs, m, "mse")),
                _cell(_values(runs, m, "relative_mse")),
                _cell(_values(runs, m, "mse_conjugated")),
                f"{max(_values(runs, m, 'equivariance_float32')):.2e}",
                f"{max(_values(runs, m, 'equivariance_float64')):.2e}",
            ]
        )
    return TaskResult(runs, seconds, table)


# -------------------------------------------------------------------- Platonic solids
def platonic_seed(
    config: LieNeuronsStudyConfig, task: LieTaskConfig, seed: int, out_dir: Path
) -> dict[str, PlatonicRun]:
    """One seed of the Platonic-solid classification: LN-LR + LN-MaxPool vs MLP (vs rotation
    augmentation)."""
    algebra = get_algebra("sl3")
    x, y = platonic_homographies(task.num_train, generator=generator(seed, 1), dtype=_F32)
    xt, yt = platonic_homographies(task.num_test, generator=generator(seed, 2), dtype=_F32)
    rotations = random_rotations(config.platonic_rotations, generator=generator(seed, 3))
    scale = x.pow(2).mean().sqrt()  # one scalar: commutes with Ad_g
    x, xt = x / scale, xt / scale
    rotated = [rotate_camera(xt, r) for r in rotations]
    num_classes = int(y.max()) + 1
    common = {"algebra": "sl3", "in_channels": 3, "num_points": PLATONIC_EDGES}
    models: dict[str, tuple[nn.Module, tuple[torch.Tensor, torch.Tensor], float]] = {
        "LN-LR": (
            create_model(
                "lie_neurons",
                seed=seed,
                hidden_channels=(task.width,),
                out_features=num_classes,
                **common,
            ),
            (x, y),
            task.lr,
        ),
        "MLP": (
            create_model(
                "lie_mlp",
                seed=seed,
                hidden_features=config.mlp_hidden,
                out_features=num_classes,
                **common,
            ),
            (x, y),
            task.mlp_lr,
        ),
    }
    if config.augment_copies:
        # the same scenes, each sample seen by its own random camera (one set per copy)
        copies = [
            rotate_camera(x, random_rotations(x.shape[0], generator=generator(seed, 20 + k)))
            for k in range(config.augment_copies)
        ]
        models["MLP + augmentation"] = (
            create_model(
                "lie_mlp",
                seed=seed,
                hidden_features=config.mlp_hidden,
                out_features=num_classes,
                **common,
            ),
            (torch.cat([x, *copies]), y.repeat(config.augment_copies + 1)),
            task.mlp_lr,
        )
    out: dict[str, PlatonicRun] = {}
    for label, (model, data, lr) in models.items():
        slug = "".join(c for c in label.lower() if c.isalnum())
        seconds = train_model(
            model, classification_step, data, task, lr, seed, out_dir / f"platonic_{slug}_s{seed}"
        )
        per_rotation = [accuracy(model, xr, yt) for xr in rotated]
        errors = _errors(model, algebra, xt, config, seed)
        out[label] = PlatonicRun(
            params=num_parameters(model),
            seconds=seconds,
            accuracy=accuracy(model, xt, yt),
            accuracy_rotated=float(np.mean(per_rotation)),
            accuracy_rotated_min=float(np.min(per_rotation)),
            invariance_float32=errors["float32"].max,
            invariance_float64=errors["float64"].max,
        )
    return out


def platonic_experiment(config: LieNeuronsStudyConfig, out_dir: Path) -> TaskResult[PlatonicRun]:
    """The Platonic-solid classification (``config.platonic``) over every seed, tabled next to
    the paper's numbers (`PAPER_PLATONIC`)."""
    runs, seconds = _over_seeds(
        config, lambda s: platonic_seed(config, config.platonic, s, out_dir)
    )
    table = Table(
        [
            "model",
            "params",
            "accuracy %",
            "rotated accuracy %",
            "paper params",
            "paper accuracy %",
            "paper rotated %",
            "invariance error f32 (max)",
            "invariance error f64 (max)",
        ]
    )
    for m in runs[0]:
        paper = PAPER_PLATONIC.get(m, (float("nan"),) * 3)
        table.rows.append(
            [
                m,
                runs[0][m].params,
                _cell([100 * v for v in _values(runs, m, "accuracy")]),
                _cell([100 * v for v in _values(runs, m, "accuracy_rotated")]),
                paper[2],
                paper[0],
                paper[1],
                f"{max(_values(runs, m, 'invariance_float32')):.2e}",
                f"{max(_values(runs, m, 'invariance_float64')):.2e}",
            ]
        )
    return TaskResult(runs, seconds, table)


# -------------------------------------------------------------------- so(3) BCH
def bch_seed(
    config: LieNeuronsStudyConfig, task: LieTaskConfig, seed: int, out_dir: Path
) -> dict[str, BCHRun]:
    """One seed of the so(3) BCH regression: LN (LR, LB, LR, LB) and MLP against the
    truncated BCH series."""
    algebra = get_algebra("so3")
    angle = config.bch_max_angle
    x, y = bch_regression(task.num_train, generator=generator(seed, 1), max_angle=angle, dtype=_F32)
    xt, _ = bch_regression(task.num_test, generator=generator(seed, 2), max_angle=angle, dtype=_F32)

    def angle_error(pred: torch.Tensor) -> float:
        return float(rotation_log_error(xt[:, 0], xt[:, 1], pred).mean())

    out: dict[str, BCHRun] = {}
    for order in (1, 2, 3):
        out[f"BCH series, order {order}"] = BCHRun(
            params=0,
            seconds=0.0,
            angle_error=angle_error(bch_series(xt, order)),
            equivariance_float32=float("nan"),
        )
    models = {
        "LN (LR, LB, LR, LB)": (
            create_model(
                "lie_neurons_equivariant",
                seed=seed,
                algebra="so3",
                hidden_channels=(task.width,) * 4,
                blocks=("lr", "lb", "lr", "lb"),
            ),
            task.lr,
        ),
        "MLP": (
            create_model(
                "lie_mlp",
                seed=seed,
                algebra="so3",
                hidden_features=config.mlp_hidden,
                equivariant_output=True,
            ),
            task.mlp_lr,
        ),
    }
    for label, (model, lr) in models.items():
        slug = "".join(c for c in label.lower() if c.isalnum())
        seconds = train_model(
            model, regression_step, (x, y[:, None]), task, lr, seed, out_dir / f"bch_{slug}_s{seed}"
        )
        errors = equivariance_error(
            model,
            algebra,
            xt[: config.error_samples],
            num_trials=config.error_trials,
            generator=generator(seed, 99),
            scale=config.conjugation_scale,
            dtype=_F32,
        )
        out[label] = BCHRun(
            params=num_parameters(model),
            seconds=seconds,
            angle_error=angle_error(predict(model, xt)[:, 0]),
            equivariance_float32=errors.max,
        )
    return out


def bch_experiment(config: LieNeuronsStudyConfig, out_dir: Path) -> TaskResult[BCHRun]:
    """The so(3) BCH regression (``config.bch``) over every seed."""
    runs, seconds = _over_seeds(config, lambda s: bch_seed(config, config.bch, s, out_dir))
    table = Table(["method", "params", "mean angle error (rad)", "equivariance f32"])
    for m in runs[0]:
        errs = _values(runs, m, "equivariance_float32")
        table.rows.append(
            [
                m,
                runs[0][m].params,
                _cell(_values(runs, m, "angle_error")),
                "exact" if np.isnan(errs).all() else f"{max(errs):.2e}",
            ]
        )
    return TaskResult(runs, seconds, table)
