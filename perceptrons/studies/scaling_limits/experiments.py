"""Measurements of the ``scaling-limits`` study: real networks at initialisation vs their limits.

Real networks are the registered models ``shaped_mlp`` and ``scaled_resnet``, simulated in
batches by `perceptrons.theory.montecarlo.simulate_grams`; the fluctuation grid and the
unshaped q-chain use the exact Gram chains of the same module, and the limits come from
`perceptrons.theory.limits`. The claims they test are listed in docs/scaling-limits.md ("What
the paper claims"); each experiment takes the config and the study's base seed and returns a
frozen result. Nothing is trained, so `fit` is not used.

Inputs (our choice): two inputs with Gram matrix exactly I (correlation 0), from
`perceptrons.theory.inputs.orthonormal_inputs` with the fixed seed 0, shared by every width's
networks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from perceptrons.layers.shaped import ShapedReLU
from perceptrons.registry import create_model
from perceptrons.studies.base import Table
from perceptrons.studies.common import generator
from perceptrons.studies.scaling_limits.config import ScalingLimitsConfig
from perceptrons.theory.inputs import orthonormal_inputs
from perceptrons.theory.limits import (
    correlation_ode,
    effective_c2,
    simulate_correlation_sde,
    simulate_q_sde,
)
from perceptrons.theory.montecarlo import (
    GramTrajectories,
    ks_critical_value,
    ks_statistic,
    mlp_gram_chain,
    moment_matched_chain,
    resnet_gram_chain,
    simulate_grams,
)

__all__ = [
    "Q_TIMES",
    "Fluctuations",
    "ResNetVsODE",
    "SDEBands",
    "SameLimit",
    "ShapedMLPvsSDE",
    "UnshapedQ",
    "limit_table",
    "resnet_fluctuations",
    "resnet_vs_ode",
    "same_limit",
    "sde_bands",
    "shaped_mlp_vs_sde",
    "shaped_relu_c2",
    "unshaped_q",
]

Q_TIMES = (0.25, 0.5, 1.0)
"""Times t = l / n at which the unshaped q statistics are compared."""


def _inputs(width: int) -> torch.Tensor:
    """Two float32 inputs ``(2, width)`` with Gram matrix I (the same draw for every run)."""
    return orthonormal_inputs(2, width, generator=generator(0), dtype=torch.float32)


def _resnet(width: int, depth: int, branch_gain: float) -> torch.nn.Module:
    """``scaled_resnet`` behind a random input layer x_0 = W_in x / sqrt(n_in) (our choice).

    The limits assume Gaussian coordinates in the residual stream. Without an input layer the
    stream keeps the input itself, shared by every simulated network, and the ReLU branch's
    moments then carry that one input's O(1/sqrt(n)) deviation from Gaussian as a common bias
    (measured: mean V11(1) between 1.39 and 1.65 across input draws at n = 128, d = 32). A
    random input layer makes x_0 Gaussian given x and independent across networks
    (docs/scaling-limits.md, "Our choices").
    """
    return create_model(
        "scaled_resnet", width=width, depth=depth, branch_gain=branch_gain, in_features=2 * width
    )


def _mean_se(x: torch.Tensor) -> tuple[float, float]:
    x = x.double()
    return float(x.mean()), float(x.std() / math.sqrt(x.numel()))


def _log_q(rho: torch.Tensor, layer: int) -> torch.Tensor:
    """``log(l^2 (1 - rho_l))``, the log of the statistic q_l of docs/scaling-limits.md."""
    return torch.log(float(layer) ** 2 * (1.0 - rho.double()).clamp_min(1e-300))


def shaped_relu_c2(config: ScalingLimitsConfig, rate: int) -> float:
    """C^2_eff = 2N (s+ - s-)^2 / (s+^2 + s-^2) of the shaped ReLU at rate N (finite N)."""
    act = ShapedReLU(config.c_plus, config.c_minus, rate=rate)
    return effective_c2(act.s_plus, act.s_minus, rate)


# ------------------------------------------------------------------------------ results
@dataclass(frozen=True)
class ShapedMLPvsSDE:
    """Real shaped-ReLU MLPs with d = n against the correlation SDE with C^2_eff, per width.

    Attributes:
        widths: Widths n (= depths d).
        c2: C^2_eff per width.
        ks: Two-sample KS distance of the final correlations, per width.
        critical: Two-sample 95% critical value (the same for every width).
        finals: Final correlations rho_d of the networks per width, ``(networks,)``.
        sde: Final correlations of the SDE paths per width, ``(paths,)``.
        trajectories: Correlations rho_0..rho_d of every network per width,
            ``(networks, d + 1)``.
        table: Per width: n, d, C2_eff (4 decimals), means and sds of both, KS, critical,
            passes.
    """

    widths: tuple[int, ...]
    c2: list[float]
    ks: list[float]
    critical: float
    finals: dict[int, torch.Tensor]
    sde: dict[int, torch.Tensor]
    trajectories: dict[int, torch.Tensor]
    table: Table


@dataclass(frozen=True)
class SDEBands:
    """SDE final correlations at times t in (0, 1], for the quantile bands of a figure.

    Attributes:
        c2: The SDE's C^2.
        times: The times, ``(T,)``.
        finals: One sample of rho_t (5000 paths) per time.
    """

    c2: float
    times: np.ndarray
    finals: list[np.ndarray]


@dataclass(frozen=True)
class ResNetVsODE:
    """Real d^-1/2 ResNets against the correlation ODE with C^2 = sigma_r^2.

    Attributes:
        width: Width n.
        depth: Depth d.
        branch_gain: sigma_r.
        rho: Correlation of the stream x_0..x_d of every network, ``(networks, d + 1)``.
        mean: Mean final correlation.
        se: Its standard error.
        sd: Standard deviation of the final correlation.
        ode: `correlation_ode` at t = 1.
        v11_mean: Mean of V11(1) / V11(0).
        v11_theory: exp(sigma_r^2 / 2).
    """

    width: int
    depth: int
    branch_gain: float
    rho: torch.Tensor
    mean: float
    se: float
    sd: float
    ode: float
    v11_mean: float
    v11_theory: float


@dataclass(frozen=True)
class SameLimit:
    """Shaped MLP at rate d^-1/2 and ResNet with sigma_r^2 = C^2_eff, d << n: one ODE.

    Attributes:
        width: Width n.
        depth: Depth d.
        c2: C^2_eff = d kappa of the shaped ReLU at rate d.
        mlp: Correlations rho_0..rho_d of the MLPs, ``(networks, d + 1)``.
        resnet: Correlations of the ResNets' streams x_0..x_d, ``(networks, d + 1)``.
        mlp_mean: Mean final correlation of the MLPs.
        mlp_se: Its standard error.
        mlp_sd: Standard deviation of the MLPs' final correlation.
        resnet_mean: Mean final correlation of the ResNets.
        resnet_se: Its standard error.
        resnet_sd: Standard deviation of the ResNets' final correlation.
        ode: `correlation_ode` with C^2 = c2 at t = 1.
    """

    width: int
    depth: int
    c2: float
    mlp: torch.Tensor
    resnet: torch.Tensor
    mlp_mean: float
    mlp_se: float
    mlp_sd: float
    resnet_mean: float
    resnet_se: float
    resnet_sd: float
    ode: float


@dataclass(frozen=True)
class Fluctuations:
    """Spread of the ResNet's final correlation over an (n, d) grid (exact Gram chain).

    Attributes:
        spread: max over the grid of |sd(rho_d) sqrt(n) / mean - 1|.
        mean_scaled: Mean of sd(rho_d) sqrt(n) over the grid.
        table: Per (n, d): mean and sd of rho_d, sd times sqrt(n).
    """

    spread: float
    mean_scaled: float
    table: Table


@dataclass(frozen=True)
class UnshapedQ:
    """log q_t, q_l = l^2 (1 - rho_l), of the unshaped ReLU MLP at t = l / n in `Q_TIMES`.

    Attributes:
        width: Width n of the exact chain.
        ks_max: Max over t of the KS distance between the exact and the moment-matched chain.
        dev_max: Max over t of |difference| of mean and of sd of log q, large-width
            moment-matched chain against the q-SDE.
        samples: Per t: the log q samples ``exact``, ``mm`` (moment-matched, same width),
            ``big`` (moment-matched, ``q_large_width``) and ``sde``.
        table: Per t: means and sds of log q of each, the KS, and the SDE's median q.
    """

    width: int
    ks_max: float
    dev_max: float
    samples: dict[float, dict[str, torch.Tensor]]
    table: Table


# ------------------------------------------------------------------------------ experiments
def shaped_mlp_vs_sde(config: ScalingLimitsConfig, seed: int) -> ShapedMLPvsSDE:
    """``num_networks`` real shaped MLPs per width (d = n, rate "width") against the SDE."""
    rows, c2s, ks_values = [], [], []
    finals, sde_finals, trajectories = {}, {}, {}
    crit = ks_critical_value(config.num_networks, config.sde_paths)
    for i, n in enumerate(config.widths):
        model = create_model(
            "shaped_mlp",
            in_features=n,
            width=n,
            depth=n,
            out_features=None,
            c_plus=config.c_plus,
            c_minus=config.c_minus,
            rate="width",
        )
        grams = simulate_grams(
            model, _inputs(n), config.num_networks, generator=generator(seed + 10 + i)
        )
        # index l = V_l (post-activation Gram of hidden layer l); index n = V_d
        rho = grams.correlation(0, 1)[:, : n + 1]  # (networks, depth + 1)
        c2 = shaped_relu_c2(config, n)
        sde = simulate_correlation_sde(
            0.0, c2, 1.0, config.sde_paths, config.sde_steps, generator(seed + 100 + i)
        )
        ks = ks_statistic(rho[:, -1], sde)
        finals[n], sde_finals[n], trajectories[n] = rho[:, -1], sde, rho
        c2s.append(c2)
        ks_values.append(ks)
        rows.append(
            [n, n, round(c2, 4), float(rho[:, -1].mean()), float(rho[:, -1].std())]
            + [float(sde.mean()), float(sde.std()), ks, crit, ks <= crit]
        )
    table = Table(
        ["n", "d", "C2_eff", "mlp_mean", "mlp_sd", "sde_mean", "sde_sd", "ks", "ks_critical"]
        + ["passes"],
        rows,
    )
    return ShapedMLPvsSDE(
        config.widths, c2s, ks_values, crit, finals, sde_finals, trajectories, table
    )


def sde_bands(config: ScalingLimitsConfig, seed: int) -> SDEBands:
    """The correlation SDE of the largest width's C^2_eff at t = 0.1, 0.2, ..., 1."""
    c2 = shaped_relu_c2(config, config.widths[-1])
    times = np.linspace(0.1, 1.0, 10)
    finals = [
        simulate_correlation_sde(
            0.0,
            c2,
            float(s),
            5000,
            max(10, round(config.sde_steps * float(s))),
            generator(seed + 900 + i),
        ).numpy()
        for i, s in enumerate(times)
    ]
    return SDEBands(c2, times, finals)


