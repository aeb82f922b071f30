"""``deq-nngp``: finite-width deep equilibrium MLPs against the DEQ NNGP kernel.

Paper: Gao, Huo, Liu & Gao, *Wide Neural Networks as Gaussian Processes: Lessons from Deep
Equilibrium Models*, NeurIPS 2023, arXiv:2310.10767. Its abstract claims that wide DEQ outputs
tend to a GP with the DEQ NNGP kernel, that the depth and width limits commute (unlike deep
untied MLPs, whose kernels degenerate) and that the kernel is strictly positive definite
(docs/kernels.md, "The DEQ kernel"). The experiments (``experiments.py``) and every threshold
(`DEQNNGPConfig`) are our reconstruction; nothing is trained.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from perceptrons.studies.base import StudyResult
from perceptrons.studies.deq_nngp import experiments as ex
from perceptrons.studies.deq_nngp import figures
from perceptrons.studies.deq_nngp.config import DEQNNGPConfig

__all__ = ["run"]


def run(config: DEQNNGPConfig, out_dir: Path) -> StudyResult:
    """DEQ NNGP kernel vs finite-width DEQs: Picard rate, Gaussianity, 1/n law, lambda_min, GP."""
    seconds: dict[str, float] = {}

    def timed(name: str, experiment: Callable[[DEQNNGPConfig, int], Any], offset: int) -> Any:
        """Run one experiment (each draws from its own seeds, ``config.seed + offset``)."""
        start = time.perf_counter()
        value = experiment(config, config.seed + offset)
        seconds[name] = round(time.perf_counter() - start, 3)
        return value

    picard = timed("picard", ex.picard_rate, 100)
    gauss = timed("gaussianity", ex.output_gaussianity, 200)
    gram = timed("gram", ex.gram_law, 300)
    depth = timed("depth", ex.depth_commutation, 400)
    lam = timed("lambda", ex.lambda_min, 500)
    heat = timed("heatmap", ex.covariance_heatmap, 500)
    digits = timed("digits", ex.digits_regression, 600)
    ref = ex.reference_values()
    loop_vs_model, batched_vs_model = ex.simulators_vs_model(config, config.seed)

    result = StudyResult(
        tables={
            "reference_values": ref.table,
            "output_gaussianity": gauss.table,
            "gram_error_vs_width": gram.table,
            "depth_commutation": depth.table,
            "lambda_min_deq": lam.deq_table,
            "lambda_min_mlp": lam.mlp_table,
            "digits_accuracy": digits.table,
        }
    )
    result.metrics.update(
        picard_rate=picard.rate,
        picard_rate_theory=picard.theory,
        picard_iterations=picard.iterations,
        picard_converged=picard.converged,
        gram_slope=gram.slope,
        depth_rate=depth.rate,
        depth_rate_theory=depth.rate_theory,
        gp_accuracy=digits.gp_accuracy,
        gp_mse=digits.gp_mse,
        simulator_vs_model_max_abs=loop_vs_model,
        batched_solver_vs_model_max_abs=batched_vs_model,
        seconds=seconds,
    )
    claim = result.claim
    low, high = config.slope_range
    claim(
        "kernel_reference_values",
        "max |deq_kernel - independently derived reference values| over 5 settings (ReLU "
        "rho_in 0/0.5/0.9, erf, tanh GH-80; K*11, K*12, V11, V12) is at most 1e-6",
        ref.max_abs_error,
        1e-6,
        "<=",
    )
    claim(
        "picard_rate_matches_theory",
        f"relative error of the measured Picard rate of ReLU DEQs (n = {config.picard_width}, "
        f"sigma_w = {config.weight_std}) against sigma_w sqrt(E[phi'^2]) = sigma_w/sqrt(2) is "
        f"at most {config.rate_tolerance}",
        abs(picard.rate - picard.theory) / picard.theory,
        config.rate_tolerance,
        "<=",
    )
    claim(
        "outputs_gaussian",
        f"one-sample KS of {config.ks_networks} DEQ outputs at width {gauss.widths[-1]} against "
        f"the analytic N(0, V_phi(K*)(x, x)) is below the level-{config.ks_alpha} critical value",
        gauss.ks[-1],
        gauss.critical,
        "<",
    )
    claim(
        "outputs_gaussian_improves_with_width",
        f"KS at the largest width ({gauss.widths[-1]}) minus KS at the smallest "
        f"({gauss.widths[0]}) is negative",
        gauss.ks[-1] - gauss.ks[0],
        0.0,
        "<",
    )
    claim(
        "gram_error_one_over_n",
        f"|slope - (-1)| of log(relative squared Gram error) against log(width) over "
        f"{config.gram_widths} (slope {gram.slope:.3f}) is at most {(high - low) / 2:g}, i.e. "
        f"the slope lies in [{low}, {high}]",
        abs(gram.slope - (low + high) / 2),
        (high - low) / 2,
        "<=",
    )
    claim(
        "depth_limits_commute",
        f"over l = 1..{config.depth_iters} at n = {config.depth_width}, every entry of the "
        "mean Gram of the l-th tied (DEQ) iterate and of the l-th untied input-injected MLP "
        f"layer differ by at most {config.commute_z} standard errors (analytic finite-depth "
        f"error decays by {depth.rate:.4f} per step, theory (sigma_w^2/2)^2 = "
        f"{depth.rate_theory:.4f})",
        depth.max_z,
        config.commute_z,
        "<=",
    )
    claim(
        "lambda_min_positive",
        f"smallest eigenvalue of V_phi(K*) on {config.num_points} random inputs, minimum over "
        f"sigma_w in {config.lambda_weight_stds}, is positive",
        min(lam.lam_v),
        0.0,
        ">",
    )
    claim(
        "lambda_min_grows_with_sigma_w",
        "smallest ratio lambda_min(sigma_w next) / lambda_min(sigma_w) over the grid exceeds 1",
        float((np.array(lam.lam_v[1:]) / np.array(lam.lam_v[:-1])).min()),
        1.0,
        ">",
    )
    shallow, deep = min(lam.lam_mlp), max(lam.lam_mlp)
    claim(
        "mlp_kernel_degenerates_with_depth",
        f"lambda_min of the untied ReLU MLP correlation kernel (sigma_w^2 = 2) at depth {deep} "
        f"over that at depth {shallow} is at most {config.mlp_degeneracy_ratio}",
        lam.lam_mlp[deep] / lam.lam_mlp[shallow],
        config.mlp_degeneracy_ratio,
        "<=",
    )
    claim(
        "gp_regression_digits",
        f"GP regression with the DEQ NNGP kernel (ReLU, sigma_w = {config.weight_std}) on "
        f"scikit-learn's digits ({config.num_train} train) reaches test accuracy at least "
        f"{config.accuracy_threshold}",
        digits.gp_accuracy,
        config.accuracy_threshold,
        ">=",
    )
    result.figures += [
        figures.plot_picard_residual(out_dir, picard),
        figures.plot_covariance_heatmaps(out_dir, heat),
        figures.plot_error_vs_width_depth(out_dir, gram, depth),
        figures.plot_lambda_min(out_dir, lam),
        figures.plot_accuracy_vs_width(out_dir, digits),
    ]
    return result
