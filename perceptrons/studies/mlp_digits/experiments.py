"""Measurements of the ``mlp-digits`` study: our MLP and scikit-learn's on one digits split."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from perceptrons.data.digits import DigitsSplit, load_digits_split
from perceptrons.data.loader import TensorLoader
from perceptrons.registry import create_model
from perceptrons.studies.common import accuracy
from perceptrons.studies.mlp_digits.config import MLPDigitsConfig
from perceptrons.train import EarlyStopping, Evaluator, fit
from perceptrons.train.steps import classification_step

__all__ = ["SeedRun", "run_seed", "train_ours", "train_sklearn"]


@dataclass(frozen=True)
class SeedRun:
    """Both models trained and tested on the split of one seed.

    Attributes:
        seed: Seed of the split, initialisation and shuffling.
        num_train: Training rows (validation and test: ``num_val``, ``num_test``).
        num_val: Validation rows (early stopping).
        num_test: Test rows.
        test_accuracy: Our MLP's test accuracy.
        history: Our run's ``metrics.jsonl`` records (train and val).
        epochs: Epochs our run trained (early stopping may cut it).
        stopped_early: Whether early stopping ended our run.
        seconds: Wall time of our `fit`.
        sklearn_accuracy: ``MLPClassifier``'s test accuracy.
        sklearn_loss: Its training loss per epoch (``loss_curve_``).
        sklearn_seconds: Its fit time.
        sklearn_converged: False when it warned that it did not converge.
    """

    seed: int
    num_train: int
    num_val: int
    num_test: int
    test_accuracy: float
    history: list[dict[str, Any]]
    epochs: float
    stopped_early: bool
    seconds: float
    sklearn_accuracy: float
    sklearn_loss: list[float]
    sklearn_seconds: float
    sklearn_converged: bool


def train_ours(config: MLPDigitsConfig, data: DigitsSplit, seed: int, out_dir: Path):
    """Our ``mlp`` trained by `fit` with early stopping on the validation loss.

    Returns:
        ``(model in eval mode, FitResult, seconds)``.
    """
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
        correct = (logits.argmax(dim=-1) == data.y_val).float().mean()
        return {"loss": float(loss), "accuracy": float(correct)}

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


def train_sklearn(config: MLPDigitsConfig, data: DigitsSplit, seed: int):
    """``sklearn.neural_network.MLPClassifier`` with our hidden sizes, activation, batch size,
    optimiser (Adam at our learning rate) and L2 strength (our weight decay).

    Returns:
        ``(classifier, test accuracy, seconds, converged)``.
    """
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
    score = float(clf.score(data.x_test.double().numpy(), data.y_test.numpy()))
    return clf, score, seconds, converged


def run_seed(config: MLPDigitsConfig, seed: int, out_dir: Path) -> SeedRun:
    """Split the digits with ``seed``, train both models, test them."""
    data = load_digits_split(
        test_fraction=config.test_fraction, val_fraction=config.val_fraction, seed=seed
    )
    model, fitted, seconds = train_ours(config, data, seed, out_dir / f"train_seed{seed}")
    clf, sk_accuracy, sk_seconds, converged = train_sklearn(config, data, seed)
    return SeedRun(
        seed=seed,
        num_train=int(data.x_train.shape[0]),
        num_val=int(data.x_val.shape[0]),
        num_test=int(data.x_test.shape[0]),
        test_accuracy=accuracy(model, data.x_test, data.y_test),
        history=fitted.history,
        epochs=fitted.epochs,
        stopped_early=fitted.stopped_early,
        seconds=seconds,
        sklearn_accuracy=sk_accuracy,
        sklearn_loss=[float(v) for v in clf.loss_curve_],
        sklearn_seconds=sk_seconds,
        sklearn_converged=converged,
    )