def resnet_vs_ode(config: ScalingLimitsConfig, seed: int) -> ResNetVsODE:
    """``resnet_networks`` real ResNets against the correlation ODE."""
    n, d = config.resnet_width, config.resnet_depth
    model = _resnet(n, d, config.branch_gain)
    grams = simulate_grams(
        model, _inputs(2 * n), config.resnet_networks, generator=generator(seed + 200)
    )
    rho = grams.correlation(0, 1)[:, 1:]  # index l + 1 = x_l (index 0: the raw input)
    mean, se = _mean_se(rho[:, -1])
    v11 = grams.grams[:, -1, 0, 0] / grams.grams[:, 1, 0, 0]
    return ResNetVsODE(
        width=n,
        depth=d,
        branch_gain=config.branch_gain,
        rho=rho,
        mean=mean,
        se=se,
        sd=float(rho[:, -1].std()),
        ode=correlation_ode(0.0, config.branch_gain**2, 1.0),
        v11_mean=float(v11.mean()),
        v11_theory=math.exp(config.branch_gain**2 / 2),
    )


def same_limit(config: ScalingLimitsConfig, seed: int) -> SameLimit:
    """Shaped MLPs at rate d^-1/2 and ResNets with sigma_r^2 = C^2_eff, d << n."""
    n, d = config.limit_width, config.limit_depth
    c2 = shaped_relu_c2(config, d)  # = d * kappa
    mlp = create_model(
        "shaped_mlp",
        in_features=n,
        width=n,
        depth=d,
        out_features=None,
        c_plus=config.c_plus,
        c_minus=config.c_minus,
        rate="depth",
    )
    resnet = _resnet(n, d, math.sqrt(c2))
    mlp_grams = simulate_grams(
        mlp, _inputs(n), config.limit_networks, generator=generator(seed + 300)
    )
    res_grams = simulate_grams(
        resnet, _inputs(2 * n), config.limit_networks, generator=generator(seed + 301)
    )
    # keep V_0..V_d: the shaped MLP also records its output after index d; the ResNet's
    # index 0 is its raw input and index l + 1 its stream x_l
    rho_mlp = mlp_grams.correlation(0, 1)[:, : d + 1]
    rho_res = res_grams.correlation(0, 1)[:, 1:]
    m1, se1 = _mean_se(rho_mlp[:, -1])
    m2, se2 = _mean_se(rho_res[:, -1])
    return SameLimit(
        width=n,
        depth=d,
        c2=c2,
        mlp=rho_mlp,
        resnet=rho_res,
        mlp_mean=m1,
        mlp_se=se1,
        mlp_sd=float(rho_mlp[:, -1].std()),
        resnet_mean=m2,
        resnet_se=se2,
        resnet_sd=float(rho_res[:, -1].std()),
        ode=correlation_ode(0.0, c2, 1.0),
    )


