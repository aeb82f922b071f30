"""``scaling-limits``: finite networks at initialisation against their SDE/ODE limits.

Paper: Mufan (Bill) Li and Mihai Nica, *Differential Equation Scaling Limits of Shaped and
Unshaped Neural Networks*, TMLR 2023, arXiv:2310.12079, with the neural covariance SDE of Li,
Nica & Roy 2022, arXiv:2206.02768. The claims tested are those of docs/scaling-limits.md ("What
the paper claims"): shaped MLPs follow the correlation SDE (d = n), d^-1/2 ResNets and shaped
MLPs at rate d^-1/2 share one ODE when d << n with O(1/sqrt(n)) ResNet fluctuations at any
depth, and the unshaped ReLU MLP's q_l = l^2 (1 - rho_l) follows the q-SDE (finite width) and
tends to 9 pi^2 / 2 (infinite width). The experiments (``experiments.py``) and every threshold
(`ScalingLimitsConfig`) are our reconstruction; nothing is trained.
"""

from __future__ import annotations

import math
from pathlib import Path

from perceptrons.studies.base import StudyResult
from perceptrons.studies.scaling_limits import experiments as ex
from perceptrons.studies.scaling_limits import figures
from perceptrons.studies.scaling_limits.config import ScalingLimitsConfig
from perceptrons.theory.limits import Q_STAR, q_infinite_width

__all__ = ["run"]


def run(config: ScalingLimitsConfig, out_dir: Path) -> StudyResult:
    """Shaped/unshaped MLPs and d^-1/2 ResNets at initialisation vs their SDE/ODE limits."""
    seed = config.seed
    shaped = ex.shaped_mlp_vs_sde(config, seed)
    resnet = ex.resnet_vs_ode(config, seed)
    same = ex.same_limit(config, seed)
    fluct = ex.resnet_fluctuations(config, seed)
    q = ex.unshaped_q(config, seed)
    q_inf = q_infinite_width(config.q_limit_layers)
    q_last = float(q_inf[-1])

    result = StudyResult()
    claim = result.claim
    claim(
        "shaped_mlp_matches_sde",
        f"KS between final correlations of {config.num_networks} real shaped MLPs "
        f"(n = d = {shaped.widths[-1]}) and the correlation SDE with C^2_eff is below the "
        "two-sample 95% critical value (threshold shown)",
        shaped.ks[-1],
        shaped.critical,
        "<=",
    )
    claim(
        "ks_shrinks_with_width",
        f"KS at the largest width ({shaped.widths[-1]}) is below the KS at the smallest width "
        f"({shaped.widths[0]}) (threshold = smallest width's KS)",
        shaped.ks[-1],
        shaped.ks[0],
        "<",
    )
    claim(
        "resnet_matches_ode",
        f"|mean final correlation of {config.resnet_networks} real ResNets (n = {resnet.width}, "
        f"d = {resnet.depth}, sigma_r = {resnet.branch_gain}) - correlation_ode| in standard "
        f"errors is at most 3 (ODE value {resnet.ode:.5f})",
        abs(resnet.mean - resnet.ode) / resnet.se,
        3.0,
        "<=",
    )
    claim(
        "resnet_and_shaped_mlp_same_limit",
        f"with d = {same.depth} << n = {same.width}, |mean final correlation of the shaped MLP "
        f"at rate d^-1/2 - that of a ResNet with sigma_r^2 = C^2_eff = {same.c2:.4f}| in "
        "combined standard errors is at most 3",
        abs(same.mlp_mean - same.resnet_mean) / math.hypot(same.mlp_se, same.resnet_se),
        3.0,
        "<=",
    )
    claim(
        "resnet_fluctuations_independent_of_depth",
        "max over the (n, d) grid of |sd(rho_1) sqrt(n) / mean - 1| (spread ~ 1/sqrt(n), "
        f"independent of d; exact Gram chain) is at most {config.fluct_tolerance}",
        fluct.spread,
        config.fluct_tolerance,
        "<=",
    )
    claim(
        "unshaped_q_matches_sde",
        "the moment-matched chain (the q-SDE's discretisation) reproduces the exact finite-width "
        f"chain at n = {q.width}: max KS of log q over t = 0.25, 0.5, 1",
        q.ks_max,
        config.q_ks_threshold,
        "<=",
    )
    claim(
        "q_sde_matches_large_width_chain",
        f"at n = {config.q_large_width} the moment-matched chain and the q-SDE agree on mean and "
        "sd of log q at t = 0.25, 0.5, 1: max absolute difference",
        q.dev_max,
        config.q_sde_tolerance,
        "<=",
    )
    claim(
        "q_infinite_width_limit",
        f"|l^2 (1 - rho_l) / (9 pi^2 / 2) - 1| at l = {config.q_limit_layers} (infinite width)",
        abs(q_last / Q_STAR - 1.0),
        0.01,
        "<=",
    )
    result.tables["a1_shaped_mlp_vs_sde"] = shaped.table
    result.tables["a2_resnet_and_same_limit"] = ex.limit_table(resnet, same)
    result.tables["a2_resnet_fluctuations"] = fluct.table
    result.tables["a3_unshaped_q"] = q.table
    result.metrics.update(
        resnet_v11_mean=resnet.v11_mean,
        resnet_v11_theory=resnet.v11_theory,
        q_at_limit_layers=q_last,
        q_star=Q_STAR,
        **{f"q_at_{l}": float(q_inf[l - 1]) for l in (10, 100, 1000) if l <= q_inf.numel()},
        resnet_sd_times_sqrt_n_mean=fluct.mean_scaled,
    )
    result.figures += [
        figures.plot_correlation_trajectories(
            out_dir, shaped, ex.sde_bands(config, seed), resnet, same
        ),
        figures.plot_final_correlation(out_dir, shaped),
        figures.plot_ks_vs_width(out_dir, shaped),
        figures.plot_q_distributions(out_dir, q, q_inf),
    ]
    return result
