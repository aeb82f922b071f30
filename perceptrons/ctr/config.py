"""`CTRTrainConfig`: everything `perceptrons.ctr.pipeline.train` needs, as one frozen config.

Data (files, format, columns, holdout), the encoder, the model (any registered CTR model, by
name and config), the training loop and the run options; it round-trips through JSON and is
saved in every model folder as ``train_config.json`` (what ``perceptrons ctr train --config``
reads back).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from perceptrons.config import Config, require
from perceptrons.ctr.io.encoding import EncoderConfig
from perceptrons.ctr.models import CTRModelConfig, LRConfig
from perceptrons.registry import MODELS
from perceptrons.train import (
    FitConfig,
    OptimizerConfig,
)

__all__ = ["CHUNK_ROWS", "CTRTrainConfig", "ctr_model_names", "with_model"]

CHUNK_ROWS = 65_536
"""Rows per chunk when streaming a file, and per forward pass when scoring."""


def ctr_model_names() -> list[str]:
    """Registered models configured by a `CTRModelConfig` (``lr``, ``fm``, ... and plugins')."""
    return [n for n in MODELS.names() if issubclass(MODELS.get(n).config, CTRModelConfig)]


@dataclass(frozen=True, kw_only=True)
class CTRTrainConfig(Config):
    """Everything `train` needs: data, encoder, model, training loop (JSON round-trip).

    Which columns a field may name depends on ``format``: ``criteo`` files have fixed columns
    (none may be declared), ``cvr`` files may declare ``categorical`` and ``multi_valued``
    fields (``f<k>``), tables all of them. Undeclared table columns (and cvr fields) are
    classified by `infer_schema`.

    Attributes:
        train: Training file (the encoder is fitted on all of its rows).
        valid: Validation file; None holds out a seeded ``holdout`` fraction of the training
            rows instead.
        format: "criteo" (TSV), "table" (CSV/TSV/Parquet) or "cvr" (CTI 2023 challenge).
        label: Table: the 0/1 label column (None: ``"label"``).
        categorical: Columns declared categorical (cvr: fields ``f<k>``).
        numeric: Table columns declared numeric.
        multi_valued: Columns declared multi-valued (cvr: fields ``f<k>``).
        type_column: Table: a column holding each row's type (cvr rows have types).
        ignore: Table columns to leave out.
        holdout: Fraction of the training rows held out for validation when ``valid`` is
            None (at least 10 training rows are needed).
        encoder: How fields are encoded (vocabulary or hashing, numeric scaling).
        model_name: A registered CTR model (`ctr_model_names`).
        model: Its config; ``features`` is replaced by the fitted encoder's ``feature_spec``
            (and EMOFM's ``type_model`` switched off for data without row types).
        fit: The training loop (epochs, optimiser, schedule, device, progress, ...), passed to
            `fit` as it is.
        batch_size: Training rows per optimiser step.
        seed: Seed of the model's initialisation, the holdout split and the shuffling of the
            training rows (``fit.seed`` seeds `fit`'s own randomness, e.g. dropout).
        eval_every: Optimiser steps between validation AUCs (None: once per epoch); the last
            step is always evaluated.
        patience: Stop after this many evaluations without a better validation AUC (None:
            train the whole budget).
        restore_best: Return (and save) the weights of the best validation AUC instead of
            the last ones.
        skip_bad_rows: Skip and count malformed rows instead of stopping at the first.
        chunk_rows: Rows per chunk when reading files, and per forward pass when scoring.
    """

    train: str = ""
    valid: str | None = None
    format: Literal["criteo", "table", "cvr"] = "table"
    label: str | None = None
    categorical: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    multi_valued: tuple[str, ...] = ()
    type_column: str | None = None
    ignore: tuple[str, ...] = ()
    holdout: float = 0.1
    encoder: EncoderConfig = EncoderConfig()
    model_name: str = "lr"
    model: CTRModelConfig = LRConfig()
    fit: FitConfig = FitConfig(
        max_steps=None,
        max_epochs=2,
        optimizer=OptimizerConfig(lr=1e-3, fused=True),  # fused: large embedding tables
        log_every=50,
    )
    batch_size: int = 1024
    seed: int = 0
    eval_every: int | None = None
    patience: int | None = None
    restore_best: bool = True
    skip_bad_rows: bool = False
    chunk_rows: int = CHUNK_ROWS

    def validate(self) -> None:
        allowed = {
            "criteo": set(),
            "cvr": {"categorical", "multi_valued"},
            "table": {"label", "categorical", "numeric", "multi_valued", "type_column", "ignore"},
        }[self.format]
        for name in ("label", "categorical", "numeric", "multi_valued", "type_column", "ignore"):
            value = getattr(self, name)
            if value and name not in allowed:
                require(
                    False, name, f"is not used by format {self.format!r} (fixed columns)", value
                )
        require(0 < self.holdout < 1, "holdout", "must be in (0, 1)", self.holdout)
        names = ctr_model_names()
        require(
            self.model_name in names,
            "model_name",
            f"is not a CTR model (valid: {', '.join(names)})",
            self.model_name,
        )
        expected = MODELS.get(self.model_name).config
        require(
            type(self.model) is expected,
            "model",
            f"model {self.model_name!r} is configured by {expected.__name__}, got "
            f"{type(self.model).__name__}",
        )
        require(self.batch_size >= 1, "batch_size", "must be >= 1", self.batch_size)
        require(self.seed >= 0, "seed", "must be >= 0", self.seed)
        for name in ("eval_every", "patience"):
            value = getattr(self, name)
            require(value is None or value >= 1, name, "must be >= 1 or None", value)
        require(self.chunk_rows >= 1, "chunk_rows", "must be >= 1", self.chunk_rows)


def with_model(config: CTRTrainConfig, name: str) -> CTRTrainConfig:
    """``config`` training registered model ``name``: its registered defaults, unless
    ``config`` already trains ``name`` (then its model config is kept).

    Raises:
        ConfigError: ``name`` is not a CTR model (the message lists them).
    """
    if name == config.model_name:
        return config
    require(
        name in ctr_model_names(),
        "model_name",
        f"is not a CTR model (valid: {', '.join(ctr_model_names())})",
        name,
    )
    return config.replace(model_name=name, model=MODELS.get(name).make_config())
