"""``deq-nngp``: the DEQ NNGP kernel of Gao et al. (2023) against finite-width DEQs."""

from perceptrons.studies.deq_nngp.config import DEQNNGPConfig
from perceptrons.studies.deq_nngp.run import run

__all__ = ["DEQNNGPConfig", "run"]
