"""``amlp``: AMLP attention's linear memory and time, and NAR accuracy on toy seq2seq tasks."""

from perceptrons.studies.amlp.config import AMLPStudyConfig
from perceptrons.studies.amlp.run import crossover_length, interpolated_crossover, run

__all__ = ["AMLPStudyConfig", "crossover_length", "interpolated_crossover", "run"]
