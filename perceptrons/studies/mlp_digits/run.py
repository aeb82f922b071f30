"""``mlp-digits``: train the library's MLP on scikit-learn's digits and check it against sklearn.

This is the template every paper study copies:

1. a `StudyConfig` subclass with ``quick`` and ``full`` presets (``config.py``);
2. ``run(config, out_dir)`` builds data and models from the library, trains them with the one
   loop `perceptrons.train.fit` through a `Step`, measures, draws figures into ``out_dir``
   and returns a `StudyResult` of claims (measured value, threshold, verdict);
3. nothing here writes ``result.json`` or the report: the runner does.

Claims:
    test_accuracy: our MLP's mean test accuracy over seeds is at least 0.95.
    matches_sklearn: it is within 2 points of ``sklearn.neural_network.MLPClassifier`` with
        the same hidden sizes, activation, batch size, optimiser and L2 strength, trained on
        the same split.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from perceptrons.data.digits import DigitsSplit, load_digits_split
from perceptrons.data.loader import TensorLoader
from perceptrons.registry import create_model
from perceptrons.studies.base import StudyResult, Table, register_study
from perceptrons.studies.mlp_digits.config import FULL, QUICK, MLPDigitsConfig
from perceptrons.train import EarlyStopping, Evaluator, fit
from perceptrons.train.steps import classification_step

__all__ = ["run"]


def _accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(dim=-1) == y).float().mean())


def _train_ours(config: MLPDigitsConfig, data: DigitsSplit, seed: int, out_dir: Path):
    model = create_model(
        "mlp",
        seed=seed,
        in_features=data.num_features,
        hidden_features=config.hidden_features,
        out_features=data.num_classes,
        activation=config.activation,
        dropout=config.dropout,
    )
    loader = TensorLoader((data.x_train, data.y_train), config.batch_size, seed=seed)

    def validate(m: torch.nn.Module) -> dict[str, float]:
        logits = m(data.x_val)
        loss = torch.nn.functional.cross_entropy(logits, data.y_val)
        accuracy = (logits.argmax(dim=-1) == data.y_val).float().mean()
        return {"loss": float(loss), "accuracy": float(accuracy)}

    callbacks = [
        Evaluator(validate, every=len(loader), split="val"),
        EarlyStopping(metric="val/loss", mode="min", patience=config.patience),
    ]
    start = time.perf_counter()
    result = fit(
        model,
        classification_step,
        loader,
        config.fit.replace(seed=seed),
        callbacks,
        out_dir=out_dir,
    )
    seconds = time.perf_counter() - start
    model.eval()
    return model, result, seconds


def _train_sklearn(config: MLPDigitsConfig, data: DigitsSplit, seed: int):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    opt = config.fit.optimizer
    clf = MLPClassifier(
        hidden_layer_sizes=config.hidden_features,
        activation=config.activation,
        solver="adam",
        alpha=opt.weight_decay,
        batch_size=config.batch_size,
        learning_rate_init=opt.lr,
        max_iter=config.sklearn_max_iter,
        random_state=seed,
    )
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(data.x_train.double().numpy(), data.y_train.numpy())
    seconds = time.perf_counter() - start
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    accuracy = float(clf.score(data.x_test.double().numpy(), data.y_test.numpy()))
    return clf, accuracy, seconds, converged


def _plot(out_dir: Path, runs: list[dict]) -> Path:
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    for i, run in enumerate(runs):
        train = [r for r in run["history"] if r["split"] == "train"]
        val = [r for r in run["history"] if r["split"] == "val"]
        label = i == 0
        ax_loss.plot(
            [r["epoch"] for r in train],
            [r["loss"] for r in train],
            color="C0",
            alpha=0.7,
            label="perceptrons MLP (train)" if label else None,
        )
        ax_loss.plot(
            [r["epoch"] for r in val],
            [r["loss"] for r in val],
            color="C2",
            alpha=0.9,
            label="perceptrons MLP (validation)" if label else None,
        )
        ax_loss.plot(
            np.arange(1, len(run["sklearn_loss"]) + 1),
            run["sklearn_loss"],
            color="C1",
            alpha=0.7,
            label="sklearn MLPClassifier (train)" if label else None,
        )
        ax_acc.plot(
            [r["epoch"] for r in val],
            [r["accuracy"] for r in val],
            color="C2",
            alpha=0.9,
            label="validation" if label else None,
        )
        ax_acc.axhline(
            run["test_accuracy"],
            color="C0",
            ls="--",
            alpha=0.6,
            label="test (final)" if label else None,
        )
        ax_acc.axhline(
            run["sklearn_accuracy"],
            color="C1",
            ls=":",
            alpha=0.6,
            label="sklearn test" if label else None,
        )
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", yscale="log", title="Loss")
    ax_acc.set(
        xlabel="epoch", ylabel="accuracy", title="Accuracy (perceptrons MLP)", ylim=(0.8, 1.0)
    )
    ax_loss.legend(fontsize=8)
    ax_acc.legend(fontsize=8, loc="lower right")
    path = out_dir / "learning_curves.png"
    fig.savefig(path, dpi=110)
    return path


@register_study(
    "mlp-digits",
    config=MLPDigitsConfig,
    presets={"quick": QUICK, "full": FULL},
    paper="Library template (no paper): MLP on scikit-learn's digits vs sklearn's MLPClassifier",
)
def run(config: MLPDigitsConfig, out_dir: Path) -> StudyResult:
    """Template study: an MLP on scikit-learn's digits, checked against sklearn's MLP."""
    runs = []
    table = Table(
        [
            "seed",
            "accuracy",
            "sklearn_accuracy",
            "epochs",
            "stopped_early",
            "fit_seconds",
            "sklearn_seconds",
            "sklearn_converged",
        ]
    )
    for i in range(config.num_seeds):
        seed = config.seed + i
        data = load_digits_split(
            test_fraction=config.test_fraction, val_fraction=config.val_fraction, seed=seed
        )
        model, fitted, seconds = _train_ours(config, data, seed, out_dir / f"train_seed{seed}")
        accuracy = _accuracy(model, data.x_test, data.y_test)
        clf, sk_accuracy, sk_seconds, converged = _train_sklearn(config, data, seed)
        runs.append(
            {
                "history": fitted.history,
                "test_accuracy": accuracy,
                "sklearn_accuracy": sk_accuracy,
                "sklearn_loss": list(clf.loss_curve_),
            }
        )
        table.rows.append(
            [
                seed,
                accuracy,
                sk_accuracy,
                round(fitted.epochs, 2),
                fitted.stopped_early,
                round(seconds, 3),
                round(sk_seconds, 3),
                converged,
            ]
        )

    ours = np.array([r["test_accuracy"] for r in runs])
    theirs = np.array([r["sklearn_accuracy"] for r in runs])
    result = StudyResult(tables={"per_seed": table})
    result.metrics.update(
        test_accuracy_mean=float(ours.mean()),
        test_accuracy_std=float(ours.std(ddof=1)) if len(ours) > 1 else 0.0,
        sklearn_accuracy_mean=float(theirs.mean()),
        sklearn_accuracy_std=float(theirs.std(ddof=1)) if len(theirs) > 1 else 0.0,
        num_train=int(data.x_train.shape[0]),
        num_val=int(data.x_val.shape[0]),
        num_test=int(data.x_test.shape[0]),
    )
    result.claim(
        "test_accuracy",
        f"mean test accuracy of the perceptrons MLP over {config.num_seeds} seed(s) "
        f"is at least {config.accuracy_threshold}",
        float(ours.mean()),
        config.accuracy_threshold,
        ">=",
    )
    result.claim(
        "matches_sklearn",
        "absolute difference between our mean test accuracy and sklearn MLPClassifier's "
        f"(same hidden sizes, same split) is at most {config.sklearn_tolerance}",
        float(abs(ours.mean() - theirs.mean())),
        config.sklearn_tolerance,
        "<=",
    )
    result.figures.append(_plot(out_dir, runs))
    return result
