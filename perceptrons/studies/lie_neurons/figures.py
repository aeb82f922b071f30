"""Figures of the ``lie-neurons`` study (matplotlib ``Figure``, no pyplot state).

Each function takes the per-seed results of one or two tasks (a list over seeds of
``{model label: {metric: value}}``), writes one PNG into ``out_dir`` and returns its path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

__all__ = ["PAPER_PLATONIC", "plot_histograms", "plot_mse", "plot_platonic"]

PAPER_PLATONIC = {  # brief §5 (ICML poster): accuracy, rotated accuracy in %, params
    "MLP": (95.76, 36.54, 206_339),
    "MLP + augmentation": (81.47, 81.20, 206_339),
    "LN-LR": (99.56, 99.51, 134_664),
}


def _collect(runs: list[dict[str, dict[str, Any]]], model: str, key: str) -> list[float]:
    return [float(run[model][key]) for run in runs]


def plot_mse(out_dir: Path, panels: dict[str, list[dict[str, dict[str, Any]]]]) -> Path:
    """Bars of test MSE, plain vs conjugated, per model; one panel per task (log scale)."""
    fig = Figure(figsize=(5.2 * len(panels), 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (title, runs) in zip(axes, panels.items(), strict=True):
        labels = list(runs[0])
        pos = np.arange(len(labels))
        for j, (key, name) in enumerate((("mse", "plain test"), ("mse_conjugated", "conjugated"))):
            values = np.array([_collect(runs, m, key) for m in labels])
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
    path = out_dir / "mse_plain_vs_conjugated.png"
    fig.savefig(path, dpi=110)
    return path


def plot_histograms(
    out_dir: Path,
    invariant_runs: list[dict[str, dict[str, Any]]],
    equivariant_runs: list[dict[str, dict[str, Any]]],
) -> Path:
    """Histograms (log x) of per-sample relative errors: LN float64/float32 vs the MLP."""
    fig = Figure(figsize=(11, 3.8), layout="constrained")
    axes = fig.subplots(1, 2)
    bins = np.logspace(-17, 1, 73)
    panels = (
        ("sl(3) invariant regression: invariance error", invariant_runs, "LN-LR"),
        ("sl(3) equivariant regression: equivariance error", equivariant_runs, "LN (LB, LB, LR)"),
    )
    for ax, (title, runs, ln) in zip(axes, panels, strict=True):
        series = (
            (f"{ln}, float64", np.concatenate([r[ln]["hist_float64"] for r in runs]), "C2"),
            (f"{ln}, float32", np.concatenate([r[ln]["hist_float32"] for r in runs]), "C0"),
            ("MLP, float32", np.concatenate([r["MLP"]["hist_float32"] for r in runs]), "C3"),
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
    path = out_dir / "equivariance_error_histograms.png"
    fig.savefig(path, dpi=110)
    return path


def plot_platonic(out_dir: Path, runs: list[dict[str, dict[str, Any]]]) -> Path:
    """Bars of accuracy, plain vs rotated test sets, per model, with the paper's values."""
    fig = Figure(figsize=(7, 3.8), layout="constrained")
    ax = fig.subplots()
    labels = list(runs[0])
    pos = np.arange(len(labels))
    for j, (key, name) in enumerate((("accuracy", "plain"), ("accuracy_rotated", "rotated"))):
        values = 100 * np.array([_collect(runs, m, key) for m in labels])
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
    path = out_dir / "platonic_accuracy.png"
    fig.savefig(path, dpi=110)
    return path
