"""``lie-neurons``: adjoint-equivariant Lie Neurons against MLP baselines on synthetic tasks.

Paper: Tzu-Yuan Lin, Minghan Zhu & Maani Ghaffari, *Lie Neurons: Adjoint-Equivariant Neural
Networks for Semisimple Lie Algebras*, ICML 2024, arXiv:2310.04521 (project brief
``lie-neurons.md``, §5 experiments and §8 small reproductions).

Tasks (data from `perceptrons.data.lie`, exact analytic targets, drawn afresh per seed):

* sl(3) invariant regression — ``lie_neurons`` (LN-LR → self-Killing → Linear) against
  ``lie_mlp`` with and without augmentation (one conjugated copy of the training set); MSE on
  the plain and on a conjugated test set, and the relative invariance error of the *trained*
  models measured with `perceptrons.testing.equivariance_error` in float32 and float64.
* sl(3) equivariant regression — ``lie_neurons_equivariant`` with blocks (LN-LB, LN-LB,
  LN-LR leaky), the same with three LN-LR blocks (no bracket), and ``lie_mlp``.
* Platonic-solid classification — ``lie_neurons`` (LN-LR → LN-MaxPool → self-Killing →
  Linear) against the MLP with and without camera-rotation augmentation; accuracy on the plain
  test set and on the test set seen by ``platonic_rotations`` random cameras.
* sp(4) invariant regression (table) and so(3) BCH (table, against the 1st/2nd/3rd-order BCH
  series), when enabled.

Every model is trained by `perceptrons.train.fit` (Adam, cosine decay, the library's
``regression_step``/``classification_step``). The Platonic features are divided by one
scalar, the RMS of the training features (entries reach ~20 and the network has no
normalisation); a scalar commutes with ``Ad_g``, so invariance is untouched.

Claims aggregate seeds conservatively: error bounds of Lie Neurons use the worst seed (max
over trials), the MLP's "not invariant" uses the best seed (median over trials), and MSE /
accuracy claims use the worst seed for Lie Neurons and the mean over seeds otherwise.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
from perceptrons.studies.base import StudyResult, Table, register_study
from perceptrons.studies.lie_neurons.config import (
    FULL,
    QUICK,
    LieNeuronsStudyConfig,
    LieTaskConfig,
)
from perceptrons.studies.lie_neurons.figures import (
    PAPER_PLATONIC,
    plot_histograms,
    plot_mse,
    plot_platonic,
)
from perceptrons.testing import equivariance_error
from perceptrons.train import FitConfig, OptimizerConfig, ScheduleConfig, fit
from perceptrons.train.steps import classification_step, regression_step

__all__ = ["run"]

PAPER = (
    "Lin, Zhu & Ghaffari 2023, Lie Neurons: Adjoint-Equivariant Neural Networks for Semisimple "
    "Lie Algebras, ICML 2024, arXiv:2310.04521"
)
_F32, _F64 = torch.float32, torch.float64
_PLATONIC_EDGES = 12  # paper: 12 random edges per sample
_FLOOR = 1e-17  # per-sample errors below this (exact zeros) are drawn at the floor


# ----------------------------------------------------------------------------- helpers
def _gen(seed: int, stream: int) -> torch.Generator:
    """Independent generator per (seed, stream)."""
    return torch.Generator().manual_seed(1000 * seed + stream)


def _num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _train(
    model: nn.Module,
    step: Callable[[nn.Module, Any], dict[str, torch.Tensor]],
    data: tuple[torch.Tensor, torch.Tensor],
    task: LieTaskConfig,
    lr: float,
    seed: int,
    out_dir: Path,
) -> float:
    """Train with `fit` (Adam, cosine decay); returns the wall time in seconds."""
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


def _predict(model: nn.Module, x: torch.Tensor, batch: int = 4096) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model(x[i : i + batch]) for i in range(0, x.shape[0], batch)])


def _mse(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((_predict(model, x) - y).pow(2).mean())


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((_predict(model, x).argmax(-1) == y).float().mean())


def _errors(
    model: nn.Module, algebra: LieAlgebra, x: torch.Tensor, config: LieNeuronsStudyConfig, seed: int
) -> dict[str, Any]:
    """`equivariance_error` of a trained model in float32 and float64 (same group elements)."""
    out = {}
    for label, dtype in (("float32", _F32), ("float64", _F64)):
        err = equivariance_error(
            model,
            algebra,
            x[: config.error_samples],
            num_trials=config.error_trials,
            generator=_gen(seed, 99),
            scale=config.conjugation_scale,
            dtype=dtype,
        )
        out[label] = err
    return out


def _sample_errors(
    model: nn.Module,
    algebra: LieAlgebra,
    x: torch.Tensor,
    g: torch.Tensor,
    *,
    invariant: bool,
    dtype: torch.dtype,
) -> np.ndarray:
    """Per-sample relative errors ``|f(Ad x) - [Ad] f(x)| / |[Ad] f(x)|`` (for histograms).

    Args:
        model: Trained model (copied and cast to ``dtype``).
        algebra: The algebra.
        x: Inputs ``(n, c, K[, N])``.
        g: One group element per sample ``(n, m, m)``.
        invariant: Whether the output is invariant (else equivariant on axis 2).
        dtype: Evaluation dtype of the model; the comparison is float64.

    Returns:
        ``(n,)`` relative errors, clipped below at ``_FLOOR``.
    """
    m = copy.deepcopy(model).to(dtype).eval()
    adjoint = algebra.Ad(g.to(_F64))
    x64 = x.to(_F64)
    with torch.no_grad():
        y = m(x64.to(dtype)).to(_F64)
        y_g = m(algebra.apply_adjoint(adjoint, x64, axis=2).to(dtype)).to(_F64)
    target = y if invariant else algebra.apply_adjoint(adjoint, y, axis=2)
    diff = torch.linalg.vector_norm((y_g - target).flatten(1), dim=1)
    norm = torch.linalg.vector_norm(target.flatten(1), dim=1).clamp_min(1e-300)
    return np.maximum((diff / norm).numpy(), _FLOOR)


def _pm(values: list[float], digits: int = 4) -> str:
    """``"mean"`` for one value, ``"mean ± std"`` for several (sample std)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 1:
        return f"{arr[0]:.{digits}g}"
    return f"{arr.mean():.{digits}g} ± {arr.std(ddof=1):.2g}"


