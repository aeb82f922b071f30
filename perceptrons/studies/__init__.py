"""Reproductions of the papers' claims, one subpackage per study.

Importing this package registers every built-in study in `perceptrons.registry.STUDIES` (the
registry imports it lazily on first lookup) by importing only each study's ``config.py``, which
holds its presets and its `register_study` call. A study's experiments, figures and run
function (``experiments.py``, ``figures.py``, ``run.py``) are imported when it runs, so listing
and describing studies never imports matplotlib or scikit-learn. See `perceptrons.studies.base`
for the layout every study follows.
"""

import importlib

from perceptrons.studies.base import (
    BUDGETS,
    Claim,
    Study,
    StudyConfig,
    StudyResult,
    Table,
    register_study,
)
from perceptrons.studies.runner import StudyOutcome, run_study, write_index

BUILTIN: tuple[str, ...] = (
    "amlp",
    "deq_nngp",
    "emofm_ctr",
    "lie_neurons",
    "mlp_digits",
    "scaling_limits",
)
"""Subpackages of the built-in studies; ``perceptrons.studies.<slug>.config`` registers each."""

for _slug in BUILTIN:
    importlib.import_module(f"perceptrons.studies.{_slug}.config")

__all__ = [
    "BUDGETS",
    "BUILTIN",
    "Claim",
    "Study",
    "StudyConfig",
    "StudyOutcome",
    "StudyResult",
    "Table",
    "register_study",
    "run_study",
    "write_index",
]
