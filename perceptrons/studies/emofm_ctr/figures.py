"""Figures of the ``emofm-ctr`` study (matplotlib ``Figure``, no pyplot state)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from perceptrons.studies.common import save_figure
from perceptrons.studies.emofm_ctr.experiments import ORACLES, Comparison

__all__ = ["plot_ablations", "plot_auc_per_model", "plot_calibration"]

_STYLES = {"oracle": "-", "oracle_type_known": ":", "first_order_oracle": "--"}


def _means_stds(values: list[list[float]]) -> tuple[list[float], list[float]]:
    means = [float(np.mean(v)) for v in values]
    stds = [float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for v in values]
    return means, stds


def plot_auc_per_model(out_dir: Path, comparison: Comparison, models: list[str]) -> Path:
    """Test AUC per main model (mean ± std over seeds) against the three oracles; saved as
    ``auc_per_model.png``."""
    fig = Figure(figsize=(7.5, 4), layout="constrained")
    ax = fig.subplots()
    runs = comparison.planted
    means, stds = _means_stds([runs.values(n, "auc") for n in models])
    ax.bar(models, means, yerr=stds, capsize=4, color="C0", alpha=0.8)
    for key, label in ORACLES:
        ax.axhline(np.mean(runs.oracle(key)), color="k", ls=_STYLES[key], lw=1, label=label)
    low = min(min(means) - max(stds + [0.0]), np.mean(runs.oracle("first_order_oracle"))) - 0.01
    high = max(np.mean(runs.oracle("oracle_type_known")), max(means)) + 0.01
    ax.set(ylim=(low, high), ylabel="test AUC (mean ± std over seeds)", title="AUC per model")
    ax.legend(fontsize=8, loc="lower right")
    return save_figure(fig, out_dir / "auc_per_model.png")


def plot_ablations(out_dir: Path, comparison: Comparison, ablations: list[str]) -> Path:
    """Test AUC of the DNN, EMOFM with one switch off and EMOFM, against the types-hidden
    oracle; saved as ``ablations.png``."""
    fig = Figure(figsize=(7, 3.8), layout="constrained")
    ax = fig.subplots()
    runs = comparison.planted
    names = ["dnn", *ablations, "emofm"]
    means, stds = _means_stds([runs.values(n, "auc") for n in names])
    oracle = float(np.mean(runs.oracle("oracle")))
    colors = ["C2" if n == "emofm" else "C1" if n == "dnn" else "C0" for n in names]
    ax.barh(names, means, xerr=stds, capsize=4, color=colors, alpha=0.8)
    ax.axvline(oracle, color="k", lw=1, label="oracle (types hidden)")
    ax.set(
        xlim=(min(means) - 0.01, max(max(means), oracle) + 0.005),
        xlabel="test AUC",
        title="EMOFM ablations (one switch off)",
    )
    ax.legend(fontsize=8, loc="lower right")
    return save_figure(fig, out_dir / "ablations.png")


def plot_calibration(out_dir: Path, comparison: Comparison) -> Path:
    """Reliability curves (deciles of the prediction) of the main models on the first seed's
    test rows; saved as ``calibration.png``."""
    fig = Figure(figsize=(5, 4.5), layout="constrained")
    ax = fig.subplots()
    top = 0.0
    for i, (name, test) in enumerate(comparison.calibration.items()):
        mean_p, rate = test.reliability
        top = max(top, *mean_p, *rate)
        ax.plot(mean_p, rate, "o-", ms=3, color=f"C{i}", label=f"{name} (PCOC {test.pcoc:.3f})")
    ax.plot([0, top], [0, top], "k--", lw=1, label="perfect calibration")
    ax.set(
        xlabel="mean predicted click probability (decile)",
        ylabel="observed click rate",
        title="Calibration on the test rows (first seed)",
    )
    ax.legend(fontsize=7)
    return save_figure(fig, out_dir / "calibration.png")