def _collect(runs: list[dict[str, dict[str, Any]]], model: str, key: str) -> list[float]:
    return [float(run[model][key]) for run in runs]


# ----------------------------------------------------------------------------- tasks
def _invariant_task(
    config: LieNeuronsStudyConfig,
    algebra: LieAlgebra,
    task: LieTaskConfig,
    seed: int,
    out_dir: Path,
    *,
    augmentation: bool,
) -> dict[str, dict[str, Any]]:
    """sl(3)/sp(4) invariant regression: LN-LR vs MLP (vs MLP + augmentation)."""
    name = algebra.name
    x, y = invariant_regression(algebra, task.num_train, generator=_gen(seed, 1), dtype=_F32)
    xt, yt = invariant_regression(algebra, task.num_test, generator=_gen(seed, 2), dtype=_F32)
    xc, g = random_conjugation(algebra, xt, generator=_gen(seed, 3), scale=config.conjugation_scale)
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
                algebra, x, generator=_gen(seed, 10 + k), scale=config.conjugation_scale
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
    out: dict[str, dict[str, Any]] = {}
    for label, (model, data, lr) in models.items():
        slug = label.lower().replace(" + ", "_").replace("-", "_").replace(" ", "_")
        seconds = _train(
            model, regression_step, data, task, lr, seed, out_dir / f"{name}_inv_{slug}_s{seed}"
        )
        pred, pred_c = _predict(model, xt)[:, 0], _predict(model, xc)[:, 0]
        mse = float((pred - yt).pow(2).mean())
        mse_c = float((pred_c - yt).pow(2).mean())
        out[label] = {
            "params": _num_params(model),
            "seconds": seconds,
            "mse": mse,
            "mse_conjugated": mse_c,
            "relative_mse": mse / float(yt.var()),
            "mse_ratio": mse_c / mse,
            "mean_abs_invariance": float((pred_c - pred).abs().mean()),  # the paper's metric
            **_symmetry_metrics(model, algebra, xt, g, config, seed, invariant=True),
        }
    return out


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
    """Max/median `equivariance_error` (float32, float64) and per-sample errors for histograms.

    Keys ``invariance_*`` or ``equivariance_*``, and ``hist_float32``/``hist_float64``.
    """
    errors = _errors(model, algebra, xt, config, seed)
    kind, n = ("invariance" if invariant else "equivariance"), config.error_samples
    hists = {
        f"hist_{name}": _sample_errors(
            model, algebra, xt[:n], g[:n], invariant=invariant, dtype=dtype
        )
        for name, dtype in (("float32", _F32), ("float64", _F64))
    }
    return {
        f"{kind}_float32": errors["float32"].max,
        f"{kind}_float32_median": errors["float32"].median,
        f"{kind}_float64": errors["float64"].max,
        **hists,
    }


