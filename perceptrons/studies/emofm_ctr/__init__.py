"""``emofm-ctr``: EMOFM (reconstruction) and the CTR baselines on synthetic data with an oracle."""

from perceptrons.studies.emofm_ctr.config import EMOFMCTRConfig
from perceptrons.studies.emofm_ctr.run import run

__all__ = ["EMOFMCTRConfig", "run"]
