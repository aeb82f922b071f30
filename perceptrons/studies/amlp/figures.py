"""Figures of the ``amlp`` study (matplotlib ``Figure``, no pyplot state)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from perceptrons.studies.amlp.config import TASKS, AMLPStudyConfig
from perceptrons.studies.amlp.experiments import AccuracyResult, MemoryResult, TimeResult
from perceptrons.studies.common import save_figure

__all__ = ["plot_accuracy", "plot_efficiency"]

_LABELS = {"softmax": "softmax (SDPA)", "naive": "naive softmax", "linear": "linear (elu+1)"}


def plot_efficiency(
    out_dir: Path, config: AMLPStudyConfig, memory: MemoryResult, timing: TimeResult
) -> Path:
    """Saved bytes and forward+backward time against length (log-log), every kind; saved as
    ``efficiency.png``."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_mem, ax_time = fig.subplots(1, 2)
    for i, kind in enumerate(config.bench_kinds):
        style = {"color": f"C{i}", "marker": "o", "label": _LABELS.get(kind, kind)}
        ax_mem.plot(memory.kinds[kind].lengths, memory.kinds[kind].saved_bytes, **style)
        ax_time.plot(timing.lengths, timing.seconds[kind], **style)
    e, h, b = config.bench_embed_dim, config.bench_num_heads, config.bench_batch_size
    ax_mem.set(
        xscale="log",
        yscale="log",
        xlabel="sequence length N",
        ylabel="bytes saved for backward",
        title=f"Activation memory (e={e}, h={h}, b={b})",
    )
    ax_time.set(
        xscale="log",
        yscale="log",
        xlabel="sequence length N",
        ylabel="seconds",
        title="Forward + backward time (this CPU)",
    )
    for ax, ticks in (
        (ax_mem, memory.kinds[config.bench_kinds[0]].lengths),
        (ax_time, timing.lengths),
    ):
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
    ax_mem.legend(fontsize=8)
    return save_figure(fig, out_dir / "efficiency.png")


def plot_accuracy(out_dir: Path, config: AMLPStudyConfig, accuracy: AccuracyResult) -> Path:
    """Token accuracy per task and decoder attention kind (mean ± std over seeds); saved as
    ``accuracy.png``."""
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(config.nar_kinds)
    x = np.arange(len(TASKS))
    for i, kind in enumerate(config.nar_kinds):
        values = [accuracy.mean[(task, kind)] for task in TASKS]
        errors = [accuracy.std[(task, kind)] for task in TASKS]
        ax.bar(x + (i - (len(config.nar_kinds) - 1) / 2) * width, values, width, yerr=errors,
               color=f"C{i}", label=kind, capsize=3)  # fmt: skip
    ax.axhline(config.accuracy_min, color="k", ls="--", lw=1, label=f"{config.accuracy_min:g}")
    names = {
        "sort": f"sort\nn {config.sort_lengths[0]}-{config.sort_lengths[1]}",
        "translation": (
            f"toy translation\nn {config.translation_lengths[0]}-{config.translation_lengths[1]}"
        ),
        "reverse": (
            f"reverse\nn {config.reverse_lengths[0]}-{config.reverse_lengths[1]}, "
            f"c={config.reverse_landmarks}"
        ),
    }
    ax.set_xticks(x, [names[t] for t in TASKS])
    ax.set(
        ylabel="token accuracy (mask-predict, predicted length)",
        ylim=(0, 1.02),
        title=f"NAR Transformer, decoder attention per kind ({config.num_seeds} seed(s))",
    )
    ax.legend(fontsize=8, loc="lower left")
    return save_figure(fig, out_dir / "accuracy.png")
