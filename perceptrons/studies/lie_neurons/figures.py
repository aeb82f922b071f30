"""Figures of the ``lie-neurons`` study (matplotlib ``Figure``, no pyplot state).

Each function takes the `TaskResult` of one or two tasks, writes one PNG into ``out_dir``
through `perceptrons.studies.common.save_figure` and returns its path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from perceptrons.studies.common import save_figure
from perceptrons.studies.lie_neurons.experiments import (
    PAPER_PLATONIC,
    EquivariantRun,
    InvariantRun,
    PlatonicRun,
    TaskResult,
)

__all__ = ["plot_histograms", "plot_mse", "plot_platonic"]


def plot_mse(out_dir: Path, panels: dict[str, TaskResult[InvariantRun]]) -> Path:
    """Bars of test MSE, plain vs conjugated, per model; one panel per task (log scale);
    saved as ``mse_plain_vs_conjugated.png``."""
    fig = Figure(figsize=(5.2 * len(panels), 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (title, task) in zip(axes, panels.items(), strict=True):
        labels = task.models
        pos = np.arange(len(labels))
        for j, (key, name) in enumerate((("mse", "plain test"), ("mse_conjugated", "conjugated"))):
            values = np.array([task.values(m, key) for m in labels])
            ax.bar(
                pos + (j - 0.5) * 0.38,
                values.mean(1),
                0.38,
                yerr=values.std(1, ddof=1) if values.shape[1] > 1 else None,
                label=name,
                color=f"C{j}",
            )
        ax.set_xticks(pos, labels)
        ax.set(yscale="log", ylabel="test MSE", title=title)
        ax.legend(fontsize=8)
    return save_figure(fig, out_dir / "mse_plain_vs_conjugated.png")


def plot_histograms(
    out_dir: Path,
    invariant: TaskResult[InvariantRun],
    equivariant: TaskResult[EquivariantRun],
) -> Path:
    """Histograms (log x) of per-sample relative errors: LN float64/float32 vs the MLP; saved
    as ``equivariance_error_histograms.png``."""
    fig = Figure(figsize=(11, 3.8), layout="constrained")
    axes = fig.subplots(1, 2)
    bins = np.logspace(-17, 1, 73)
    panels = (
        ("sl(3) invariant regression: invariance error", invariant.runs, "LN-LR"),
        ("sl(3) equivariant regression: equivariance error", equivariant.runs, "LN (LB, LB, LR)"),
    )
    for ax, (title, runs, ln) in zip(axes, panels, strict=True):
        series = (
            (f"{ln}, float64", np.concatenate([r[ln].hist_float64 for r in runs]), "C2"),
            (f"{ln}, float32", np.concatenate([r[ln].hist_float32 for r in runs]), "C0"),
            ("MLP, float32", np.concatenate([r["MLP"].hist_float32 for r in runs]), "C3"),
        )
        for label, values, color in series:
            ax.hist(values, bins=bins, alpha=0.7, label=label, color=color)
        ax.set(
            xscale="log",
            xlabel="relative error per test sample, one random g each (exact 0 at 1e-17)",
            ylabel="count",
            title=title,
        )
        ax.legend(fontsize=8)
    return save_figure(fig, out_dir / "equivariance_error_histograms.png")


def plot_platonic(out_dir: Path, platonic: TaskResult[PlatonicRun]) -> Path:
    """Bars of accuracy, plain vs rotated test sets, per model, with the paper's values; saved
    as ``platonic_accuracy.png``."""
    fig = Figure(figsize=(7, 3.8), layout="constrained")
    ax = fig.subplots()
    labels = platonic.models
    pos = np.arange(len(labels))
    for j, (key, name) in enumerate((("accuracy", "plain"), ("accuracy_rotated", "rotated"))):
        values = 100 * np.array([platonic.values(m, key) for m in labels])
        ax.bar(
            pos + (j - 0.5) * 0.38,
            values.mean(1),
            0.38,
            yerr=values.std(1, ddof=1) if values.shape[1] > 1 else None,
            label=f"ours, {name} test",
            color=f"C{j}",
        )
        paper = [PAPER_PLATONIC[m][j] if m in PAPER_PLATONIC else np.nan for m in labels]
        ax.scatter(
            pos + (j - 0.5) * 0.38,
            paper,
            marker="_",
            s=600,
            color="k",
            zorder=3,
            label="paper" if j == 0 else None,
        )
    ax.axhline(100 / 3, color="gray", ls=":", lw=1, label="chance")
    ax.set_xticks(pos, labels)
    ax.set(ylabel="accuracy (%)", ylim=(0, 122), title="Platonic solids from homographies")
    ax.legend(fontsize=8, loc="upper center", ncol=4)
    return save_figure(fig, out_dir / "platonic_accuracy.png")
