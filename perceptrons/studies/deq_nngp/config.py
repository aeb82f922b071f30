"""Configuration and presets of the ``deq-nngp`` study (Gao, Huo, Liu & Gao 2023)."""

from __future__ import annotations

from dataclasses import dataclass

from perceptrons.config import require
from perceptrons.studies.base import StudyConfig, register_study

__all__ = ["FULL", "PAPER", "QUICK", "DEQNNGPConfig"]

PAPER = (
    "Gao, Huo, Liu, Gao 2023, Wide Neural Networks as Gaussian Processes: Lessons from Deep "
    "Equilibrium Models, NeurIPS, arXiv:2310.10767"
)


@dataclass(frozen=True, kw_only=True)
class DEQNNGPConfig(StudyConfig):
    """Finite-width ReLU DEQs at initialisation against the DEQ NNGP kernel.

    Every finite network is :math:`h^* = \\mathrm{ReLU}(W h^* + Ux)` with
    :math:`W_{ij} \\sim N(0, \\sigma_w^2/n)`, :math:`U_{ij} \\sim N(0, \\sigma_u^2/d)`, no bias,
    as in the authors' experiments (their public notebooks, github.com/deqg/deq); the kernel is
    `perceptrons.theory.kernels.deq_kernel` (docs/kernels.md, "The DEQ kernel"). Every size and
    threshold below is our choice, fixed before measuring.

    Attributes:
        weight_std: sigma_w (0.6 in all of the authors' experiments).
        input_std: sigma_u (1 in the authors' experiments).
        in_features: Input dimension d of the synthetic experiments (10 in the authors').
        tol: Relative residual at which the finite-width Picard iterations stop.
        max_iter: Maximum Picard iterations of a finite-width solve.
        picard_width: Width of the Picard rate measurement.
        picard_networks: Networks of the Picard rate measurement.
        rate_tolerance: Claim picard_rate_matches_theory: maximum relative error of the
            measured rate against sigma_w sqrt(E[phi'^2]) = sigma_w / sqrt(2).
        ks_widths: Widths of the output-Gaussianity sweep.
        ks_networks: Independent networks per width in the Gaussianity sweep.
        ks_alpha: Level of the one-sample KS test against the analytic N(0, V).
        ks_tol: Relative residual of the Gaussianity solves (run in float32: they are
            memory-bound).
        gram_widths: Widths of the 1/n-law sweep of the Gram error.
        gram_networks: Networks per width in the 1/n-law sweep.
        slope_range: Claim gram_error_one_over_n: accepted log-log slope (-1 +- 0.25).
        depth_width: Width of the tied/untied depth comparison.
        depth_networks: Networks of each kind in the depth comparison.
        depth_iters: Number of iterations (tied) / layers (untied) compared.
        commute_z: Claim depth_limits_commute: maximum |tied - untied| mean Gram entry in
            standard errors of the difference.
        num_points: Number of random N(0, I_d) inputs of the lambda_min experiments.
        lambda_weight_stds: sigma_w grid of the lambda_min experiment (ReLU needs
            sigma_w < sqrt 2).
        mlp_depths: Depths of the untied ReLU MLP (sigma_w^2 = 2, no bias).
        mlp_degeneracy_ratio: Claim mlp_kernel_degenerates_with_depth: maximum ratio of
            lambda_min of the MLP correlation kernel at the deepest depth to depth 2.
        heatmap_width: Width of the finite-width covariance heat map on the lambda_min inputs.
        heatmap_networks: Networks averaged in the heat map.
        num_train: Training samples of the digits regression (of 1797; the rest is the test
            set). scikit-learn's digits replace the paper's MNIST (our choice: no download).
        ridge: Digits ridge as a fraction of the mean kernel diagonal.
        gp_widths: Widths of the finite-width empirical-kernel regressions on digits.
        accuracy_threshold: Claim gp_regression_digits: minimum test accuracy.
    """

    weight_std: float = 0.6  # the authors' sigma_w
    input_std: float = 1.0  # the authors' sigma_u
    in_features: int = 10  # the authors' d
    tol: float = 1e-10
    max_iter: int = 200
    picard_width: int = 1000
    picard_networks: int = 4
    rate_tolerance: float = 0.05
    ks_widths: tuple[int, ...] = (20, 100, 400)
    ks_networks: int = 2000
    ks_alpha: float = 0.05
    ks_tol: float = 1e-5  # outputs to ~1e-5, far below the KS resolution 1/sqrt(ks_networks)
    gram_widths: tuple[int, ...] = (100, 400, 1600)
    gram_networks: int = 16
    slope_range: tuple[float, float] = (-1.25, -0.75)
    depth_width: int = 1000
    depth_networks: int = 16
    depth_iters: int = 8
    commute_z: float = 4.0
    num_points: int = 10
    lambda_weight_stds: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8, 1.0, 1.2)
    mlp_depths: tuple[int, ...] = (2, 5, 10, 20, 50)
    mlp_degeneracy_ratio: float = 0.1
    heatmap_width: int = 500
    heatmap_networks: int = 8
    num_train: int = 1000
    ridge: float = 1e-2
    gp_widths: tuple[int, ...] = (64, 256, 512)  # the full preset goes to 2048
    accuracy_threshold: float = 0.98

    def validate(self) -> None:
        super().validate()
        require(self.weight_std > 0, "weight_std", "must be > 0", self.weight_std)
        require(self.input_std > 0, "input_std", "must be > 0", self.input_std)
        require(0 < self.tol < 1, "tol", "must be in (0, 1)", self.tol)
        for name in (
            "in_features",
            "max_iter",
            "picard_width",
            "picard_networks",
            "ks_networks",
            "gram_networks",
            "depth_width",
            "depth_networks",
            "depth_iters",
            "num_points",
            "heatmap_width",
            "heatmap_networks",
        ):
            value = getattr(self, name)
            require(value >= 2, name, "must be >= 2", value)
        for name in ("ks_widths", "gram_widths", "lambda_weight_stds", "mlp_depths", "gp_widths"):
            values = getattr(self, name)
            require(len(values) >= 2, name, "needs at least two values", values)
            require(all(v > 0 for v in values), name, "values must be > 0", values)
            require(
                list(values) == sorted(set(values)), name, "must be strictly increasing", values
            )
        require(
            max(self.lambda_weight_stds) ** 2 < 2,
            "lambda_weight_stds",
            "ReLU needs sigma_w < sqrt(2)",
            self.lambda_weight_stds,
        )
        require(self.weight_std**2 < 2, "weight_std", "ReLU needs sigma_w < sqrt(2)")
        require(
            self.slope_range[0] < self.slope_range[1],
            "slope_range",
            "must be (low, high) with low < high",
            self.slope_range,
        )
        require(1e-7 <= self.ks_tol < 1, "ks_tol", "must be in [1e-7, 1) (float32)", self.ks_tol)
        require(0 < self.ks_alpha < 1, "ks_alpha", "must be in (0, 1)", self.ks_alpha)
        require(0 < self.num_train < 1797, "num_train", "must be in (0, 1797)", self.num_train)
        for name in ("rate_tolerance", "commute_z", "mlp_degeneracy_ratio", "ridge"):
            require(getattr(self, name) > 0, name, "must be > 0", getattr(self, name))
        require(
            0 < self.accuracy_threshold <= 1,
            "accuracy_threshold",
            "must be in (0, 1]",
            self.accuracy_threshold,
        )


QUICK = DEQNNGPConfig()
FULL = DEQNNGPConfig(
    picard_width=1500,
    picard_networks=8,
    ks_widths=(20, 50, 100, 200, 400),
    ks_networks=4000,
    gram_widths=(100, 200, 400, 800, 1600),
    gram_networks=64,
    depth_networks=64,
    depth_iters=10,
    mlp_depths=(2, 5, 10, 20, 50, 100),
    heatmap_width=1000,
    heatmap_networks=16,
    gp_widths=(64, 128, 256, 512, 1024, 2048),
)

register_study(
    "deq-nngp",
    config=DEQNNGPConfig,
    presets={"quick": QUICK, "full": FULL},
    paper=PAPER,
    summary="DEQ NNGP kernel vs finite-width DEQs: Picard rate, Gaussianity, 1/n law, "
    "lambda_min, GP.",
    run="perceptrons.studies.deq_nngp.run:run",
    modules=(
        "perceptrons.theory.kernels.deq",
        "perceptrons.theory.deq_montecarlo",
        "perceptrons.theory.gp",
        "perceptrons.models.deq",
        "perceptrons.layers.deq",
    ),
    docs="docs/kernels.md",
)
