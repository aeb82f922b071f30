"""The scaling-limits study end to end on a tiny configuration (the quick preset is ~50 s)."""

import importlib
import json
import subprocess
import sys

from perceptrons.registry import STUDIES
from perceptrons.studies.runner import run_study

TINY = [
    ("widths", (4, 8)),
    ("num_networks", 40),
    ("sde_paths", 400),
    ("sde_steps", 50),
    ("resnet_width", 16),
    ("resnet_depth", 4),
    ("resnet_networks", 20),
    ("limit_width", 32),
    ("limit_depth", 4),
    ("limit_networks", 20),
    ("fluct_widths", (8, 16)),
    ("fluct_depths", (2, 4)),
    ("fluct_chains", 20),
    ("q_width", 16),
    ("q_chains", 40),
    ("q_mm_paths", 100),
    ("q_large_width", 64),
    ("q_large_paths", 100),
    ("q_sde_paths", 100),
    ("q_limit_layers", 100),
]
CLAIMS = [
    "shaped_mlp_matches_sde",
    "ks_shrinks_with_width",
    "resnet_matches_ode",
    "resnet_and_shaped_mlp_same_limit",
    "resnet_fluctuations_independent_of_depth",
    "unshaped_q_matches_sde",
    "q_sde_matches_large_width_chain",
    "q_infinite_width_limit",
]


def test_presets_are_valid_and_registered_lazily():
    study = STUDIES.get("scaling-limits").obj
    assert set(study.presets) == {"quick", "full"}
    assert study.presets["full"].q_large_width == 65536  # our choice: 4x the quick width
    assert study.target == "perceptrons.studies.scaling_limits.run:run"
    assert "perceptrons.theory.limits" in study.modules
    assert study.docs == "docs/scaling-limits.md"


def test_package_has_the_four_module_layout_and_a_light_config():
    package = importlib.import_module("perceptrons.studies.scaling_limits")
    assert not hasattr(package, "ScalingLimitsConfig")  # the package re-exports nothing
    for name in ("config", "experiments", "figures", "run"):
        module = importlib.import_module(f"perceptrons.studies.scaling_limits.{name}")
        assert module.__name__ == f"perceptrons.studies.scaling_limits.{name}"
    code = (
        "import sys, perceptrons.studies.scaling_limits.config; "
        "print([m for m in ('matplotlib', 'sklearn', 'scipy') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_tiny_run_writes_every_claim_and_figure(tmp_path):
    outcome = run_study("scaling-limits", out=tmp_path, overrides=TINY)
    assert outcome.status in ("passed", "failed"), outcome.error
    doc = json.loads((tmp_path / "scaling-limits" / "result.json").read_text())
    assert [c["id"] for c in doc["claims"]] == CLAIMS
    for claim in doc["claims"]:
        assert isinstance(claim["measured"], float) and isinstance(claim["threshold"], float)
    # deterministic: l^2 (1 - rho_l) at l = 100 is 35.77 (docstring of q_infinite_width)
    assert abs(doc["metrics"]["q_at_100"] - 35.77) < 0.01
    assert len(doc["figures"]) == 4
    for figure in doc["figures"]:
        assert (tmp_path / "scaling-limits" / figure).read_bytes()[:4] == b"\x89PNG"
    tables = tmp_path / "scaling-limits" / "tables"
    assert (tables / "a1_shaped_mlp_vs_sde.csv").read_text().count("\n") == 3
