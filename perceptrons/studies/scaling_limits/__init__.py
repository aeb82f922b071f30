"""``scaling-limits``: Li & Nica 2023 (arXiv:2310.12079), finite networks vs SDE/ODE limits."""

from perceptrons.studies.scaling_limits.config import ScalingLimitsConfig
from perceptrons.studies.scaling_limits.run import run

__all__ = ["ScalingLimitsConfig", "run"]
