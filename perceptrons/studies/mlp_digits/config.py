"""Configuration and presets of the ``mlp-digits`` template study."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from perceptrons.config import require
from perceptrons.studies.base import StudyConfig, register_study
from perceptrons.train import FitConfig, OptimizerConfig

__all__ = ["FULL", "PAPER", "QUICK", "MLPDigitsConfig"]

PAPER = "Library template (no paper): MLP on scikit-learn's digits vs sklearn's MLPClassifier"


@dataclass(frozen=True, kw_only=True)
class MLPDigitsConfig(StudyConfig):
    """An MLP on scikit-learn's digits against ``sklearn.neural_network.MLPClassifier``.

    Attributes:
        hidden_features: Hidden layer widths, used by both our MLP and scikit-learn's.
        activation: Hidden activation of both models.
        dropout: Dropout after each hidden activation of our MLP (scikit-learn has none).
        num_seeds: Independent repetitions (split, initialisation, shuffling); claims use the
            mean over them.
        test_fraction: Fraction of the 1,797 samples held out for testing.
        val_fraction: Fraction of the rest used for validation (early stopping).
        batch_size: Mini-batch size of both models.
        patience: Early stopping patience in epochs without a lower validation loss.
        fit: Training loop settings of our MLP (optimiser as scikit-learn's default: Adam,
            lr 1e-3; its L2 penalty alpha=1e-4 is matched by weight decay 1e-4).
        sklearn_max_iter: Epoch budget of scikit-learn's MLPClassifier.
        accuracy_threshold: Claim ``test_accuracy``: minimum mean test accuracy.
        sklearn_tolerance: Claim ``matches_sklearn``: maximum absolute accuracy difference.
    """

    hidden_features: tuple[int, ...] = (64,)
    activation: Literal["relu", "tanh"] = "relu"
    dropout: float = 0.0
    num_seeds: int = 1
    test_fraction: float = 0.25
    val_fraction: float = 0.15
    batch_size: int = 64
    patience: int = 10
    fit: FitConfig = FitConfig(
        max_steps=None,
        max_epochs=60,
        optimizer=OptimizerConfig(name="adam", lr=1e-3, weight_decay=1e-4),
        log_every=5,
        progress=False,
    )
    sklearn_max_iter: int = 200
    accuracy_threshold: float = 0.95
    sklearn_tolerance: float = 0.02

    def validate(self) -> None:
        super().validate()
        require(len(self.hidden_features) >= 1, "hidden_features", "needs at least one layer")
        require(
            all(w >= 1 for w in self.hidden_features),
            "hidden_features",
            "widths must be >= 1",
            self.hidden_features,
        )
        require(0.0 <= self.dropout < 1.0, "dropout", "must be in [0, 1)", self.dropout)
        require(self.num_seeds >= 1, "num_seeds", "must be >= 1", self.num_seeds)
        require(
            0.0 < self.test_fraction < 1.0, "test_fraction", "must be in (0, 1)", self.test_fraction
        )
        require(
            0.0 < self.val_fraction < 1.0, "val_fraction", "must be in (0, 1)", self.val_fraction
        )
        require(self.batch_size >= 1, "batch_size", "must be >= 1", self.batch_size)
        require(self.patience >= 1, "patience", "must be >= 1", self.patience)
        require(
            self.sklearn_max_iter >= 1, "sklearn_max_iter", "must be >= 1", self.sklearn_max_iter
        )


QUICK = MLPDigitsConfig()
FULL = MLPDigitsConfig(
    hidden_features=(256, 128),
    num_seeds=5,
    fit=FitConfig(
        max_steps=None,
        max_epochs=200,
        optimizer=OptimizerConfig(name="adam", lr=1e-3, weight_decay=1e-4),
        log_every=5,
        progress=False,
    ),
    patience=20,
    sklearn_max_iter=500,
)

register_study(
    "mlp-digits",
    config=MLPDigitsConfig,
    presets={"quick": QUICK, "full": FULL},
    paper=PAPER,
    summary="Template study: an MLP on scikit-learn's digits, checked against sklearn's MLP.",
    run="perceptrons.studies.mlp_digits.run:run",
    modules=("perceptrons.models.mlp", "perceptrons.layers.mlp", "perceptrons.train.loop"),
    docs="perceptrons/studies/mlp_digits/README.md",
)
