"""Configuration and presets of the ``emofm-ctr`` study."""

from __future__ import annotations

from dataclasses import dataclass

from perceptrons.config import require
from perceptrons.data.ctr import SyntheticCTRConfig
from perceptrons.studies.base import StudyConfig
from perceptrons.train import FitConfig, OptimizerConfig

__all__ = ["ABLATIONS", "FULL", "MODELS", "QUICK", "EMOFMCTRConfig"]

MODELS = ("lr", "fm", "dnn", "deepfm", "dcnv2", "autoint", "emofm")
# ablation name -> the EMOFM switch it turns off
ABLATIONS = ("no_field_mixer", "no_type_mixer", "no_type_model", "no_ensemble")


@dataclass(frozen=True, kw_only=True)
class EMOFMCTRConfig(StudyConfig):
    """EMOFM and the CTR baselines on the synthetic generator with a known oracle (brief §6.2, §7).

    Every model is trained with the same protocol: `fit` through `CTRStep`, Adam with the same
    learning rate and L2 penalty (``fit.optimizer.weight_decay``, on every parameter including
    the embeddings), evaluated on the validation split every ``eval_every`` steps; the weights
    with the best validation AUC are kept (early stopping after ``patience`` evaluations
    without improvement). Test metrics use types hidden (EMOFM's test-time prediction).

    Attributes:
        task: The synthetic task (with planted interactions); ``task.seed`` is replaced by
            ``seed + i`` for repetition ``i`` (each repetition draws a new task).
        num_train: Training rows per repetition.
        num_val: Validation rows (model selection, early stopping).
        num_test: Test rows (every reported metric).
        num_seeds: Repetitions; claims use the mean over them.
        models: Registered models of the main comparison (must include lr, dnn and emofm).
        ablations: EMOFM ablations, each turning one switch off: ``no_field_mixer``,
            ``no_type_mixer``, ``no_type_model``, ``no_ensemble``.
        tie_models: Models trained on the interactions-off task (claim no_interaction_tie).
        embed_dim: Embedding size k of every model.
        hidden_features: MLP widths of the deep models (and of EMOFM's WM member).
        dropout: Dropout of the deep models' MLPs and EMOFM's mixers.
        field_dim: EMOFM's d1.
        type_dim: EMOFM's d2.
        type_hidden_features: EMOFM's type-branch and AM widths.
        batch_size: Mini-batch size.
        eval_every: Optimiser steps between validation evaluations.
        patience: Evaluations without a better validation AUC before stopping.
        fit: Training loop (``max_epochs`` is the cap; optimiser shared by every model).
        lr_tolerance: Claim lr_matches_first_order_oracle: max |AUC(LR) - AUC(first-order
            oracle)|.
        mixer_margin: Claim mixer_beats_dnn: AUC margin over the DNN ...
        mixer_gap_fraction: ... or fraction of the DNN -> oracle gap closed (either suffices).
        tie_tolerance: Claim no_interaction_tie: max spread of the models' mean AUCs.
        pcoc_tolerance: Claim pcoc_calibrated: max |PCOC - 1| of the main models.
        num_threads: torch intra-op threads while the study runs (restored afterwards). 1 is
            as fast for these small models, and 2 threads on a 2-core machine that is also
            doing anything else made the quick preset 14x slower (654 s instead of 46 s).
    """

    task: SyntheticCTRConfig = SyntheticCTRConfig(max_cardinality=100)
    num_train: int = 30_000
    num_val: int = 5_000
    num_test: int = 10_000
    num_seeds: int = 1
    models: tuple[str, ...] = MODELS
    ablations: tuple[str, ...] = ABLATIONS
    tie_models: tuple[str, ...] = ("lr", "fm", "dnn", "emofm")
    embed_dim: int = 8
    hidden_features: tuple[int, ...] = (64, 32)
    dropout: float = 0.1
    field_dim: int = 8
    type_dim: int = 16
    type_hidden_features: tuple[int, ...] = (32,)
    batch_size: int = 1024
    eval_every: int = 15
    patience: int = 3
    fit: FitConfig = FitConfig(
        max_steps=None,
        max_epochs=3,
        optimizer=OptimizerConfig(name="adam", lr=1e-2, weight_decay=1e-6),
        log_every=20,
        progress=False,
    )
    lr_tolerance: float = 0.01
    mixer_margin: float = 0.005
    mixer_gap_fraction: float = 0.30
    tie_tolerance: float = 0.002
    pcoc_tolerance: float = 0.05
    num_threads: int = 1

    def validate(self) -> None:
        super().validate()
        for name in ("num_train", "num_val", "num_test", "num_seeds", "batch_size", "num_threads"):
            require(getattr(self, name) >= 1, name, "must be >= 1", getattr(self, name))
        require(self.eval_every >= 1, "eval_every", "must be >= 1", self.eval_every)
        require(self.patience >= 1, "patience", "must be >= 1", self.patience)
        for name in ("lr", "dnn", "emofm"):
            require(name in self.models, "models", f"must include {name!r}", self.models)
        for name in self.ablations:
            require(name in ABLATIONS, "ablations", f"each must be one of {ABLATIONS}", name)
        require(len(self.tie_models) >= 2, "tie_models", "needs >= 2 models", self.tie_models)
        require(
            self.task.interactions, "task.interactions", "must be True (the tie run turns it off)"
        )
        require(0.0 <= self.dropout < 1.0, "dropout", "must be in [0, 1)", self.dropout)


QUICK = EMOFMCTRConfig()
FULL = EMOFMCTRConfig(
    task=SyntheticCTRConfig(max_cardinality=1000),
    num_train=200_000,
    num_val=50_000,
    num_test=100_000,
    num_seeds=3,
    embed_dim=16,
    hidden_features=(128, 64),
    field_dim=16,
    type_dim=32,
    type_hidden_features=(64,),
    batch_size=2048,
    eval_every=25,
    patience=4,
    tie_models=MODELS,
    fit=FitConfig(
        max_steps=None,
        max_epochs=3,
        optimizer=OptimizerConfig(name="adam", lr=3e-3, weight_decay=1e-6),
        log_every=25,
        progress=False,
    ),
)
