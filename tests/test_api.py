"""The curated top-level API: lazy, complete, the same objects as their home modules."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import perceptrons

HOMES = {
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


def test_all_lists_exactly_the_curated_names():
    assert sorted(perceptrons.__all__) == sorted(["__version__", *HOMES])
    assert set(perceptrons.__all__) <= set(dir(perceptrons))


@pytest.mark.parametrize("name", sorted(HOMES))
def test_each_name_is_its_home_object(name):
    assert getattr(perceptrons, name) is getattr(importlib.import_module(HOMES[name]), name)


def test_version_matches_the_distribution():
    from importlib.metadata import version

    assert perceptrons.__version__ == version("perceptrons")


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        perceptrons.nope  # noqa: B018


def test_py_typed_marker_ships():
    assert (Path(perceptrons.__file__).parent / "py.typed").is_file()


def test_the_api_round_trip(tmp_path):
    model = perceptrons.create_model("mlp", seed=0, in_features=4, out_features=2)
    perceptrons.check_model(model, checks=["forward_shapes"])
    perceptrons.save_model(model, tmp_path / "m")
    again = perceptrons.load_model(tmp_path / "m")
    assert type(again) is type(model) and "mlp" in perceptrons.list_models()
    assert "mlp-digits" in perceptrons.list_studies()


def test_lazy_table_and_all_agree():
    assert set(perceptrons._EXPORTS) | {"__version__"} == set(perceptrons.__all__)