def limit_table(resnet: ResNetVsODE, same: SameLimit) -> Table:
    """The ResNet of `resnet_vs_ode` and both networks of `same_limit` against their ODE."""
    return Table(
        ["network", "n", "d", "C2", "mean_rho", "se", "sd", "ode"],
        [
            ["resnet", resnet.width, resnet.depth, resnet.branch_gain**2]
            + [resnet.mean, resnet.se, resnet.sd, resnet.ode],
            ["shaped_mlp_rate_d", same.width, same.depth, same.c2]
            + [same.mlp_mean, same.mlp_se, same.mlp_sd, same.ode],
            ["resnet_sigma2_c2eff", same.width, same.depth, same.c2]
            + [same.resnet_mean, same.resnet_se, same.resnet_sd, same.ode],
        ],
    )


def resnet_fluctuations(config: ScalingLimitsConfig, seed: int) -> Fluctuations:
    """sd of the ResNet's final correlation times sqrt(n) over the (n, d) grid."""
    relu = torch.nn.ReLU()
    rows, scaled = [], []
    for i, n in enumerate(config.fluct_widths):
        for j, d in enumerate(config.fluct_depths):
            gen = generator(seed + 400 + 50 * i + j)
            # x_0 of each chain: rows i.i.d. N(0, I), the law of a random input layer's output
            x0 = torch.randn(config.fluct_chains, 2, n, generator=gen, dtype=torch.float64)
            grams = resnet_gram_chain(
                x0, d, config.branch_gain / math.sqrt(d), relu, config.fluct_chains, generator=gen
            )
            v = grams[:, -1]
            rho = v[:, 0, 1] / torch.sqrt(v[:, 0, 0] * v[:, 1, 1])
            sd = float(rho.std())
            scaled.append(sd * math.sqrt(n))
            rows.append([n, d, float(rho.mean()), sd, sd * math.sqrt(n)])
    scaled_arr = np.array(scaled)
    return Fluctuations(
        spread=float(np.max(np.abs(scaled_arr / scaled_arr.mean() - 1.0))),
        mean_scaled=float(scaled_arr.mean()),
        table=Table(["n", "d", "mean_rho", "sd_rho", "sd_times_sqrt_n"], rows),
    )


