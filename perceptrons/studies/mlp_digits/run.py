"""``mlp-digits``: train the library's MLP on scikit-learn's digits and check it against sklearn.

This is the template every paper study copies (see `perceptrons.studies.base`): ``config.py``
(presets, registration), ``experiments.py`` (measurements as typed results), ``figures.py``
and this file, which only runs the experiments and states the claims. Nothing here writes
``result.json`` or the report: the runner does.

Claims:
    test_accuracy: our MLP's mean test accuracy over seeds is at least 0.95.
    matches_sklearn: it is within 2 points of ``sklearn.neural_network.MLPClassifier`` with
        the same hidden sizes, activation, batch size, optimiser and L2 strength, trained on
        the same split.
"""

from __future__ import annotations

from pathlib import Path

from perceptrons.studies.base import StudyResult, Table
from perceptrons.studies.common import mean_std
from perceptrons.studies.mlp_digits.config import MLPDigitsConfig
from perceptrons.studies.mlp_digits.experiments import run_seed
from perceptrons.studies.mlp_digits.figures import plot_learning_curves

__all__ = ["run"]


def run(config: MLPDigitsConfig, out_dir: Path) -> StudyResult:
    """Template study: an MLP on scikit-learn's digits, checked against sklearn's MLP."""
    runs = [run_seed(config, config.seed + i, out_dir) for i in range(config.num_seeds)]
    table = Table(
        ["seed", "accuracy", "sklearn_accuracy", "epochs", "stopped_early", "fit_seconds"]
        + ["sklearn_seconds", "sklearn_converged"],
        [
            [r.seed, r.test_accuracy, r.sklearn_accuracy, round(r.epochs, 2), r.stopped_early]
            + [round(r.seconds, 3), round(r.sklearn_seconds, 3), r.sklearn_converged]
            for r in runs
        ],
    )
    ours, ours_std = mean_std([r.test_accuracy for r in runs])
    theirs, theirs_std = mean_std([r.sklearn_accuracy for r in runs])
    result = StudyResult(tables={"per_seed": table})
    result.metrics.update(
        test_accuracy_mean=ours,
        test_accuracy_std=ours_std,
        sklearn_accuracy_mean=theirs,
        sklearn_accuracy_std=theirs_std,
        num_train=runs[-1].num_train,
        num_val=runs[-1].num_val,
        num_test=runs[-1].num_test,
    )
    result.claim(
        "test_accuracy",
        f"mean test accuracy of the perceptrons MLP over {config.num_seeds} seed(s) "
        f"is at least {config.accuracy_threshold}",
        ours,
        config.accuracy_threshold,
        ">=",
    )
    result.claim(
        "matches_sklearn",
        "absolute difference between our mean test accuracy and sklearn MLPClassifier's "
        f"(same hidden sizes, same split) is at most {config.sklearn_tolerance}",
        abs(ours - theirs),
        config.sklearn_tolerance,
        "<=",
    )
    result.figures.append(plot_learning_curves(out_dir, runs))
    return result