def _equivariant_task(
    config: LieNeuronsStudyConfig, task: LieTaskConfig, seed: int, out_dir: Path
) -> dict[str, dict[str, Any]]:
    """sl(3) equivariant regression: LN with brackets vs LN-ReLU only vs MLP."""
    algebra = get_algebra("sl3")
    x, y = equivariant_regression(algebra, task.num_train, generator=_gen(seed, 1), dtype=_F32)
    xt, yt = equivariant_regression(algebra, task.num_test, generator=_gen(seed, 2), dtype=_F32)
    xc, g = random_conjugation(algebra, xt, generator=_gen(seed, 3), scale=config.conjugation_scale)
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
    out: dict[str, dict[str, Any]] = {}
    for label, (model, lr) in models.items():
        slug = "".join(c for c in label.lower() if c.isalnum())
        seconds = _train(
            model, regression_step, (x, y[:, None]), task, lr, seed, out_dir / f"eq_{slug}_s{seed}"
        )
        mse = _mse(model, xt, yt[:, None])
        out[label] = {
            "params": _num_params(model),
            "seconds": seconds,
            "mse": mse,
            "relative_mse": mse / scale,
            "mse_conjugated": _mse(model, xc, yc),
            **_symmetry_metrics(model, algebra, xt, g, config, seed, invariant=False),
        }
    return out


def _platonic_task(
    config: LieNeuronsStudyConfig, task: LieTaskConfig, seed: int, out_dir: Path
) -> dict[str, dict[str, Any]]:
    """Platonic-solid classification: LN-LR + LN-MaxPool vs MLP (vs rotation augmentation)."""
    algebra = get_algebra("sl3")
    x, y = platonic_homographies(task.num_train, generator=_gen(seed, 1), dtype=_F32)
    xt, yt = platonic_homographies(task.num_test, generator=_gen(seed, 2), dtype=_F32)
    rotations = random_rotations(config.platonic_rotations, generator=_gen(seed, 3))
    scale = x.pow(2).mean().sqrt()  # one scalar: commutes with Ad_g
    x, xt = x / scale, xt / scale
    rotated = [rotate_camera(xt, r) for r in rotations]
    num_classes = int(y.max()) + 1
    common = {"algebra": "sl3", "in_channels": 3, "num_points": _PLATONIC_EDGES}
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
            rotate_camera(x, random_rotations(x.shape[0], generator=_gen(seed, 20 + k)))
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
    out: dict[str, dict[str, Any]] = {}
    for label, (model, data, lr) in models.items():
        slug = "".join(c for c in label.lower() if c.isalnum())
        seconds = _train(
            model, classification_step, data, task, lr, seed, out_dir / f"platonic_{slug}_s{seed}"
        )
        per_rotation = [_accuracy(model, xr, yt) for xr in rotated]
        errors = _errors(model, algebra, xt, config, seed)
        out[label] = {
            "params": _num_params(model),
            "seconds": seconds,
            "accuracy": _accuracy(model, xt, yt),
            "accuracy_rotated": float(np.mean(per_rotation)),
            "accuracy_rotated_min": float(np.min(per_rotation)),
            "invariance_float32": errors["float32"].max,
            "invariance_float64": errors["float64"].max,
        }
    return out


def _bch_task(
    config: LieNeuronsStudyConfig, task: LieTaskConfig, seed: int, out_dir: Path
) -> dict[str, dict[str, Any]]:
    """so(3) BCH: LN (LR, LB, LR, LB) and MLP against the truncated BCH series."""
    algebra = get_algebra("so3")
    angle = config.bch_max_angle
    x, y = bch_regression(task.num_train, generator=_gen(seed, 1), max_angle=angle, dtype=_F32)
    xt, _ = bch_regression(task.num_test, generator=_gen(seed, 2), max_angle=angle, dtype=_F32)

    def angle_error(pred: torch.Tensor) -> float:
        return float(rotation_log_error(xt[:, 0], xt[:, 1], pred).mean())

    out: dict[str, dict[str, Any]] = {}
    for order in (1, 2, 3):
        out[f"BCH series, order {order}"] = {
            "params": 0,
            "seconds": 0.0,
            "angle_error": angle_error(bch_series(xt, order)),
            "equivariance_float32": float("nan"),
        }
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
        seconds = _train(
            model, regression_step, (x, y[:, None]), task, lr, seed, out_dir / f"bch_{slug}_s{seed}"
        )
        errors = equivariance_error(
            model,
            algebra,
            xt[: config.error_samples],
            num_trials=config.error_trials,
            generator=_gen(seed, 99),
            scale=config.conjugation_scale,
            dtype=_F32,
        )
        out[label] = {
            "params": _num_params(model),
            "seconds": seconds,
            "angle_error": angle_error(_predict(model, xt)[:, 0]),
            "equivariance_float32": errors.max,
        }
    return out


