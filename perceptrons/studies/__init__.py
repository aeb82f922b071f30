"""Reproductions of the papers' claims, one subpackage per study.

Importing this package registers every study in `perceptrons.registry.STUDIES` (the registry
imports it lazily on first lookup). A study subpackage holds ``config.py`` (its `StudyConfig`
with ``quick`` and ``full`` presets), ``run.py`` (``run(config, out_dir) -> StudyResult``,
registered with `register_study`) and a README.
"""

from perceptrons.studies import (
    amlp,  # noqa: F401  (registers "amlp")
    deq_nngp,  # noqa: F401  (registers "deq-nngp")
    emofm_ctr,  # noqa: F401  (registers "emofm-ctr")
    lie_neurons,  # noqa: F401  (registers "lie-neurons")
    mlp_digits,  # noqa: F401  (registers "mlp-digits")
    scaling_limits,  # noqa: F401  (registers "scaling-limits")
)
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

__all__ = [
    "BUDGETS",
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
