"""The deq-nngp study end to end on a tiny configuration (the quick preset is ~35 s)."""

import importlib
import json
import subprocess
import sys

from perceptrons.registry import STUDIES
from perceptrons.studies.runner import run_study

TINY = [
    ("picard_width", 64),
    ("picard_networks", 2),
    ("ks_widths", (8, 16)),
    ("ks_networks", 100),
    ("gram_widths", (16, 32)),
    ("gram_networks", 4),
    ("depth_width", 32),
    ("depth_networks", 4),
    ("depth_iters", 3),
    ("mlp_depths", (2, 5)),
    ("heatmap_width", 16),
    ("heatmap_networks", 2),
    ("num_train", 100),
    ("gp_widths", (8, 16)),
]
CLAIMS = [
    "kernel_reference_values",
    "picard_rate_matches_theory",
    "outputs_gaussian",
    "outputs_gaussian_improves_with_width",
    "gram_error_one_over_n",
    "depth_limits_commute",
    "lambda_min_positive",
    "lambda_min_grows_with_sigma_w",
    "mlp_kernel_degenerates_with_depth",
    "gp_regression_digits",
]


def test_presets_are_valid_and_use_the_authors_settings():
    study = STUDIES.get("deq-nngp").obj
    assert set(study.presets) == {"quick", "full"}
    assert study.presets["full"].ks_networks == 4000  # our choice: KS resolution ~ 0.02
    assert study.presets["quick"].weight_std == 0.6  # sigma_w of the authors' experiments
    assert study.target == "perceptrons.studies.deq_nngp.run:run"  # registered lazily
    assert "perceptrons.theory.deq_montecarlo" in study.modules
    assert study.docs == "docs/kernels.md"


def test_package_has_the_four_module_layout_and_a_light_config():
    package = importlib.import_module("perceptrons.studies.deq_nngp")
    assert not hasattr(package, "DEQNNGPConfig")  # the package re-exports nothing
    for name in ("config", "experiments", "figures", "run"):
        module = importlib.import_module(f"perceptrons.studies.deq_nngp.{name}")
        assert module.__name__ == f"perceptrons.studies.deq_nngp.{name}"
    code = (
        "import sys, perceptrons.studies.deq_nngp.config; "
        "print([m for m in ('matplotlib', 'sklearn', 'scipy') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_tiny_run_writes_every_claim_and_figure(tmp_path):
    outcome = run_study("deq-nngp", out=tmp_path, overrides=TINY)
    assert outcome.status in ("passed", "failed"), outcome.error
    doc = json.loads((tmp_path / "deq-nngp" / "result.json").read_text())
    assert [c["id"] for c in doc["claims"]] == CLAIMS
    for claim in doc["claims"]:
        assert isinstance(claim["measured"], float) and isinstance(claim["threshold"], float)
    claims = {c["id"]: c for c in doc["claims"]}
    # deterministic: deq_kernel against independently derived reference values
    assert claims["kernel_reference_values"]["measured"] <= 1e-6
    assert claims["kernel_reference_values"]["passed"]
    assert claims["lambda_min_positive"]["passed"]
    # a plain Picard loop and the batched solver reproduce the registered "deq" model
    assert doc["metrics"]["simulator_vs_model_max_abs"] < 1e-8
    assert doc["metrics"]["batched_solver_vs_model_max_abs"] < 1e-8
    assert len(doc["figures"]) == 5
    for figure in doc["figures"]:
        assert (tmp_path / "deq-nngp" / figure).read_bytes()[:4] == b"\x89PNG"