# ----------------------------------------------------------------------------- run
@register_study(
    "lie-neurons",
    config=LieNeuronsStudyConfig,
    presets={"quick": QUICK, "full": FULL},
    paper=PAPER,
)
def run(config: LieNeuronsStudyConfig, out_dir: Path) -> StudyResult:
    """Lie Neurons vs MLPs: invariance, equivariance, conjugated and rotated test sets."""
    train_dir = out_dir / "train"
    seeds = [config.seed + i for i in range(config.num_seeds)]
    seconds: dict[str, float] = {}

    def timed(part: str, fn: Callable[[int], dict[str, dict[str, Any]]]) -> list[dict]:
        start = time.perf_counter()
        runs = [fn(seed) for seed in seeds]
        seconds[part] = time.perf_counter() - start
        return runs

    sl3, sp4 = get_algebra("sl3"), get_algebra("sp4")
    inv = timed(
        "sl3_invariant",
        lambda s: _invariant_task(config, sl3, config.invariant, s, train_dir, augmentation=True),
    )
    eq = timed(
        "sl3_equivariant", lambda s: _equivariant_task(config, config.equivariant, s, train_dir)
    )
    plat = timed("platonic", lambda s: _platonic_task(config, config.platonic, s, train_dir))
    sp = (
        timed(
            "sp4_invariant",
            lambda s: _invariant_task(config, sp4, config.sp4, s, train_dir, augmentation=False),
        )
        if config.run_sp4
        else []
    )
    bch = (
        timed("so3_bch", lambda s: _bch_task(config, config.bch, s, train_dir))
        if config.run_bch
        else []
    )

    result = StudyResult()

    # ---------------------------------------------------------------- tables
    def regression_table(runs: list[dict]) -> Table:
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
                    runs[0][m]["params"],
                    _pm(_collect(runs, m, "mse")),
                    _pm(_collect(runs, m, "relative_mse")),
                    _pm(_collect(runs, m, "mse_conjugated")),
                    _pm(_collect(runs, m, "mse_ratio")),
                    _pm(_collect(runs, m, "mean_abs_invariance"), 3),
                    f"{max(_collect(runs, m, 'invariance_float32')):.2e}",
                    f"{max(_collect(runs, m, 'invariance_float64')):.2e}",
                ]
            )
        return table

    result.tables["sl3_invariant"] = regression_table(inv)
    eq_table = Table(
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
    for m in eq[0]:
        eq_table.rows.append(
            [
                m,
                eq[0][m]["params"],
                _pm(_collect(eq, m, "mse")),
                _pm(_collect(eq, m, "relative_mse")),
                _pm(_collect(eq, m, "mse_conjugated")),
                f"{max(_collect(eq, m, 'equivariance_float32')):.2e}",
                f"{max(_collect(eq, m, 'equivariance_float64')):.2e}",
            ]
        )
    result.tables["sl3_equivariant"] = eq_table
    plat_table = Table(
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
    for m in plat[0]:
        paper = PAPER_PLATONIC.get(m, (float("nan"),) * 3)
        plat_table.rows.append(
            [
                m,
                plat[0][m]["params"],
                _pm([100 * v for v in _collect(plat, m, "accuracy")]),
                _pm([100 * v for v in _collect(plat, m, "accuracy_rotated")]),
                paper[2],
                paper[0],
                paper[1],
                f"{max(_collect(plat, m, 'invariance_float32')):.2e}",
                f"{max(_collect(plat, m, 'invariance_float64')):.2e}",
            ]
        )
    result.tables["platonic"] = plat_table
    if sp:
        result.tables["sp4_invariant"] = regression_table(sp)
    if bch:
        bch_table = Table(["method", "params", "mean angle error (rad)", "equivariance f32"])
        for m in bch[0]:
            errs = _collect(bch, m, "equivariance_float32")
            bch_table.rows.append(
                [
                    m,
                    bch[0][m]["params"],
                    _pm(_collect(bch, m, "angle_error")),
                    "exact" if np.isnan(errs).all() else f"{max(errs):.2e}",
                ]
            )
        result.tables["so3_bch"] = bch_table

    # ---------------------------------------------------------------- claims
    ln_inv32 = max(_collect(inv, "LN-LR", "invariance_float32"))
    ln_inv64 = max(_collect(inv, "LN-LR", "invariance_float64"))
    mlp_inv = min(_collect(inv, "MLP", "invariance_float32_median"))
    ln_mse_change = max(abs(r - 1) for r in _collect(inv, "LN-LR", "mse_ratio"))
    mlp_ratio = min(_collect(inv, "MLP", "mse_ratio"))
    ln_eq32 = max(_collect(eq, "LN (LB, LB, LR)", "equivariance_float32"))
    bracket_ratio = float(
        np.mean(_collect(eq, "LN (LB, LB, LR)", "mse"))
        / np.mean(_collect(eq, "LN (LR, LR, LR)", "mse"))
    )
    ln_rot = min(_collect(plat, "LN-LR", "accuracy_rotated"))
    mlp_drop = float(
        np.mean(_collect(plat, "MLP", "accuracy"))
        - np.mean(_collect(plat, "MLP", "accuracy_rotated"))
    )
    result.claim(
        "ln_invariance_error",
        "sl(3) invariant regression: relative invariance error of the trained LN-LR model in "
        "float32 (equivariance_error, max over trials and seeds)",
        ln_inv32,
        config.invariance_tolerance,
        "<=",
    )
    result.claim(
        "ln_invariance_error_float64",
        "the same in float64",
        ln_inv64,
        config.invariance_tolerance_float64,
        "<=",
    )
    result.claim(
        "mlp_not_invariant",
        "relative invariance error of the trained MLP baseline (float32, median over trials, "
        "smallest over seeds)",
        mlp_inv,
        config.mlp_invariance_threshold,
        ">=",
    )
    result.claim(
        "ln_conjugated_mse_unchanged",
        "LN-LR: |MSE on the conjugated test set / MSE on the plain test set - 1| (worst seed)",
        ln_mse_change,
        config.conjugated_mse_tolerance,
        "<=",
    )
    result.claim(
        "mlp_conjugated_mse_grows",
        "MLP: MSE on the conjugated test set / MSE on the plain test set (smallest over seeds)",
        mlp_ratio,
        config.mlp_conjugated_mse_factor,
        ">=",
    )
    result.claim(
        "ln_equivariance_error",
        "sl(3) equivariant regression: relative equivariance error of the trained LN "
        "(LB, LB, LR) model in float32 (max over trials and seeds)",
        ln_eq32,
        config.equivariance_tolerance,
        "<=",
    )
    result.claim(
        "bracket_helps_equivariant",
        "sl(3) equivariant regression: test MSE of LN (LB, LB, LR) / test MSE of LN (LR, LR, LR) "
        "(means over seeds)",
        bracket_ratio,
        config.bracket_mse_ratio,
        "<",
    )
    result.claim(
        "platonic_rotated_accuracy",
        "Platonic solids: LN-LR accuracy on randomly rotated camera test sets (worst seed; "
        "paper 99.51%)",
        ln_rot,
        config.platonic_accuracy_threshold,
        ">=",
    )
    result.claim(
        "mlp_rotated_accuracy_drops",
        "Platonic solids: MLP accuracy on the plain minus the rotated test sets (mean over "
        "seeds; paper 95.76% - 36.54%)",
        mlp_drop,
        config.mlp_rotated_drop,
        ">=",
    )

    # ---------------------------------------------------------------- metrics and figures
    def scalars(runs: list[dict]) -> dict[str, dict[str, list[float]]]:
        return {
            m: {k: [r[m][k] for r in runs] for k, v in runs[0][m].items() if np.isscalar(v)}
            for m in runs[0]
        }

    result.metrics.update(
        seconds=seconds,
        sl3_invariant=scalars(inv),
        sl3_equivariant=scalars(eq),
        platonic=scalars(plat),
    )
    if sp:
        result.metrics["sp4_invariant"] = scalars(sp)
    if bch:
        result.metrics["so3_bch"] = scalars(bch)
    panels = {"sl(3) invariant regression": inv}
    if sp:
        panels["sp(4) invariant regression"] = sp
    result.figures.append(plot_mse(out_dir, panels))
    result.figures.append(plot_histograms(out_dir, inv, eq))
    result.figures.append(plot_platonic(out_dir, plat))
    return result