def unshaped_q(config: ScalingLimitsConfig, seed: int) -> UnshapedQ:
    """Exact chain, moment-matched chains (same and large width) and the q-SDE at `Q_TIMES`."""
    n, big = config.q_width, config.q_large_width
    eye = torch.eye(2, dtype=torch.float64)
    chain = mlp_gram_chain(
        eye, n, n, torch.nn.ReLU(), config.q_chains, generator=generator(seed + 500), weight_var=2.0
    )  # He init: c = 2
    rho_chain = GramTrajectories(chain).correlation(0, 1)  # (chains, n + 1)
    # the moment-matched chains return eps_l = 1 - rho_l with shape (layers, paths)
    layers = [round(t * n) for t in Q_TIMES]
    eps_mm = moment_matched_chain(
        n, n, config.q_mm_paths, generator=generator(seed + 501), record_layers=layers
    )
    big_layers = [round(t * big) for t in Q_TIMES]
    eps_big = moment_matched_chain(
        big, big, config.q_large_paths, generator=generator(seed + 502), record_layers=big_layers
    )
    q_sde = simulate_q_sde(
        torch.tensor(Q_TIMES, dtype=torch.float64), config.q_sde_paths, generator(seed + 503)
    )
    rows, ks_values, deviations, samples = [], [], [], {}
    for k, t in enumerate(Q_TIMES):
        layer, big_layer = layers[k], big_layers[k]
        log_exact = _log_q(rho_chain[:, layer], layer)
        log_mm = torch.log(layer**2 * eps_mm[k])
        log_big = torch.log(big_layer**2 * eps_big[k])
        log_sde = torch.log(q_sde[k])
        ks = ks_statistic(log_exact, log_mm)
        ks_values.append(ks)
        deviations.append(
            max(
                abs(float(log_big.mean() - log_sde.mean())),
                abs(float(log_big.std() - log_sde.std())),
            )
        )
        samples[t] = {"exact": log_exact, "mm": log_mm, "big": log_big, "sde": log_sde}
        rows.append(
            [t, float(log_exact.mean()), float(log_exact.std()), float(log_mm.mean())]
            + [float(log_mm.std()), ks, float(log_big.mean()), float(log_big.std())]
            + [float(log_sde.mean()), float(log_sde.std()), float(torch.exp(log_sde).median())]
        )
    table = Table(
        ["t", "exact_mean_logq", "exact_sd_logq", "mm_mean_logq", "mm_sd_logq", "ks_exact_mm"]
        + ["large_n_mean_logq", "large_n_sd_logq", "sde_mean_logq", "sd_sde_logq"]
        + ["sde_median_q"],
        rows,
    )
    return UnshapedQ(n, max(ks_values), max(deviations), samples, table)
