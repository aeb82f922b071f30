"""Imports flow one way: each part of the package may import only the parts listed here.

Every ``import`` statement under ``perceptrons/`` and ``benchmarks/`` (including imports inside
functions and relative imports) is checked against `ALLOWED`, and `ALLOWED` lists only the
edges that some import uses (a rule nobody needs is a rule that hides the next mistake). No
module imports another module's private (``_name``) definitions, nor reaches them as an
attribute of an imported module. The registries' lazy discovery and the lazy re-exports use
``importlib.import_module`` with a module name held in a table; that is the documented plugin
mechanism, not an import statement, and is not checked.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "perceptrons"
BENCHMARKS = ROOT / "benchmarks"

# top-level module or subpackage -> the perceptrons modules/subpackages it imports (exactly
# the edges in use: `test_every_allowed_edge_is_used`). "__init__" is the package root itself
# (``import perceptrons`` / ``from perceptrons import X`` where X is not a module).
# An application domain (``ctr``) sits above the generic parts and below studies and the CLI:
# it builds on ``layers`` and registers models, and nothing generic imports it. Nothing
# imports ``studies`` or ``cli`` but the command line and the benchmarks. The rules form no
# cycle (tested below).
ALLOWED: dict[str, set[str]] = {
    "config": set(),
    "io": set(),
    "checks": set(),
    "lie": {"checks"},
    "registry": {"config"},
    "train": {"config", "io"},
    "layers": {"checks", "lie"},
    "data": {"checks", "lie"},
    "theory": {"checks", "layers"},
    "binary": {"checks", "io", "layers"},
    # models may use train for their own training recipe (BiViT's Step and binarisation
    # schedule, a Callback) and binary for bit-packed inference (BiViT.to_packed)
    "models": {"config", "registry", "io", "checks", "layers", "lie", "train", "binary"},
    "testing": {"registry", "checks", "models", "lie"},
    "ctr": {"config", "registry", "io", "layers", "data", "models", "train"},
    "studies": {
        "config", "registry", "io", "layers", "data", "theory", "models", "lie", "testing",
        "train", "ctr", "binary", "__init__",
    },
    "cli": {"config", "registry", "io", "studies", "ctr"},
    "__init__": {"registry", "train", "models", "testing"},
    "__main__": {"cli"},
    "benchmarks": {
        "io", "layers", "data", "theory", "registry", "studies", "train", "ctr", "binary", "cli",
    },
}  # fmt: skip


def unit_of(relpath: str) -> str:
    """``"layers/mlp.py"`` -> ``"layers"``; ``"config.py"`` -> ``"config"``; a file outside the
    package (``"../benchmarks/kernels.py"``) -> ``"benchmarks"``."""
    parts = Path(relpath).parts
    if parts[0] == "..":
        return parts[1]
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


def checked_files() -> list[tuple[Path, str]]:
    """Every checked file with its path relative to ``perceptrons/``."""
    files = [(p, p.relative_to(PACKAGE).as_posix()) for p in sorted(PACKAGE.rglob("*.py"))]
    files += [(p, f"../benchmarks/{p.name}") for p in sorted(BENCHMARKS.glob("*.py"))]
    return files


def test_package_imports_follow_the_dependency_rules() -> None:
    files = checked_files()
    assert any(rel.startswith("../benchmarks/") for _, rel in files), "no benchmark scripts"
    problems = [
        problem for path, rel in files for problem in violations_in_source(path.read_text(), rel)
    ]
    assert not problems, "import rule violations:\n" + "\n".join(problems)


def test_every_allowed_edge_is_used() -> None:
    used: dict[str, set[str]] = {unit: set() for unit in ALLOWED}
    for path, rel in checked_files():
        unit = unit_of(rel)
        used.setdefault(unit, set()).update(
            target for _, target in imported_units(path.read_text(), rel) if target != unit
        )
    unused = {u: sorted(ALLOWED[u] - used[u]) for u in ALLOWED if ALLOWED[u] - used[u]}
    assert not unused, f"ALLOWED grants edges no import uses (remove them): {unused}"


# ---------------------------------------------------------------------- private names
def own_module(relpath: str) -> str:
    return ".".join(module_parts(relpath)) if not relpath.startswith("..") else relpath


def private_uses(source: str, relpath: str, package: Path = PACKAGE) -> list[str]:
    """``line: name`` of every private definition of another perceptrons module that
    ``source`` imports by name or reaches as an attribute of an imported module."""
    here = own_module(relpath)
    tree = ast.parse(source)
    found: list[str] = []
    aliases: dict[str, str] = {}  # local name -> perceptrons module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "perceptrons":
                    aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom):
            base = module_parts(relpath)[:-1] if not relpath.endswith("__init__.py") else None
            if node.level:
                parts = module_parts(relpath)
                if not relpath.endswith("__init__.py"):
                    parts = parts[:-1]
                parts = parts[: len(parts) - (node.level - 1)]
                module = ".".join(parts + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            del base
            if module.split(".")[0] != "perceptrons":
                continue
            for alias in node.names:
                name = alias.name
                if name.startswith("_") and not name.startswith("__") and module != here:
                    found.append(f"{node.lineno}: {module}.{name}")
                elif not name.startswith("_"):
                    aliases[alias.asname or name] = f"{module}.{name}"
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module":
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.Constant) and str(arg.value).startswith("perceptrons"):
                found.append(f"{node.lineno}: importlib.import_module({arg.value!r})")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and aliases[node.value.id] != here
        ):
            found.append(f"{node.lineno}: {aliases[node.value.id]}.{node.attr}")
    return sorted(set(found), key=lambda f: int(f.split(":")[0]))


def test_no_module_uses_another_modules_private_names() -> None:
    problems = [
        f"perceptrons/{rel}:{use}"
        for path, rel in checked_files()
        for use in private_uses(path.read_text(), rel)
    ]
    assert not problems, "private names used across modules:\n" + "\n".join(problems)


FAKE_PRIVATE = """
import importlib
import perceptrons.train.loop as loop
from perceptrons.layers.linear import DenseLinear, _check_size
from .mlp import _private_helper
from perceptrons import __version__

