"""Configuration and presets of the ``deq-nngp`` study (Gao, Huo, Liu & Gao 2023)."""

from __future__ import annotations

from dataclasses import dataclass

from perceptrons.config import require
from perceptrons.studies.base import StudyConfig

__all__ = ["FULL", "QUICK", "DEQNNGPConfig"]


@dataclass(frozen=True, kw_only=True)
class DEQNNGPConfig(StudyConfig):
    """Finite-width ReLU DEQs at initialisation against the DEQ NNGP kernel (brief B1-B6).

    Every finite network is :math:`h^* = \\mathrm{ReLU}(W h^* + Ux)` with
    :math:`W_{ij} \\sim N(0, \\sigma_w^2/n)`, :math:`U_{ij} \\sim N(0, \\sigma_u^2/d)`, no bias.

    Attributes:
        weight_std: sigma_w (brief 2.1: 0.6 in all of the authors' experiments).
        input_std: sigma_u (brief 2.1: 1).
        in_features: Input dimension d of the synthetic experiments (brief 2.1: 10).
        tol: Relative residual at which the finite-width Picard iterations stop.
        max_iter: Maximum Picard iterations of a finite-width solve.
        picard_width: Width of the B1 rate measurement (brief 2.2: 1500).
        picard_networks: Networks of the B1 rate measurement.
        rate_tolerance: Claim picard_rate_matches_theory: maximum relative error of the
            measured rate against sigma_w sqrt(E[phi'^2]) (the issue: 5%).
        ks_widths: Widths of the B2 output-Gaussianity sweep (brief B2: 20, 100, 400).
        ks_networks: Independent networks per width in B2 (brief B2: 4000).
        ks_alpha: Level of the one-sample KS test against the analytic N(0, V).
        ks_tol: Relative residual of the B2 solves (run in float32: they are memory-bound).
        gram_widths: Widths of the B3 1/n-law sweep (brief B3: 100, 400, 1600).
        gram_networks: Networks per width in B3 (brief B3: 4-64).
        slope_range: Claim gram_error_one_over_n: accepted log-log slope (brief B3: -1 +- 0.25).
        depth_width: Width of the B4 tied/untied comparison (brief B4: 1000).
        depth_networks: Networks of each kind in B4.
        depth_iters: Number of iterations (tied) / layers (untied) compared in B4.
        commute_z: Claim depth_limits_commute: maximum |tied - untied| mean Gram entry in
            standard errors of the difference.
        num_points: Number of random N(0, I_d) inputs of B5 (brief B5: 10).
        lambda_weight_stds: sigma_w grid of B5 (ReLU needs sigma_w < sqrt 2).
        mlp_depths: Depths of the untied ReLU MLP (sigma_w^2 = 2, no bias) in B5.
        mlp_degeneracy_ratio: Claim mlp_kernel_degenerates_with_depth: maximum ratio of
            lambda_min of the MLP correlation kernel at the deepest depth to depth 2.
        heatmap_width: Width of the finite-width covariance heat map on the B5 inputs.
        heatmap_networks: Networks averaged in the heat map.
        num_train: Training samples of B6 (brief B6: 1000 of 1797; the rest is the test set).
        ridge: B6 ridge as a fraction of the mean kernel diagonal (brief B6: 1e-2).
        gp_widths: Widths of the B6 finite-width empirical-kernel regressions (brief: 64-1024).
        accuracy_threshold: Claim gp_regression_digits: minimum test accuracy (the issue: 98%).
    """

    weight_std: float = 0.6  # brief 2.1: the authors' sigma_w
    input_std: float = 1.0  # brief 2.1: the authors' sigma_u
    in_features: int = 10  # brief 2.1: d = 10
    tol: float = 1e-10  # brief B1: relative tolerance 1e-10
    max_iter: int = 200
    picard_width: int = 1000
    picard_networks: int = 4
    rate_tolerance: float = 0.05  # the issue
    ks_widths: tuple[int, ...] = (20, 100, 400)  # brief B2
    ks_networks: int = 2000
    ks_alpha: float = 0.05
    ks_tol: float = 1e-5  # outputs to ~1e-5, far below the KS resolution 1/sqrt(ks_networks)
    gram_widths: tuple[int, ...] = (100, 400, 1600)  # brief B3
    gram_networks: int = 16
    slope_range: tuple[float, float] = (-1.25, -0.75)  # brief B3: -1 +- 0.25
    depth_width: int = 1000  # brief B4
    depth_networks: int = 16
    depth_iters: int = 8
    commute_z: float = 4.0  # brief section 4: tolerances of >= 4 standard errors
    num_points: int = 10  # brief B5
    lambda_weight_stds: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8, 1.0, 1.2)
    mlp_depths: tuple[int, ...] = (2, 5, 10, 20, 50)
    mlp_degeneracy_ratio: float = 0.1
    heatmap_width: int = 500
    heatmap_networks: int = 8
    num_train: int = 1000  # brief B6
    ridge: float = 1e-2  # brief B6
    gp_widths: tuple[int, ...] = (64, 256, 512)  # brief B6: 64, 256, 1024 (in the full preset)
    accuracy_threshold: float = 0.98  # the issue

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
    picard_width=1500,  # brief 2.2
    picard_networks=8,
    ks_widths=(20, 50, 100, 200, 400),
    ks_networks=4000,  # brief B2
    gram_widths=(100, 200, 400, 800, 1600),
    gram_networks=64,  # brief B3
    depth_networks=64,
    depth_iters=10,
    mlp_depths=(2, 5, 10, 20, 50, 100),
    heatmap_width=1000,
    heatmap_networks=16,
    gp_widths=(64, 128, 256, 512, 1024, 2048),
)
