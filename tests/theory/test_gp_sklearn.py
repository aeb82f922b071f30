"""scikit-learn's estimator checks over every scikit-learn estimator of the package.

``sklearn.utils.estimator_checks.parametrize_with_checks`` runs the API contract of
scikit-learn's developer guide ("Developing scikit-learn estimators", "Rolling your own
estimator"): fit/predict signatures, input validation and its messages, ``NotFittedError``,
``n_features_in_``, cloning, pickling, multi-output targets, etc.
"""

from __future__ import annotations

import inspect
import pkgutil
from importlib import import_module

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import perceptrons
from perceptrons.theory.gp import NNGPRegressor, NTKRegressor
from perceptrons.theory.kernels import Dense, ReLU, serial

# one hidden ReLU layer: the checks fit on at most a few hundred points, so any kernel is cheap
SMALL_NET = serial(Dense(1.4, 0.1), ReLU(), Dense(1.0, 0.0))

ESTIMATORS = [NNGPRegressor(SMALL_NET), NTKRegressor(SMALL_NET)]


def _expected_failed_checks(estimator: BaseEstimator) -> dict[str, str]:
    """Checks that cannot apply, with the reason (none at present)."""
    return {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_every_package_estimator_is_checked():
    """A new public ``BaseEstimator`` subclass anywhere in the package must be added above."""
    found = set()
    for module_info in pkgutil.walk_packages(perceptrons.__path__, f"{perceptrons.__name__}."):
        if module_info.name.rpartition(".")[2] == "__main__":  # the command line; runs on import
            continue
        module = import_module(module_info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(obj, BaseEstimator)
                and obj.__module__.startswith(perceptrons.__name__)
                and not obj.__name__.startswith("_")
            ):
                found.add(obj)
    assert found == {type(est) for est in ESTIMATORS}


def test_pipeline_grid_search():
    """The use the checks stand for: a pipeline step tuned by cross-validation."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)) * [1.0, 10.0, 0.1]
    y = np.sin(x[:, 0]) + 0.05 * x[:, 1]
    for cls in (NNGPRegressor, NTKRegressor):
        pipe = Pipeline([("scale", StandardScaler()), ("gp", cls(SMALL_NET))])
        search = GridSearchCV(pipe, {"gp__jitter": [1e-6, 1e-2]}, cv=3).fit(x, y)
        assert search.best_params_["gp__jitter"] in (1e-6, 1e-2)
        assert search.predict(x[:5]).shape == (5,)
        assert search.best_estimator_[-1].n_features_in_ == 3