def f():
    loop._to_device(1, 2)
    loop.fit
    importlib.import_module("perceptrons.studies.emofm_ctr.run")._train
    self._own = 1
"""


def test_private_names_detected_in_a_fake_source() -> None:
    assert private_uses(FAKE_PRIVATE, "layers/fake.py") == [
        "4: perceptrons.layers.linear._check_size",
        "5: perceptrons.layers.mlp._private_helper",
        "9: perceptrons.train.loop._to_device",
        "11: importlib.import_module('perceptrons.studies.emofm_ctr.run')",
    ]
    # a module's own private names are its own business
    assert private_uses("from perceptrons.layers.fake import _x", "layers/fake.py") == []


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
    allowed = "(allowed: checks, lie)"
    assert problems == [
        f"perceptrons/layers/fake.py:3: layers may not import perceptrons.config {allowed}",
        f"perceptrons/layers/fake.py:4: layers may not import perceptrons.registry {allowed}",
        f"perceptrons/layers/fake.py:8: layers may not import perceptrons.studies {allowed}",
        f"perceptrons/layers/fake.py:11: layers may not import perceptrons.cli {allowed}",
        f"perceptrons/layers/fake.py:12: layers may not import perceptrons.models {allowed}",
        f"perceptrons/layers/fake.py:13: layers may not import perceptrons.train {allowed}",
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
        ("from perceptrons.models import MLPModel", "testing.py"),
        ("from perceptrons import studies", "cli/main.py"),
        ("from perceptrons.models import MLPModel", "studies/slug/run.py"),
        ("from perceptrons.train import fit", "__init__.py"),
        ("from perceptrons.io import save_json", "train/loop.py"),
        ("from perceptrons.lie import so3", "layers/lie.py"),
        ("from perceptrons.checks import check_tensor", "lie.py"),
        ("from perceptrons.layers import MLP", "ctr/models.py"),
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
        ("from perceptrons.ctr import CTRBatch", "layers/mlp.py"),
        ("from perceptrons.ctr.models import DeepFM", "models/mlp.py"),
        ("from perceptrons.ctr.features import CTRFeatures", "data/loader.py"),
    ],
)
def test_forbidden_imports(source: str, relpath: str) -> None:
    assert len(violations_in_source(source, relpath)) == 1


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from perceptrons.studies.emofm_ctr.experiments import train", []),
        ("from perceptrons.cli.main import main", []),  # the end-to-end CLI timing
        ("from perceptrons.testing import check_model", ["testing"]),
    ],
)
def test_benchmarks_are_checked_too(source: str, expected: list[str]) -> None:
    problems = violations_in_source(source, "../benchmarks/x.py")
    assert [p.split("import perceptrons.")[1].split(" ")[0] for p in problems] == expected


def test_unknown_top_level_module_needs_a_rule() -> None:
    assert violations_in_source("", "utils.py") == [
        "perceptrons/utils.py: no import rule for 'utils'; add it to ALLOWED"
    ]
