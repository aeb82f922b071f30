"""Imports flow one way: each part of the package may import only the parts listed here.

Every ``import`` statement under ``perceptrons/`` (including imports inside functions and
relative imports) is checked against `ALLOWED`. The registry's lazy discovery uses
``importlib.import_module("perceptrons.models")`` with a string; that is the documented plugin
mechanism, not an import statement, and is not checked.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "perceptrons"

_BASE = {
    "config", "io", "checks", "registry", "train", "lie", "layers", "data", "theory", "models",
}  # fmt: skip
_EVERYTHING = _BASE | {"testing", "studies", "cli", "__init__"}

# top-level module or subpackage -> the perceptrons modules/subpackages it may import.
# "__init__" is the package root itself (``import perceptrons`` / ``from perceptrons import X``
# where X is not a module): only the parts allowed everything may import it.
# ``data`` may import ``layers`` (its CTR encoders return ``layers.ctr.CTRFeatures``, the one
# CTR field spec); ``layers`` never imports ``data``. The rules form no cycle (tested below).
ALLOWED: dict[str, set[str]] = {
    "config": set(),
    "io": set(),
    "checks": set(),
    "lie": {"checks", "config"},
    "registry": {"config"},
    "train": {"config", "io"},
    "layers": {"config", "registry", "checks", "lie"},
    "data": {"config", "registry", "io", "checks", "lie", "layers"},
    "theory": {"config", "registry", "checks", "layers", "lie"},
    "models": {"config", "registry", "io", "checks", "layers", "theory", "lie"},
    "testing": {"config", "registry", "io", "checks", "layers", "models", "theory", "lie"},
    "studies": _EVERYTHING - {"cli"},
    "cli": _EVERYTHING,
    "__init__": _EVERYTHING - {"studies", "cli"},
    "__main__": {"cli"},
}


def unit_of(relpath: str) -> str:
    """``"layers/mlp.py"`` -> ``"layers"``; ``"config.py"`` -> ``"config"``."""
    parts = Path(relpath).parts
    return parts[0] if len(parts) > 1 else Path(parts[0]).stem


def module_parts(relpath: str) -> list[str]:
    """Dotted module name of a file, as parts: ``"layers/mlp.py"`` -> perceptrons.layers.mlp."""
    parts = ["perceptrons", *Path(relpath).with_suffix("").parts]
    return parts[:-1] if parts[-1] == "__init__" else parts


def is_module(name: str, package: Path) -> bool:
    return (package / f"{name}.py").is_file() or (package / name / "__init__.py").is_file()


def imported_units(source: str, relpath: str, package: Path = PACKAGE) -> list[tuple[int, str]]:
    """``(line, unit)`` for every perceptrons import in ``source`` (the file ``relpath``)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        targets: list[list[str]] = []
        if isinstance(node, ast.Import):
            targets = [alias.name.split(".") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module_parts(relpath)
                if not relpath.endswith("__init__.py"):
                    base = base[:-1]  # a module's package
                base = base[: len(base) - (node.level - 1)]
                if not base:
                    found.append((node.lineno, "<relative import beyond perceptrons>"))
                    continue
            else:
                base = []
            module = base + (node.module.split(".") if node.module else [])
            if module == ["perceptrons"]:  # from perceptrons import X: X is a module or a name
                targets = [module + [alias.name] for alias in node.names]
            else:
                targets = [module]
        for target in targets:
            if target[0] != "perceptrons":
                continue
            if len(target) == 1 or not is_module(target[1], package):
                found.append((node.lineno, "__init__"))
            else:
                found.append((node.lineno, target[1]))
    return found


def violations_in_source(source: str, relpath: str, package: Path = PACKAGE) -> list[str]:
    """Import-rule violations of one file; ``relpath`` is relative to ``perceptrons/``."""
    unit = unit_of(relpath)
    if unit not in ALLOWED:
        return [f"perceptrons/{relpath}: no import rule for {unit!r}; add it to ALLOWED"]
    allowed = ALLOWED[unit] | {unit}
    return [
        f"perceptrons/{relpath}:{line}: {unit} may not import perceptrons.{target}"
        + ("" if target == "__init__" else f" (allowed: {', '.join(sorted(ALLOWED[unit]))})")
        for line, target in imported_units(source, relpath, package)
        if target not in allowed
    ]


def test_rules_have_no_cycle() -> None:
    """Apart from a part importing itself, the allowed imports form a DAG."""
    done: set[str] = set()

    def visit(unit: str, path: tuple[str, ...]) -> None:
        assert unit not in path, "import cycle allowed: " + " -> ".join((*path, unit))
        if unit in done:
            return
        for target in sorted(ALLOWED.get(unit, set()) - {unit}):
            visit(target, (*path, unit))
        done.add(unit)

    for unit in sorted(ALLOWED):
        visit(unit, ())


def test_package_imports_follow_the_dependency_rules() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert files, f"no Python files under {PACKAGE}"
    problems = [
        problem
        for path in files
        for problem in violations_in_source(path.read_text(), path.relative_to(PACKAGE).as_posix())
    ]
    assert not problems, "import rule violations:\n" + "\n".join(problems)


FAKE_LAYER = """
import torch
import perceptrons.config
from perceptrons.registry import MODELS
from perceptrons import checks
from . import activations
from .linear import DenseLinear
from perceptrons.studies import mlp_digits

def build():
    from ..cli import main
    import perceptrons.models.mlp
    from .. import train
    from perceptrons import __version__
"""


def test_detects_violations_in_a_fake_source() -> None:
    problems = violations_in_source(FAKE_LAYER, "layers/fake.py")
    assert problems == [
        "perceptrons/layers/fake.py:8: layers may not import perceptrons.studies "
        "(allowed: checks, config, lie, registry)",
        "perceptrons/layers/fake.py:11: layers may not import perceptrons.cli "
        "(allowed: checks, config, lie, registry)",
        "perceptrons/layers/fake.py:12: layers may not import perceptrons.models "
        "(allowed: checks, config, lie, registry)",
        "perceptrons/layers/fake.py:13: layers may not import perceptrons.train "
        "(allowed: checks, config, lie, registry)",
        "perceptrons/layers/fake.py:14: layers may not import perceptrons.__init__",
    ]


@pytest.mark.parametrize(
    ("source", "relpath", "expected"),
    [
        ("from . import io", "config.py", ["io"]),
        ("from ..registry import MODELS", "layers/__init__.py", ["registry"]),
        ("from .linear import DenseLinear", "layers/__init__.py", ["layers"]),
        ("from . import mlp", "models/__init__.py", ["models"]),
        ("from ..layers import MLP", "models/mlp.py", ["layers"]),
        ("from ... import cli", "studies/slug/run.py", ["cli"]),
        ("import perceptrons", "train/loop.py", ["__init__"]),
        ("import perceptrons.layers.mlp as m", "theory/x.py", ["layers"]),
        ("from perceptrons import layers, models", "cli/main.py", ["layers", "models"]),
        ("from .... import x", "studies/slug/run.py", ["<relative import beyond perceptrons>"]),
    ],
)
def test_import_resolution(source: str, relpath: str, expected: list[str]) -> None:
    assert [unit for _, unit in imported_units(source, relpath)] == expected


@pytest.mark.parametrize(
    ("source", "relpath"),
    [
        ("from perceptrons.cli import main", "__main__.py"),
        ("from perceptrons.layers import MLP", "testing.py"),
        ("from perceptrons import studies", "cli/main.py"),
        ("from perceptrons.models import MLPModel", "studies/slug/run.py"),
        ("from perceptrons.layers import MLP", "__init__.py"),
        ("from perceptrons.io import save_json", "train/loop.py"),
        ("from perceptrons.lie import so3", "layers/lie.py"),
        ("from perceptrons.checks import check_tensor", "lie.py"),
        ("from perceptrons.layers.ctr import CTRFeatures", "data/ctr/encoding.py"),
    ],
)
def test_allowed_imports(source: str, relpath: str) -> None:
    assert violations_in_source(source, relpath) == []


@pytest.mark.parametrize(
    ("source", "relpath"),
    [
        ("from perceptrons.cli import main", "studies/slug/run.py"),
        ("from perceptrons import studies", "__init__.py"),
        ("from perceptrons.layers import MLP", "train/loop.py"),
        ("from perceptrons.models import MLPModel", "theory/kernels.py"),
        ("import perceptrons.registry", "config.py"),
        ("from perceptrons.models import MLPModel", "__main__.py"),
        ("from perceptrons.layers import LieLinear", "lie.py"),
        ("from perceptrons.data.ctr import CTRBatch", "layers/ctr.py"),
    ],
)
def test_forbidden_imports(source: str, relpath: str) -> None:
    assert len(violations_in_source(source, relpath)) == 1


def test_unknown_top_level_module_needs_a_rule() -> None:
    assert violations_in_source("", "utils.py") == [
        "perceptrons/utils.py: no import rule for 'utils'; add it to ALLOWED"
    ]
