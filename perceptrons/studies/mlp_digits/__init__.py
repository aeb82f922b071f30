"""``mlp-digits``: the template study (an MLP on scikit-learn's digits, checked against sklearn)."""

from perceptrons.studies.mlp_digits.config import MLPDigitsConfig
from perceptrons.studies.mlp_digits.run import run

__all__ = ["MLPDigitsConfig", "run"]
