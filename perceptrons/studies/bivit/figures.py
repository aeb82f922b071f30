"""Figures of the ``bivit`` study (matplotlib ``Figure``, no pyplot state)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from perceptrons.studies.bivit.experiments import DatasetRuns
from perceptrons.studies.common import save_figure

__all__ = ["plot_accuracy", "plot_attention_maps", "plot_sizes"]


def plot_accuracy(out_dir: Path, results: list[DatasetRuns], names: list[str]) -> Path:
    """Test accuracy per model (mean ± std over seeds), one group of bars per data set;
    saved as ``accuracy.png``."""
    fig = Figure(figsize=(8, 3.8), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / max(1, len(results))
    x = np.arange(len(names))
    for j, runs in enumerate(results):
        values = [runs.accuracies(n) for n in names]
        means = [float(np.mean(v)) for v in values]
        stds = [float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for v in values]
        ax.bar(x + j * width, means, width, yerr=stds, capsize=3, label=runs.dataset, alpha=0.85)
    ax.set_xticks(x + width * (len(results) - 1) / 2, names, rotation=20)
    ax.set(ylabel="test accuracy", ylim=(0, 1.02), title="Full precision vs binary variants")
    ax.legend(fontsize=8)
    return save_figure(fig, out_dir / "accuracy.png")


def plot_attention_maps(out_dir: Path, runs: DatasetRuns) -> Path:
    """Block 0, head 0 attention of the first test image: the teacher's probabilities, the
    SAB and 0.5-threshold students' binary maps; saved as ``attention_maps.png``."""
    maps = runs.seeds[0].example_maps
    titles = {"fp": "FP softmax", "sab": "SAB (binary)", "threshold": "0.5 threshold (binary)"}
    keys = [k for k in titles if k in maps]
    fig = Figure(figsize=(3.2 * len(keys), 3.3), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(keys)))
    for ax, key in zip(axes, keys, strict=True):
        image = ax.imshow(np.array(maps[key]), cmap="viridis", vmin=0)
        ax.set(title=titles[key], xlabel="key token", ylabel="query token")
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.suptitle(f"Attention maps ({runs.dataset}, block 0, head 0, first test image)")
    return save_figure(fig, out_dir / "attention_maps.png")


def plot_sizes(out_dir: Path, runs: DatasetRuns) -> Path:
    """Bytes of the binary layers' weights and of the whole model, FP32 vs packed; saved as
    ``sizes.png``."""
    check = runs.seeds[0].packed
    fig = Figure(figsize=(6, 2.8), layout="constrained")
    ax = fig.subplots()
    labels = ["binary-layer weights", "whole model"]
    fp32 = [check.binary_weight_fp32_bytes, check.fp32_total_bytes]
    packed = [check.binary_weight_bytes, check.total_bytes]
    y = np.arange(2)
    ax.barh(y + 0.2, fp32, 0.4, label="FP32")
    ax.barh(y - 0.2, packed, 0.4, label="packed")
    for yi, (a, b) in enumerate(zip(fp32, packed, strict=True)):
        ax.text(a, yi + 0.2, f" {a / 1024:.1f} KiB", va="center", fontsize=8)
        ax.text(b, yi - 0.2, f" {b / 1024:.1f} KiB ({a / b:.1f}x)", va="center", fontsize=8)
    ax.set_yticks(y, labels)
    ax.set(xlabel="bytes", title=f"Model size ({runs.dataset})", xlim=(0, max(fp32) * 1.4))
    ax.legend(fontsize=8, loc="lower right")
    return save_figure(fig, out_dir / "sizes.png")
