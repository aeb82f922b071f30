"""Every built-in study has the same shape (see `perceptrons.studies.base`): a docstring-only
package, ``config.py`` that registers lazily, ``experiments.py``, ``figures.py`` and a short
``run.py``; registration imports no study module beyond ``config.py``."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from perceptrons.registry import STUDIES
from perceptrons.studies.catalog import BUILTIN

ROOT = Path(__file__).resolve().parents[2]
RUN_LINES = 200  # run.py states the claims; the measurements live in experiments.py


def folder(package: str) -> Path:
    return ROOT / Path(*package.split("."))


def test_catalog_is_the_registered_set():
    assert set(BUILTIN) <= set(STUDIES.names())
    for name, package in BUILTIN.items():
        assert STUDIES.get(name).obj.target == f"{package}.run:run"


@pytest.mark.parametrize(("name", "package"), sorted(BUILTIN.items()))
def test_four_modules_and_a_readme(name, package):
    files = {p.name for p in folder(package).iterdir()}
    assert {"__init__.py", "config.py", "experiments.py", "figures.py", "run.py"} <= files
    assert "README.md" in files


@pytest.mark.parametrize(("name", "package"), sorted(BUILTIN.items()))
def test_package_init_is_a_docstring_only(name, package):
    tree = ast.parse((folder(package) / "__init__.py").read_text())
    assert ast.get_docstring(tree), f"{package}: no docstring"
    assert len(tree.body) == 1, f"{package}/__init__.py must hold only its docstring"
    run = importlib.import_module(f"{package}.run")
    assert callable(run.run) and isinstance(importlib.import_module(package).run, type(run))


@pytest.mark.parametrize(("name", "package"), sorted(BUILTIN.items()))
def test_run_module_is_short_and_uses_no_private_helpers_of_others(name, package):
    source = (folder(package) / "run.py").read_text()
    assert len(source.splitlines()) <= RUN_LINES
    tree = ast.parse(source)
    functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert "run" in functions
    for node in ast.walk(tree):  # run.py only runs experiments and draws: no fit, no savefig
        if isinstance(node, ast.Attribute):
            assert node.attr != "savefig", f"{package}/run.py saves a figure itself"
        if isinstance(node, ast.Name):
            assert node.id != "fit", f"{package}/run.py trains itself"


def test_registering_every_study_imports_no_study_module_beyond_config():
    code = (
        "import sys\n"
        "from perceptrons.registry import STUDIES\n"
        "STUDIES.names()\n"
        "print(sorted(m for m in sys.modules if m.startswith('perceptrons.studies.')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(ast.literal_eval(proc.stdout.strip()))
    allowed = {"perceptrons.studies.base", "perceptrons.studies.catalog"}
    allowed |= set(BUILTIN.values()) | {f"{p}.config" for p in BUILTIN.values()}
    assert loaded <= allowed, sorted(loaded - allowed)
