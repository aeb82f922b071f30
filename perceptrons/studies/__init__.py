"""Reproductions of the papers' claims, one subpackage per study.

`perceptrons.registry.STUDIES` fills itself on first lookup from `perceptrons.studies.catalog`
(a static table of the built-in studies), which imports only each study's ``config.py``: its
presets and its `register_study` call. A study's experiments, figures and run function
(``experiments.py``, ``figures.py``, ``run.py``) are imported when it runs, so listing and
describing studies never imports matplotlib or scikit-learn. See `perceptrons.studies.base`
for the layout every study follows.

The names below are loaded lazily (PEP 562), so ``import perceptrons.studies.base`` stays
light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BUDGETS": "perceptrons.studies.base",
    "Claim": "perceptrons.studies.base",
    "Study": "perceptrons.studies.base",
    "StudyConfig": "perceptrons.studies.base",
    "StudyResult": "perceptrons.studies.base",
    "Table": "perceptrons.studies.base",
    "register_study": "perceptrons.studies.base",
    "StudyOutcome": "perceptrons.studies.runner",
    "run_study": "perceptrons.studies.runner",
    "write_index": "perceptrons.studies.report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'perceptrons.studies' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
