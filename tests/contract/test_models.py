"""The model contract, generated from the registry: every registered name x every check.

A new model gets these tests by being registered; see `perceptrons.testing` for the checks.
"""

from __future__ import annotations

import dataclasses

import pytest

from perceptrons.config import field_docs
from perceptrons.registry import MODELS, STUDIES, create_model, list_models
from perceptrons.testing import CHECKS, run_check


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("name", list_models())
def test_model_contract(name: str, check: str) -> None:
    model = create_model(name, seed=0)
    skipped = run_check(check, model)
    if skipped is not None:
        pytest.skip(f"{name}: {skipped}")


def _config_entries() -> list[tuple[str, type]]:
    models = [(f"model:{e.name}", e.config) for e in MODELS.entries()]
    studies = [(f"study:{e.name}", e.config) for e in STUDIES.entries()]
    return models + studies


@pytest.mark.parametrize(("entry", "config_cls"), _config_entries())
def test_config_documents_every_field(entry: str, config_cls: type) -> None:
    docs = field_docs(config_cls)
    fields = [f.name for f in dataclasses.fields(config_cls)]
    undocumented = [name for name in fields if not docs.get(name)]
    assert not undocumented, (
        f"{entry}: {config_cls.__name__} does not document "
        + ", ".join(undocumented)
        + " in the Attributes: section of its docstring"
    )
