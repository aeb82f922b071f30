"""perceptrons: ten recent papers about multilayer perceptrons as tested, fast PyTorch software.

The curated API below is loaded lazily (PEP 562), so ``import perceptrons`` is instant and
imports no torch until a name is used::

    import perceptrons

    model = perceptrons.create_model("mlp", seed=0, in_features=64, out_features=10)
    perceptrons.list_models(), perceptrons.list_studies()
    result = perceptrons.fit(model, step, loader, perceptrons.FitConfig(max_steps=100))
    perceptrons.save_model(model, "runs/mlp"); perceptrons.load_model("runs/mlp")
    perceptrons.check_model(model)                      # the contract every model passes

Everything else lives in the subpackages: ``layers``, ``models``, ``theory``, ``train``,
``data``, ``studies``, ``testing``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "MODELS": "perceptrons.registry",
    "STUDIES": "perceptrons.registry",
    "create_model": "perceptrons.registry",
    "list_models": "perceptrons.registry",
    "list_studies": "perceptrons.registry",
    "fit": "perceptrons.train",
    "FitConfig": "perceptrons.train",
    "OptimizerConfig": "perceptrons.train",
    "save_model": "perceptrons.models.io",
    "load_model": "perceptrons.models.io",
    "check_model": "perceptrons.testing",
}

__all__ = [
    "MODELS",
    "STUDIES",
    "FitConfig",
    "OptimizerConfig",
    "__version__",
    "check_model",
    "create_model",
    "fit",
    "list_models",
    "list_studies",
    "load_model",
    "save_model",
]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load on first use
    from perceptrons.models.io import load_model, save_model
    from perceptrons.registry import MODELS, STUDIES, create_model, list_models, list_studies
    from perceptrons.testing import check_model
    from perceptrons.train import FitConfig, OptimizerConfig, fit


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'perceptrons' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
