"""``lie-neurons``: Lie Neurons against MLP baselines (Lin, Zhu & Ghaffari 2023)."""

from perceptrons.studies.lie_neurons.config import LieNeuronsStudyConfig, LieTaskConfig
from perceptrons.studies.lie_neurons.run import run

__all__ = ["LieNeuronsStudyConfig", "LieTaskConfig", "run"]
