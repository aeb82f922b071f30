"""Figures of the ``mlp-digits`` study."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from perceptrons.studies.common import save_figure
from perceptrons.studies.mlp_digits.experiments import SeedRun

__all__ = ["plot_learning_curves"]


def plot_learning_curves(out_dir: Path, runs: list[SeedRun]) -> Path:
    """Train / validation loss against sklearn's training loss, and validation accuracy;
    saved as ``learning_curves.png``."""
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    for i, run in enumerate(runs):
        train = [r for r in run.history if r["split"] == "train"]
        val = [r for r in run.history if r["split"] == "val"]
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
            np.arange(1, len(run.sklearn_loss) + 1),
            run.sklearn_loss,
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
            run.test_accuracy,
            color="C0",
            ls="--",
            alpha=0.6,
            label="test (final)" if label else None,
        )
        ax_acc.axhline(
            run.sklearn_accuracy,
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
    return save_figure(fig, out_dir / "learning_curves.png")
