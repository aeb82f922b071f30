"""Measurements of the ``deq-nngp`` study: finite-width ReLU DEQs against the DEQ NNGP kernel.

Each experiment takes the config and a seed and returns a frozen result. The finite networks
come from `perceptrons.theory.deq_montecarlo` (many independent DEQs, batched), the kernels
from `perceptrons.theory.kernels.deq_kernel` / `deq_depth_kernels`, and GP regression from
`perceptrons.theory.gp`. Nothing is trained, so `fit` is not used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from perceptrons.registry import create_model
from perceptrons.studies.base import Table
from perceptrons.studies.common import generator
from perceptrons.studies.deq_nngp.config import DEQNNGPConfig
from perceptrons.theory.deq_montecarlo import (
    sample_deq_equilibria,
    sample_deq_iterate_grams,
    solve_deq_equilibria,
)
from perceptrons.theory.dual import dual_matrix, nngp_recursion, relu_dual
from perceptrons.theory.gp import DEQKernel, NNGPRegressor, kernel_ridge_predict
from perceptrons.theory.inputs import correlated_inputs, sphere_inputs
from perceptrons.theory.kernels import Erf, Tanh, deq_kernel
from perceptrons.theory.kernels.deq import deq_depth_kernels
from perceptrons.theory.ks import ks_critical_value, ks_normal_statistic

__all__ = [
    "REFERENCE",
    "CovarianceHeatmap",
    "DepthCommutation",
    "DigitsRegression",
    "GramLaw",
    "LambdaMin",
    "OutputGaussianity",
    "PicardRate",
    "ReferenceValues",
    "covariance_heatmap",
    "depth_commutation",
    "digits_regression",
    "gram_law",
    "lambda_min",
    "output_gaussianity",
    "picard_rate",
    "reference_values",
    "simulators_vs_model",
]

REFERENCE = (
    ("relu", 0.0, (1.219512, 0.076936, 0.609756, 0.213712)),
    ("relu", 0.5, (1.219512, 0.636968, 0.609756, 0.380467)),
    ("relu", 0.9, (1.219512, 1.100037, 0.609756, 0.555658)),
    ("erf", 0.5, (1.178381, 0.581014, 0.495503, 0.225040)),
    ("tanh", 0.5, (1.151189, 0.570245, 0.419970, 0.195124)),
)
"""``(activation, rho_in, (K*11, K*12, V11, V12))`` for two inputs with ``|x|^2/d = 1``,
``sigma_w = 0.6``, ``sigma_u = 1``, no bias, to 6 decimals (tanh: 80-node Gauss–Hermite).
Computed independently of this library (our reconstruction): the ReLU diagonal in closed form,
``K*11 = 1 / (1 - sigma_w^2 / 2) = 1.219512``, every other entry by a separate fixed-point
iteration of ``K = sigma_w^2 V_phi(K) + Sigma^1`` (docs/kernels.md, "The DEQ kernel")."""


def _hidden_kernel(x: torch.Tensor, config: DEQNNGPConfig) -> torch.Tensor:
    """``V_phi(K*)`` ``(p, p)``: the limit of the Gram ``h* h*^T / n``."""
    k, _ = deq_kernel(x, weight_std=config.weight_std, input_std=config.input_std, output="hidden")
    return k


def _equilibria(x: torch.Tensor, width: int, networks: int, config: DEQNNGPConfig, seed: int):
    return sample_deq_equilibria(
        x,
        width,
        networks,
        weight_std=config.weight_std,
        input_std=config.input_std,
        generator=generator(seed),
        tol=config.tol,
        max_iter=config.max_iter,
    )


def _log_slope(xs: np.ndarray, ys: np.ndarray) -> float:
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


# ------------------------------------------------------------------------------ results
@dataclass(frozen=True)
class ReferenceValues:
    """`deq_kernel` against `REFERENCE`.

    Attributes:
        max_abs_error: Largest absolute deviation over all rows and quantities.
        table: One row per (activation, rho_in, quantity): reference, measured, abs_error.
    """

    max_abs_error: float
    table: Table


@dataclass(frozen=True)
class PicardRate:
    """Linear rate of Picard iteration of finite ReLU DEQs at two inputs with ``|x|^2/d = 1``.

    Attributes:
        width: Width n of the networks.
        residuals: Relative residual per iteration and network, ``(T, networks)``.
        median: Median residual over networks per iteration, ``(T,)``.
        rate: Measured rate: exp of the slope of log(median) against the iteration, fitted
            where 1e-13 < median < 1e-2 (the linear regime, below the transient and above
            round-off).
        theory: sigma_w sqrt(E[ReLU'(u)^2]) = sigma_w / sqrt(2), the local rate.
        iterations: Number of iterations T.
        converged: Whether every network reached ``config.tol``.
    """

    width: int
    residuals: torch.Tensor
    median: np.ndarray
    rate: float
    theory: float
    iterations: int
    converged: bool


@dataclass(frozen=True)
class OutputGaussianity:
    """Outputs ``v^T h* / sqrt(n)`` (sigma_v = 1) of many DEQs at x = 1 in R^d, per width.

    Attributes:
        widths: The widths swept.
        ks: One-sample KS distance to the analytic N(0, V_phi(K*)(x, x)) per width.
        critical: Level-``ks_alpha`` critical value of the KS distance.
        variance: The analytic variance V_phi(K*)(x, x).
        outputs: The outputs per width, each ``(networks,)``.
        table: Per width: moments, the mean of |h*|^2/n (the exact conditional variance
            E[f^2 | h*], free of the readout's noise) with its standard error, excess
            kurtosis, KS and its critical value.
    """

    widths: tuple[int, ...]
    ks: list[float]
    critical: float
    variance: float
    outputs: dict[int, torch.Tensor]
    table: Table


@dataclass(frozen=True)
class GramLaw:
    """Relative squared Frobenius error of the finite Gram ``h* h*^T / n`` against V_phi(K*).

    Attributes:
        widths: The widths swept.
        errors: Mean error over networks per width.
        slope: Slope of log(error) against log(width) (the 1/n law predicts -1).
        table: Per width: networks, mean error, its standard error, error times width.
    """

    widths: tuple[int, ...]
    errors: list[float]
    slope: float
    table: Table


@dataclass(frozen=True)
class DepthCommutation:
    """Grams of the l-th tied Picard iterate and untied injected-MLP layer, l = 1..L.

    Attributes:
        width: Width n of both kinds of networks.
        max_z: Largest |mean tied - mean untied| Gram entry over l, in standard errors.
        rate: Median step ratio of the analytic finite-depth error (where above 1e-14).
        rate_theory: (sigma_w^2 / 2)^2, the ReLU prediction (sigma_w^2 E[phi'^2])^2.
        analytic: Relative squared error of V_phi(K^l) against V_phi(K*), ``(L,)``.
        tied: Mean relative squared error of the tied Grams against V_phi(K*), ``(L,)``.
        untied: The same for the untied Grams, ``(L,)``.
        table: Per l: the three errors, the tied error against V_phi(K^l), and the z-score.
    """

    width: int
    max_z: float
    rate: float
    rate_theory: float
    analytic: torch.Tensor
    tied: torch.Tensor
    untied: torch.Tensor
    table: Table


@dataclass(frozen=True)
class LambdaMin:
    """Smallest eigenvalues of the DEQ kernel (against sigma_w) and of a deep MLP's kernel.

    Attributes:
        weight_stds: The sigma_w grid.
        lam_v: lambda_min of V_phi(K*) per sigma_w.
        lam_mlp: lambda_min of the untied ReLU MLP's correlation kernel (sigma_w^2 = 2, no
            bias, no injection) per depth.
        deq_table: Per sigma_w: lambda_min of K* and of V_phi(K*).
        mlp_table: Per depth: lambda_min and the largest off-diagonal correlation.
    """

    weight_stds: tuple[float, ...]
    lam_v: list[float]
    lam_mlp: dict[int, float]
    deq_table: Table
    mlp_table: Table


@dataclass(frozen=True)
class CovarianceHeatmap:
    """Mean finite-width Gram on the lambda_min inputs against the analytic V_phi(K*).

    Attributes:
        width: Width n of the networks.
        gram: Mean Gram over the networks, ``(p, p)``.
        target: V_phi(K*), ``(p, p)``.
    """

    width: int
    gram: torch.Tensor
    target: torch.Tensor


@dataclass(frozen=True)
class DigitsRegression:
    """Kernel regression on scikit-learn's digits: the DEQ NNGP and finite empirical kernels.

    Attributes:
        widths: Widths of the finite-width empirical kernels h* h*^T / n.
        accuracies: Test accuracy of kernel ridge regression with each empirical kernel.
        gp_accuracy: Test accuracy of `NNGPRegressor` with the DEQ kernel V_phi(K*).
        gp_mse: Its test mean squared error against the centred one-hot targets.
        table: Per width (and the infinite-width row): accuracy, MSE, solver convergence.
    """

    widths: tuple[int, ...]
    accuracies: list[float]
    gp_accuracy: float
    gp_mse: float
    table: Table


# ------------------------------------------------------------------------------ experiments
def reference_values() -> ReferenceValues:
    """`deq_kernel` (K* and V_phi(K*)) at the settings of `REFERENCE`."""
    table = Table(["activation", "rho_in", "quantity", "reference", "measured", "abs_error"])
    worst = 0.0
    for name, rho, expected in REFERENCE:
        x = correlated_inputs(rho, 2)
        activation = {"relu": None, "erf": Erf(), "tanh": Tanh(num_nodes=80)}[name]
        kwargs = {"weight_std": 0.6, "input_std": 1.0, "activation": activation}
        k, _ = deq_kernel(x, **kwargs)
        v, _ = deq_kernel(x, output="hidden", **kwargs)
        measured = (float(k[0, 0]), float(k[0, 1]), float(v[0, 0]), float(v[0, 1]))
        for quantity, want, got in zip(
            ("K*11", "K*12", "V11", "V12"), expected, measured, strict=True
        ):
            err = abs(got - want)
            worst = max(worst, err)
            table.rows.append([name, rho, quantity, want, got, err])
    return ReferenceValues(worst, table)


def picard_rate(config: DEQNNGPConfig, seed: int) -> PicardRate:
    """Picard residuals of ``picard_networks`` DEQs of width ``picard_width``."""
    x = sphere_inputs(2, config.in_features, generator=generator(seed))
    sol = _equilibria(x, config.picard_width, config.picard_networks, config, seed + 1)
    median = torch.nanmedian(sol.residuals, dim=1).values.numpy()
    iters = np.arange(1, median.size + 1)
    keep = (median < 1e-2) & (median > 1e-13)
    rate = math.exp(float(np.polyfit(iters[keep], np.log(median[keep]), 1)[0]))
    return PicardRate(
        width=config.picard_width,
        residuals=sol.residuals,
        median=median,
        rate=rate,
        theory=config.weight_std / math.sqrt(2.0),  # E[ReLU'(u)^2] = 1/2 for any variance
        iterations=int(median.size),
        converged=bool(sol.converged.all()),
    )


def output_gaussianity(config: DEQNNGPConfig, seed: int) -> OutputGaussianity:
    """Readouts of ``ks_networks`` DEQs per width at x = 1, one-sample KS against N(0, V)."""
    x = torch.ones(1, config.in_features, dtype=torch.float64)
    variance = float(_hidden_kernel(x, config)[0, 0])  # sigma_v = 1
    critical = ks_critical_value(config.ks_networks, alpha=config.ks_alpha)
    table = Table(
        ["width", "networks", "converged", "mean", "variance", "mean_sq_norm"]
        + ["mean_sq_norm_se", "analytic_variance", "excess_kurtosis", "ks", "ks_critical"]
        + ["passes"]
    )
    ks_values, outputs = [], {}
    for i, n in enumerate(config.ks_widths):
        gen = generator(seed + 10 + i)
        sol = sample_deq_equilibria(
            x,
            n,
            config.ks_networks,
            weight_std=config.weight_std,
            input_std=config.input_std,
            generator=gen,
            tol=config.ks_tol,
            max_iter=config.max_iter,
            dtype=torch.float32,
        )
        h = sol.hidden[:, 0, :].double()  # (networks, n)
        v = torch.randn(config.ks_networks, n, generator=gen, dtype=torch.float64)
        f = (v * h).sum(dim=1) / math.sqrt(n)  # sigma_v v^T h* / sqrt(n)
        sq_norm = (h * h).sum(dim=1) / n  # E[f^2 | h*] = |h*|^2 / n exactly
        ks = ks_normal_statistic(f, variance)
        z = f / f.std()
        kurt = float((((z - z.mean()) ** 4).mean()) - 3.0)
        ks_values.append(ks)
        outputs[n] = f
        table.rows.append(
            [n, config.ks_networks, int(sol.converged.sum()), float(f.mean()), float(f.var())]
            + [float(sq_norm.mean()), float(sq_norm.std() / math.sqrt(config.ks_networks))]
            + [variance, kurt, ks, critical, ks < critical]
        )
    return OutputGaussianity(config.ks_widths, ks_values, critical, variance, outputs, table)


def gram_law(config: DEQNNGPConfig, seed: int) -> GramLaw:
    """Gram error per width at two inputs with correlation 0.5 and ``|x|^2/d = 1``."""
    x = correlated_inputs(0.5, config.in_features)
    target = _hidden_kernel(x, config)
    table = Table(["width", "networks", "mean_rel_sq_error", "std_error", "error_times_width"])
    errors = []
    for i, n in enumerate(config.gram_widths):
        gram = _equilibria(x, n, config.gram_networks, config, seed + 20 + i).grams()
        err = ((gram - target) ** 2).sum(dim=(1, 2)) / (target**2).sum()
        mean = float(err.mean())
        se = float(err.std() / math.sqrt(err.numel()))
        errors.append(mean)
        table.rows.append([n, config.gram_networks, mean, se, mean * n])
    slope = _log_slope(np.array(config.gram_widths, float), np.array(errors))
    return GramLaw(config.gram_widths, errors, slope, table)


def depth_commutation(config: DEQNNGPConfig, seed: int) -> DepthCommutation:
    """Tied Picard iterates vs untied injected-MLP layers vs V_phi(K^l), at three inputs."""
    n, m, num_iter = config.depth_width, config.depth_networks, config.depth_iters
    x = sphere_inputs(3, config.in_features, generator=generator(seed))
    limit = _hidden_kernel(x, config)
    stds = {"weight_std": config.weight_std, "input_std": config.input_std}
    finite = deq_depth_kernels(x, num_iter, output="hidden", **stds)  # (L, p, p)
    tied = sample_deq_iterate_grams(x, n, m, num_iter, generator=generator(seed + 1), **stds)
    untied = sample_deq_iterate_grams(
        x, n, m, num_iter, generator=generator(seed + 2), tied=False, **stds
    )
    iu = torch.triu_indices(3, 3)
    diff = (tied.mean(1) - untied.mean(1))[:, iu[0], iu[1]]  # (L, entries)
    se = torch.sqrt(tied.var(1)[:, iu[0], iu[1]] / m + untied.var(1)[:, iu[0], iu[1]] / m)
    z = (diff.abs() / se).max(dim=1).values

    def rel(a: torch.Tensor) -> torch.Tensor:  # relative squared Frobenius error vs V(K*)
        return ((a - limit) ** 2).sum(dim=(-2, -1)) / (limit**2).sum()

    analytic = rel(finite)
    tied_err, untied_err = rel(tied).mean(1), rel(untied).mean(1)
    finite_vs_tied = rel(tied - finite[:, None] + limit).mean(1)  # error against V(K^l)
    steps = analytic[1:] / analytic[:-1]
    usable = (analytic[1:] > 1e-14).nonzero().flatten()
    rate = float(steps[usable].median()) if usable.numel() else math.nan
    table = Table(
        ["iteration", "analytic_rel_sq_error", "tied_rel_sq_error", "untied_rel_sq_error"]
        + ["tied_vs_finite_depth_kernel", "max_z_tied_minus_untied"]
    )
    for ell in range(num_iter):
        table.rows.append(
            [ell + 1, float(analytic[ell]), float(tied_err[ell]), float(untied_err[ell])]
            + [float(finite_vs_tied[ell]), float(z[ell])]
        )
    return DepthCommutation(
        width=n,
        max_z=float(z.max()),
        rate=rate,
        rate_theory=(config.weight_std**2 / 2) ** 2,
        analytic=analytic,
        tied=tied_err,
        untied=untied_err,
        table=table,
    )


def lambda_min(config: DEQNNGPConfig, seed: int) -> LambdaMin:
    """lambda_min of K* and V_phi(K*) per sigma_w, and of a deep ReLU MLP's kernel per depth,
    on ``num_points`` random N(0, I_d) inputs."""
    d = config.in_features
    x = torch.randn(config.num_points, d, generator=generator(seed), dtype=torch.float64)
    deq_table = Table(["weight_std", "lambda_min_K_star", "lambda_min_V"])
    lam_v = []
    for s in config.lambda_weight_stds:
        k, _ = deq_kernel(x, weight_std=s, input_std=config.input_std)
        v = dual_matrix(k, relu_dual)
        lam_k = float(torch.linalg.eigvalsh(k)[0])
        lam_v.append(float(torch.linalg.eigvalsh(v)[0]))
        deq_table.rows.append([s, lam_k, lam_v[-1]])
    # deep untied ReLU MLP, sigma_w^2 = 2, no bias: K^1 = 2 x.x'/d, K^{l+1} = 2 V(K^l)
    kernels = nngp_recursion(x, max(config.mlp_depths) - 1, weight_var=2.0)  # K^1..K^D
    mlp_table = Table(["depth", "lambda_min_correlation", "max_offdiag_correlation"])
    lam_mlp = {}
    for depth in config.mlp_depths:
        k = kernels[depth - 1]
        diag = torch.sqrt(torch.diagonal(k))
        corr = k / diag[:, None] / diag[None, :]
        lam = float(torch.linalg.eigvalsh(corr)[0])
        off = float((corr - torch.eye(len(corr), dtype=corr.dtype)).max())
        lam_mlp[depth] = lam
        mlp_table.rows.append([depth, lam, off])
    return LambdaMin(config.lambda_weight_stds, lam_v, lam_mlp, deq_table, mlp_table)


def covariance_heatmap(config: DEQNNGPConfig, seed: int) -> CovarianceHeatmap:
    """Mean Gram of ``heatmap_networks`` DEQs on ``num_points`` random inputs."""
    x = torch.randn(
        config.num_points, config.in_features, generator=generator(seed), dtype=torch.float64
    )
    sol = _equilibria(x, config.heatmap_width, config.heatmap_networks, config, seed + 1)
    return CovarianceHeatmap(config.heatmap_width, sol.grams().mean(0), _hidden_kernel(x, config))


def digits_regression(config: DEQNNGPConfig, seed: int) -> DigitsRegression:
    """GP regression with the DEQ kernel and kernel ridge regression with finite-width
    empirical kernels of the registered ``"deq"`` model, on one seeded digits split.

    Per-sample standardised images (zero mean, unit variance over pixels, as the authors did
    for MNIST), one-hot targets minus 0.1, ``num_train`` training samples (our choices).
    """
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    x = torch.as_tensor(images, dtype=torch.float64)
    x = (x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True, unbiased=False)  # per sample
    y = torch.as_tensor(labels)
    perm = torch.randperm(x.shape[0], generator=generator(seed))
    train, test = perm[: config.num_train], perm[config.num_train :]
    targets = torch.nn.functional.one_hot(y[train], 10).double() - 0.1
    test_targets = torch.nn.functional.one_hot(y[test], 10) - 0.1
    # the output GP kernel sigma_v^2 V_phi(K*) (sigma_v = 1); NNGPRegressor's jitter is
    # relative: ridge * mean diag K
    gp = NNGPRegressor(
        DEQKernel(config.weight_std, config.input_std, output="hidden"), jitter=config.ridge
    )
    gp.fit(x[train].numpy(), targets.numpy())
    pred = torch.as_tensor(np.asarray(gp.predict(x[test].numpy())))
    gp_acc = float((pred.argmax(1) == y[test]).double().mean())
    gp_mse = float(((pred - test_targets) ** 2).mean())
    table = Table(["width", "test_accuracy", "test_mse", "solver_converged"])
    accs = []
    for i, n in enumerate(config.gp_widths):
        model = create_model(
            "deq",
            seed=seed + 30 + i,
            in_features=x.shape[1],
            width=n,
            weight_std=config.weight_std,
            input_std=config.input_std,
            tol=1e-6,  # the Gram's own error is O(1/sqrt(n)), far above the solve's
            max_iter=config.max_iter,
        ).double()
        with torch.no_grad():
            h = model.equilibrium(x)
        k = h @ h.T / n
        out = kernel_ridge_predict(
            k[train][:, train], targets, k[test][:, train], ridge=config.ridge, relative=True
        )
        acc = float((out.argmax(1) == y[test]).double().mean())
        mse = float(((out - test_targets) ** 2).mean())
        accs.append(acc)
        table.rows.append([n, acc, mse, bool(model.last_info.converged)])
    table.rows.append(["infinite (NNGP)", gp_acc, gp_mse, True])
    return DigitsRegression(config.gp_widths, accs, gp_acc, gp_mse, table)


def simulators_vs_model(config: DEQNNGPConfig, seed: int) -> tuple[float, float]:
    """Max ``|h*|`` differences to the registered ``"deq"`` model on one network (width 64).

    Returns:
        ``(loop, batched)``: a plain Picard loop of ``max_iter`` steps on the model's own
        weights, and `solve_deq_equilibria` (the batched solver every experiment uses) on
        those weights, each against ``model.equilibrium``.
    """
    width, d = 64, config.in_features
    model = create_model(
        "deq",
        seed=seed,
        in_features=d,
        width=width,
        weight_std=config.weight_std,
        input_std=config.input_std,
        tol=config.tol,
        max_iter=config.max_iter,
    ).double()
    x = torch.randn(3, d, generator=generator(seed + 1), dtype=torch.float64)
    with torch.no_grad():
        reference = model.equilibrium(x)
        w, u, b = model.deq.recurrent.weight, model.deq.input.weight, model.deq.input.bias
        injection = x @ u.T + b
        h = torch.relu(injection)
        for _ in range(config.max_iter):
            h = torch.relu(h @ w.T + injection)
        batched = solve_deq_equilibria(
            w[None], u[None], x, bias=b[None], tol=config.tol, max_iter=config.max_iter
        ).hidden[0]
    return float((h - reference).abs().max()), float((batched - reference).abs().max())
