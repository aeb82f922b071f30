"""Claims, results and study registration."""

import math
from dataclasses import dataclass

import pytest

from perceptrons.registry import STUDIES, list_studies
from perceptrons.studies.base import (
    Claim,
    StudyConfig,
    StudyResult,
    Table,
    config_differences,
    format_command,
    register_study,
)


@pytest.mark.parametrize(
    ("measured", "threshold", "comparison", "expected"),
    [
        (0.96, 0.95, ">=", True),
        (0.95, 0.95, ">=", True),
        (0.94, 0.95, ">=", False),
        (0.95, 0.95, ">", False),
        (0.01, 0.02, "<=", True),
        (0.03, 0.02, "<=", False),
        (0.02, 0.02, "<", False),
        (math.nan, 0.02, "<=", False),
        (math.nan, 0.02, ">=", False),
        (math.inf, 0.02, ">=", False),
    ],
)
def test_claim_verdicts(measured, threshold, comparison, expected):
    claim = Claim.check("c", "statement", measured, threshold, comparison)
    assert claim.passed is expected


def test_claim_json_has_exactly_the_documented_keys():
    claim = Claim.check("x", "s", 1.0, 2.0, "<=")
    assert list(claim.to_json()) == ["id", "statement", "measured", "threshold", "passed"]


def test_bad_comparison_raises():
    with pytest.raises(ValueError, match="comparison"):
        Claim.check("x", "s", 1.0, 2.0, "==")  # type: ignore[arg-type]


def test_duplicate_claim_id_raises():
    result = StudyResult()
    result.claim("a", "s", 1, 0, ">=")
    with pytest.raises(ValueError, match="'a' is recorded twice"):
        result.claim("a", "s", 1, 0, ">=")


def test_result_passed_needs_claims_and_all_passing():
    result = StudyResult()
    assert not result.passed
    result.claim("a", "s", 1, 0, ">=")
    assert result.passed
    result.claim("b", "s", 1, 0, "<=")
    assert not result.passed


def test_table_row_length_checked():
    with pytest.raises(ValueError, match=r"rows\[1\]: expected 2 values"):
        Table(["a", "b"], [[1, 2], [3]])


@dataclass(frozen=True, kw_only=True)
class _Cfg(StudyConfig):
    """Test config.

    Attributes:
        n: A number.
    """

    n: int = 1


def test_register_study_validates_presets():
    with pytest.raises(ValueError, match="lack budget"):
        register_study("x-missing", config=_Cfg, presets={"quick": _Cfg()}, paper="")
    with pytest.raises(ValueError, match="expected _Cfg"):
        register_study(
            "x-wrong", config=_Cfg, presets={"quick": _Cfg(), "full": StudyConfig()}, paper=""
        )


def test_registering_an_existing_study_name_raises():
    existing = list_studies()[0]
    with pytest.raises(ValueError, match="already registered"):
        register_study(existing, config=_Cfg, presets={"quick": _Cfg(), "full": _Cfg()}, paper="")(
            lambda config, out: StudyResult()
        )
    assert existing in STUDIES


def test_negative_seed_rejected():
    with pytest.raises(ValueError, match="seed"):
        _Cfg(seed=-1)


def test_config_differences_and_command():
    from perceptrons.studies.mlp_digits.config import MLPDigitsConfig

    base = MLPDigitsConfig()
    changed = base.replace_path("fit.max_epochs", 3).replace(hidden_features=(8, 4))
    assert config_differences(changed, base) == {"hidden_features": (8, 4), "fit.max_epochs": 3}
    cmd = format_command(
        "mlp-digits", "quick", 3, [("hidden_features", (8, 4)), ("fit.progress", True)]
    )
    assert cmd == (
        "perceptrons reproduce mlp-digits --budget quick --seed 3 "
        "--set hidden_features=8,4 --set fit.progress=true"
    )
