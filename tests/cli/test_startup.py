"""What each entry point imports: ``--help`` no torch, ``list`` / ``info`` no matplotlib or
scikit-learn, the kernels no scikit-learn, ``import perceptrons`` nothing heavy.

Each case runs in a fresh interpreter and prints the heavy modules left in ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "numpy", "scipy", "sklearn", "matplotlib", "pyarrow")

PROBE = """
import contextlib, io, json, sys
{setup}
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""

CLI = """
from perceptrons.cli.main import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    main({argv!r})
"""


def loaded(setup: str) -> set[str]:
    code = PROBE.format(setup=setup, heavy=HEAVY)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("argv", [["--help"], ["reproduce", "--help"], ["ctr", "train", "--help"]])
def test_help_imports_no_torch(argv):
    assert loaded(CLI.format(argv=argv)) == set()


@pytest.mark.parametrize(
    "argv", [["list"], ["list", "studies"], ["info", "mlp"], ["info", "deq-nngp"], ["info", "amlp"]]
)
def test_list_and_info_import_no_matplotlib_or_sklearn(argv):
    found = loaded(CLI.format(argv=argv))
    assert "torch" in found  # they do build the registry (models are torch modules)
    assert not found & {"matplotlib", "sklearn", "pyarrow"}


def test_kernels_import_no_sklearn():
    found = loaded("import perceptrons.theory.kernels\nimport perceptrons.theory")
    assert "torch" in found and "sklearn" not in found and "matplotlib" not in found


def test_import_perceptrons_is_light_until_a_name_is_used():
    assert loaded("import perceptrons") == set()
    found = loaded("import perceptrons\nperceptrons.FitConfig")
    assert "torch" in found and not found & {"matplotlib", "sklearn"}
