"""Figures of the ``scaling-limits`` study, one function per figure, taking experiment results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from perceptrons.studies.common import save_figure
from perceptrons.studies.scaling_limits.experiments import (
    Q_TIMES,
    ResNetVsODE,
    SameLimit,
    SDEBands,
    ShapedMLPvsSDE,
    UnshapedQ,
)
from perceptrons.theory.limits import Q_STAR, correlation_ode

__all__ = [
    "plot_correlation_trajectories",
    "plot_final_correlation",
    "plot_ks_vs_width",
    "plot_q_distributions",
]


def plot_correlation_trajectories(
    out_dir: Path, shaped: ShapedMLPvsSDE, bands: SDEBands, resnet: ResNetVsODE, same: SameLimit
) -> Path:
    """Correlation against depth: the largest-width shaped MLPs with the SDE's quantile bands,
    and the d << n networks with their ODEs; saved as ``correlation_trajectories.png``."""
    n = shaped.widths[-1]
    fig = Figure(figsize=(11, 4), layout="constrained")
    ax_traj, ax_ode = fig.subplots(1, 2)
    rho = shaped.trajectories[n].numpy()
    t = np.arange(rho.shape[1]) / n
    for lo, hi, alpha in ((0.1, 0.9, 0.2), (0.25, 0.75, 0.35)):
        ax_traj.fill_between(
            t,
            np.quantile(rho, lo, axis=0),
            np.quantile(rho, hi, axis=0),
            color="C0",
            alpha=alpha,
            lw=0,
        )
    ax_traj.plot(t, np.median(rho, axis=0), color="C0", label=f"real shaped MLP, n = d = {n}")
    times = np.concatenate([[0.0], bands.times])
    for q_, style in ((0.1, ":"), (0.25, "--"), (0.5, "-"), (0.75, "--"), (0.9, ":")):
        values = np.concatenate([[0.0], [np.quantile(f, q_) for f in bands.finals]])
        ax_traj.plot(times, values, color="k", ls=style, lw=1)
    ax_traj.plot([], [], "k--", lw=1, label="SDE quantiles 10/25/50/75/90% (C^2_eff)")
    ax_traj.plot([], [], color="C0", alpha=0.3, lw=6, label="real MLPs, 10-90% / 25-75%")
    ax_traj.set(xlabel="t = layer / n", ylabel="correlation", title="Shaped MLP vs SDE")
    ax_traj.legend(fontsize=8, loc="upper left")
    ts = np.linspace(0, 1, 41)
    for r, label, color in (
        (same.mlp, "shaped MLP, rate d^-1/2", "C1"),
        (same.resnet, "ResNet, sigma_r^2 = C^2_eff", "C2"),
    ):
        r = r.numpy()
        tt = np.arange(r.shape[1]) / (r.shape[1] - 1)
        ax_ode.plot(tt, r.mean(axis=0), color=color, label=f"{label} (mean)")
    ax_ode.plot(
        ts,
        [correlation_ode(0.0, same.c2, float(s)) for s in ts],
        "k--",
        label=f"ODE, C^2 = {same.c2:.3f}",
    )
    r = resnet.rho.numpy()
    ax_ode.plot(
        np.arange(r.shape[1]) / (r.shape[1] - 1),
        r.mean(axis=0),
        color="C3",
        label=f"ResNet sigma_r = {resnet.branch_gain} (mean)",
    )
    ax_ode.plot(
        ts,
        [correlation_ode(0.0, resnet.branch_gain**2, float(s)) for s in ts],
        "k:",
        label=f"ODE, C^2 = {resnet.branch_gain**2:g}",
    )
    ax_ode.set(xlabel="t = layer / d", ylabel="mean correlation", title="d << n: ODE limit")
    ax_ode.legend(fontsize=8)
    return save_figure(fig, out_dir / "correlation_trajectories.png")


def plot_final_correlation(out_dir: Path, shaped: ShapedMLPvsSDE) -> Path:
    """Histograms and QQ plots of the final correlation per width against the SDE; saved as
    ``final_correlation.png``."""
    fig = Figure(figsize=(11, 4), layout="constrained")
    ax_hist, ax_qq = fig.subplots(1, 2)
    bins = np.linspace(-1, 1, 41)
    probs = np.linspace(0.01, 0.99, 99)
    for i, width in enumerate(shaped.widths):
        finals = shaped.finals[width].numpy()
        ax_hist.hist(
            finals,
            bins=bins,
            density=True,
            histtype="step",
            color=f"C{i}",
            label=f"real MLP n = d = {width}",
        )
        sde_q = np.quantile(shaped.sde[width].numpy(), probs)
        ax_qq.plot(
            sde_q, np.quantile(finals, probs), ".", ms=3, color=f"C{i}", label=f"n = {width}"
        )
    ax_hist.hist(
        shaped.sde[shaped.widths[-1]].numpy(),
        bins=bins,
        density=True,
        color="k",
        alpha=0.2,
        label="SDE (largest n's C^2_eff)",
    )
    ax_hist.set(xlabel="final correlation rho_T", ylabel="density", title="Final correlation")
    ax_hist.legend(fontsize=8)
    ax_qq.plot([-1, 1], [-1, 1], "k--", lw=1)
    ax_qq.set(xlabel="SDE quantile", ylabel="real MLP quantile", title="QQ: finite vs limit")
    ax_qq.legend(fontsize=8)
    return save_figure(fig, out_dir / "final_correlation.png")


def plot_ks_vs_width(out_dir: Path, shaped: ShapedMLPvsSDE) -> Path:
    """KS distance of the shaped MLPs to the SDE against width (log-log); ``ks_vs_width.png``."""
    fig = Figure(figsize=(5.5, 4), layout="constrained")
    ax = fig.subplots()
    ax.loglog(shaped.widths, shaped.ks, "o-", label="KS(real MLP, SDE)")
    ax.loglog(
        shaped.widths, [shaped.critical] * len(shaped.widths), "k--", label="95% critical value"
    )
    ax.set(xlabel="width n (= depth d)", ylabel="KS distance", title="KS vs width")
    ax.legend(fontsize=8)
    return save_figure(fig, out_dir / "ks_vs_width.png")


def plot_q_distributions(out_dir: Path, q: UnshapedQ, q_inf: torch.Tensor) -> Path:
    """log q_t histograms at `Q_TIMES` (exact chain, moment-matched chain, q-SDE) and the
    infinite-width q_l against l; saved as ``q_distributions.png``."""
    fig = Figure(figsize=(13, 3.8), layout="constrained")
    axes = fig.subplots(1, 4)
    for ax, t_ in zip(axes[:3], Q_TIMES, strict=True):
        s = q.samples[t_]
        lo = float(min(v.min() for v in s.values()))
        hi = float(max(v.max() for v in s.values()))
        b = np.linspace(lo, hi, 50)
        ax.hist(
            s["exact"].numpy(),
            bins=b,
            density=True,
            histtype="step",
            lw=1.5,
            label=f"exact chain n = {q.width}",
        )
        ax.hist(
            s["mm"].numpy(),
            bins=b,
            density=True,
            histtype="step",
            ls="--",
            label="moment-matched chain",
        )
        ax.hist(s["sde"].numpy(), bins=b, density=True, color="k", alpha=0.2, label="q-SDE")
        ax.set(xlabel="log q_t", title=f"Unshaped ReLU MLP: t = {t_}")
    axes[0].legend(fontsize=7)
    layers = np.arange(1, q_inf.numel() + 1)
    axes[3].semilogx(layers, q_inf.numpy(), label="l^2 (1 - rho_l), infinite width")
    axes[3].axhline(Q_STAR, color="k", ls="--", label="9 pi^2 / 2")
    axes[3].set(xlabel="layer l", ylabel="q_l", title="q_l -> 9 pi^2/2")
    axes[3].legend(fontsize=7)
    return save_figure(fig, out_dir / "q_distributions.png")
