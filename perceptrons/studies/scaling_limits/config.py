"""Configuration and presets of the ``scaling-limits`` study (Li & Nica 2023)."""

from __future__ import annotations

from dataclasses import dataclass

from perceptrons.config import require
from perceptrons.studies.base import StudyConfig, register_study

__all__ = ["FULL", "PAPER", "QUICK", "ScalingLimitsConfig"]

PAPER = (
    "Li & Nica 2023, Differential Equation Scaling Limits of Shaped and Unshaped Neural "
    "Networks, TMLR, arXiv:2310.12079"
)


@dataclass(frozen=True, kw_only=True)
class ScalingLimitsConfig(StudyConfig):
    """Finite networks at initialisation against their SDE/ODE limits.

    The networks and limits are those of docs/scaling-limits.md ("What the paper claims");
    every size and threshold below is our choice, fixed before measuring.

    Attributes:
        c_plus: Shaping constant c+ of the shaped ReLU (s+ = 1 + c+/sqrt(N)).
        c_minus: Shaping constant c- of the shaped ReLU (c+ - c- = 1: C^2 = 1 in the limit).
        widths: Widths n of the real shaped MLPs with depth d = n (proportional limit, T = 1).
        num_networks: Independent real networks per width.
        sde_paths: Euler paths of the correlation SDE.
        sde_steps: Euler steps of the correlation SDE over [0, 1].
        resnet_width: Width n of the real d^-1/2 ResNets compared with the ODE.
        resnet_depth: Depth d of those ResNets.
        resnet_networks: Number of real ResNets.
        branch_gain: Branch gain sigma_r of the ResNet (C^2 = sigma_r^2).
        limit_width: Width of the real shaped MLP (rate d^-1/2) and ResNet with d << n.
        limit_depth: Depth of both networks of the same-limit comparison.
        limit_networks: Real networks of each kind in the same-limit comparison.
        fluct_widths: Widths of the ResNet fluctuation grid (exact Gram chain).
        fluct_depths: Depths of the ResNet fluctuation grid.
        fluct_chains: Gram chains per grid point.
        fluct_tolerance: Maximum relative spread of sd(rho)*sqrt(n) over the grid.
        q_width: Width n of the exact unshaped ReLU chain.
        q_chains: Exact chains.
        q_mm_paths: Paths of the moment-matched chain at q_width.
        q_large_width: Width of the moment-matched chain compared with the q-SDE.
        q_large_paths: Paths of that chain.
        q_sde_paths: Paths of the q-SDE.
        q_ks_threshold: Claim threshold: KS between moment-matched and exact chain.
        q_sde_tolerance: Claim threshold: |difference| of mean and sd of log q, large-n chain
            vs SDE.
        q_limit_layers: Depth l at which l^2 (1 - rho_l) is compared with 9 pi^2 / 2.
    """

    c_plus: float = 0.0
    c_minus: float = -1.0
    widths: tuple[int, ...] = (8, 16, 32, 64)
    num_networks: int = 1000
    sde_paths: int = 20000
    sde_steps: int = 2000
    resnet_width: int = 128
    resnet_depth: int = 32
    resnet_networks: int = 500
    branch_gain: float = 1.0
    limit_width: int = 256
    limit_depth: int = 16
    limit_networks: int = 400
    fluct_widths: tuple[int, ...] = (64, 256, 1024)
    fluct_depths: tuple[int, ...] = (8, 32, 128)
    fluct_chains: int = 500
    fluct_tolerance: float = 0.25
    q_width: int = 256
    q_chains: int = 4000
    q_mm_paths: int = 40000
    q_large_width: int = 16384  # 65536 in the full preset (4x the time)
    q_large_paths: int = 20000
    q_sde_paths: int = 20000
    q_ks_threshold: float = 0.03
    q_sde_tolerance: float = 0.05
    q_limit_layers: int = 10000  # q_l is within 1% of 9 pi^2 / 2 at l = 1e4

    def validate(self) -> None:
        super().validate()
        for name in ("widths", "fluct_widths", "fluct_depths"):
            values = getattr(self, name)
            require(len(values) >= 2, name, "needs at least two values", values)
            require(all(v >= 2 for v in values), name, "values must be >= 2", values)
            require(
                list(values) == sorted(set(values)), name, "must be strictly increasing", values
            )
        for name in (
            "num_networks",
            "sde_paths",
            "sde_steps",
            "resnet_width",
            "resnet_depth",
            "resnet_networks",
            "limit_width",
            "limit_depth",
            "limit_networks",
            "fluct_chains",
            "q_width",
            "q_chains",
            "q_mm_paths",
            "q_large_width",
            "q_large_paths",
            "q_sde_paths",
            "q_limit_layers",
        ):
            value = getattr(self, name)
            require(value >= 2, name, "must be >= 2", value)
        require(self.q_width % 4 == 0, "q_width", "must be divisible by 4 (t = 1/4)", self.q_width)
        require(
            self.q_large_width % 4 == 0,
            "q_large_width",
            "must be divisible by 4",
            self.q_large_width,
        )
        require(self.branch_gain > 0, "branch_gain", "must be > 0", self.branch_gain)
        for name in ("fluct_tolerance", "q_ks_threshold", "q_sde_tolerance"):
            require(getattr(self, name) > 0, name, "must be > 0", getattr(self, name))


QUICK = ScalingLimitsConfig()
FULL = ScalingLimitsConfig(
    widths=(8, 16, 32, 64, 128, 256),
    num_networks=2000,
    resnet_width=256,
    resnet_depth=64,
    resnet_networks=1000,
    limit_width=1024,
    limit_depth=32,
    limit_networks=1000,
    fluct_widths=(64, 256, 1024, 4096),
    fluct_depths=(16, 64, 256, 1024),
    fluct_chains=2000,
    q_chains=10000,
    q_mm_paths=100000,
    q_large_width=65536,
    q_large_paths=40000,
    q_sde_paths=40000,
)

register_study(
    "scaling-limits",
    config=ScalingLimitsConfig,
    presets={"quick": QUICK, "full": FULL},
    paper=PAPER,
    summary="Shaped/unshaped MLPs and d^-1/2 ResNets at initialisation vs their SDE/ODE limits.",
    run="perceptrons.studies.scaling_limits.run:run",
    modules=(
        "perceptrons.theory.limits",
        "perceptrons.theory.montecarlo",
        "perceptrons.models.scaling",
        "perceptrons.layers.shaped",
        "perceptrons.theory.dual",
    ),
    docs="docs/scaling-limits.md",
)
