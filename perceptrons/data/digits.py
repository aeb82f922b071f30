"""scikit-learn's bundled handwritten digits (8×8 images, 10 classes, 1,797 samples).

The data ship inside scikit-learn, so nothing is downloaded. `load_digits_split` returns a
stratified, seeded train/validation/test split, standardised with statistics of the training
part only (no test leakage).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["DigitsSplit", "load_digits_split"]


@dataclass(frozen=True)
class DigitsSplit:
    """A split of the digits data.

    Attributes:
        x_train: Features, shape (n_train, 64), float.
        y_train: Labels in [0, 10), shape (n_train,), int64.
        x_val: Validation features, shape (n_val, 64) (n_val may be 0).
        y_val: Validation labels, shape (n_val,).
        x_test: Test features, shape (n_test, 64).
        y_test: Test labels, shape (n_test,).
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def num_features(self) -> int:
        """Number of input features (64)."""
        return int(self.x_train.shape[1])

    @property
    def num_classes(self) -> int:
        """Number of classes (10)."""
        return 10


def load_digits_split(
    *,
    test_fraction: float = 0.25,
    val_fraction: float = 0.15,
    seed: int = 0,
    standardize: bool = True,
    dtype: torch.dtype = torch.float32,
) -> DigitsSplit:
    """Stratified train/validation/test split of the digits data.

    Args:
        test_fraction: Fraction of all samples held out for testing, in (0, 1).
        val_fraction: Fraction of the remaining samples used for validation, in [0, 1).
        seed: Seed of the split.
        standardize: Centre and scale every feature with the training mean and std
            (constant features keep scale 1).
        dtype: Floating dtype of the features.

    Returns:
        The split; sizes for the defaults: 1,144 train, 203 validation, 450 test.

    Raises:
        ValueError: a fraction outside its range.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction: expected a value in (0, 1), got {test_fraction}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction: expected a value in [0, 1), got {val_fraction}")
    x, y = load_digits(return_X_y=True)
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    if val_fraction > 0:
        x_train, x_val, y_train, y_val = train_test_split(
            x_rest, y_rest, test_size=val_fraction, random_state=seed + 1, stratify=y_rest
        )
    else:
        x_train, y_train = x_rest, y_rest
        x_val, y_val = x_rest[:0], y_rest[:0]
    if standardize:
        mean = x_train.mean(axis=0)
        std = x_train.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        x_train, x_val, x_test = ((a - mean) / std for a in (x_train, x_val, x_test))

    def feats(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype)

    def labels(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=torch.int64)

    return DigitsSplit(
        feats(x_train),
        labels(y_train),
        feats(x_val),
        labels(y_val),
        feats(x_test),
        labels(y_test),
    )
