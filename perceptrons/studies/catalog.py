"""The built-in studies: a static table of their packages, imported by `STUDIES` on first use.

Importing this module imports each study's ``config.py`` only, which holds its presets and
its `perceptrons.studies.base.register_study` call; experiments, figures and the run function
load when the study runs.
"""

import importlib

__all__ = ["BUILTIN"]

BUILTIN: dict[str, str] = {
    "amlp": "perceptrons.studies.amlp",
    "bivit": "perceptrons.studies.bivit",
    "deq-nngp": "perceptrons.studies.deq_nngp",
    "emofm-ctr": "perceptrons.studies.emofm_ctr",
    "lie-neurons": "perceptrons.studies.lie_neurons",
    "mlp-digits": "perceptrons.studies.mlp_digits",
    "scaling-limits": "perceptrons.studies.scaling_limits",
}
"""Study name -> package; ``<package>.config`` registers the study."""

for _package in BUILTIN.values():
    importlib.import_module(f"{_package}.config")
