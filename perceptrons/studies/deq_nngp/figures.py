"""Figures of the ``deq-nngp`` study, one function per figure, each taking experiment results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from perceptrons.studies.common import save_figure
from perceptrons.studies.deq_nngp.experiments import (
    CovarianceHeatmap,
    DepthCommutation,
    DigitsRegression,
    GramLaw,
    LambdaMin,
    PicardRate,
)

__all__ = [
    "plot_accuracy_vs_width",
    "plot_covariance_heatmaps",
    "plot_error_vs_width_depth",
    "plot_lambda_min",
    "plot_picard_residual",
]


def plot_picard_residual(out_dir: Path, picard: PicardRate) -> Path:
    """Residual of every network against the iteration, with the predicted rate;
    saved as ``picard_residual.png``."""
    fig = Figure(figsize=(5.5, 4), layout="constrained")
    ax = fig.subplots()
    res = picard.residuals.numpy()
    its = np.arange(1, res.shape[0] + 1)
    ax.semilogy(its, res, color="C0", alpha=0.4, lw=0.8)
    ax.semilogy(
        its,
        picard.theory**its * res[0].mean() / picard.theory,
        "k--",
        label=f"rate sigma_w/sqrt 2 = {picard.theory:.3f}",
    )
    ax.set(
        xlabel="Picard iteration",
        ylabel="relative residual",
        title=f"Picard rate: ReLU DEQ, n = {picard.width} (measured {picard.rate:.3f})",
    )
    ax.legend()
    return save_figure(fig, out_dir / "picard_residual.png")


def plot_covariance_heatmaps(out_dir: Path, heatmap: CovarianceHeatmap) -> Path:
    """Finite-width mean Gram, V_phi(K*) and their difference; ``covariance_heatmaps.png``."""
    gram, target = heatmap.gram, heatmap.target
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    axes = fig.subplots(1, 3)
    lo, hi = float(min(gram.min(), target.min())), float(max(gram.max(), target.max()))
    for ax, mat, title in (
        (axes[0], gram, f"finite width n = {heatmap.width}"),
        (axes[1], target, "analytic V_phi(K*)"),
    ):
        im = ax.imshow(mat.numpy(), vmin=lo, vmax=hi, cmap="viridis")
        ax.set_title(title)
    fig.colorbar(im, ax=axes[:2])
    im = axes[2].imshow((gram - target).numpy(), cmap="RdBu_r")
    axes[2].set_title("difference")
    fig.colorbar(im, ax=axes[2])
    return save_figure(fig, out_dir / "covariance_heatmaps.png")


def plot_error_vs_width_depth(out_dir: Path, gram: GramLaw, depth: DepthCommutation) -> Path:
    """Gram error against width (log-log, with 1/n) and against depth (tied, untied,
    analytic); saved as ``error_vs_width_depth.png``."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    widths = np.array(gram.widths, float)
    ax1.loglog(widths, gram.errors, "o-", label=f"measured (slope {gram.slope:.2f})")
    ax1.loglog(widths, gram.errors[0] * widths[0] / widths, "k--", label="1/n")
    ax1.set(xlabel="width n", ylabel="rel. squared Frobenius error", title="Gram vs V(K*)")
    ax1.legend()
    its = np.arange(1, depth.analytic.numel() + 1)
    ax2.semilogy(its, depth.analytic.numpy(), "k.-", label="analytic V(K^l)")
    ax2.semilogy(its, depth.tied.numpy(), "o-", label=f"tied (DEQ), n = {depth.width}")
    ax2.semilogy(its, depth.untied.numpy(), "s--", label="untied MLP, input injection")
    ax2.set(
        xlabel="iteration / layer l",
        ylabel="rel. squared error vs V(K*)",
        title="Depth then width",
    )
    ax2.legend()
    return save_figure(fig, out_dir / "error_vs_width_depth.png")


def plot_lambda_min(out_dir: Path, lam: LambdaMin) -> Path:
    """lambda_min of the DEQ kernel against sigma_w and of the MLP kernel against depth;
    saved as ``lambda_min.png``."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(lam.weight_stds, lam.lam_v, "o-")
    ax1.set(xlabel="sigma_w", ylabel="lambda_min(V_phi(K*))", title="DEQ kernel")
    depths = list(lam.lam_mlp)
    ax2.loglog(depths, [lam.lam_mlp[k] for k in depths], "o-")
    ax2.set(
        xlabel="depth", ylabel="lambda_min(correlation)", title="Untied ReLU MLP, sigma_w^2 = 2"
    )
    return save_figure(fig, out_dir / "lambda_min.png")


def plot_accuracy_vs_width(out_dir: Path, digits: DigitsRegression) -> Path:
    """Digits test accuracy of finite-width empirical kernels against width, and of the DEQ
    NNGP; saved as ``accuracy_vs_width.png``."""
    fig = Figure(figsize=(5.5, 4), layout="constrained")
    ax = fig.subplots()
    ax.semilogx(digits.widths, digits.accuracies, "o-", label="empirical kernel h*h*^T/n")
    ax.axhline(digits.gp_accuracy, color="k", ls="--", label="DEQ NNGP")
    ax.set(xlabel="width n", ylabel="test accuracy", title="Digits, kernel regression")
    ax.legend()
    return save_figure(fig, out_dir / "accuracy_vs_width.png")
