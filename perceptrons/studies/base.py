"""What a study is: a registered ``run(config, out_dir) -> StudyResult`` with presets.

A study reproduces a paper's claims. It declares a `StudyConfig` subclass with two presets,
``quick`` (under 60 s on 2 CPU cores; what ``make demo`` runs) and ``full``, and a ``run``
function that trains through `perceptrons.train.fit`, writes its figures into ``out_dir`` and
returns a `StudyResult` whose claims each carry the measured value, the threshold and the
verdict. The runner (`perceptrons.studies.runner`) writes ``config.json``, ``result.json``,
``report.md`` and tables; a study only returns data and saves figures.

Example (the shape every study follows, see ``perceptrons/studies/mlp_digits``)::

    @register_study("mlp-digits", config=MLPDigitsConfig, presets={"quick": ..., "full": ...},
                    paper="library template (no paper)")
    def run(config: MLPDigitsConfig, out_dir: Path) -> StudyResult:
        result = StudyResult()
        ...
        result.claim("test_accuracy", "MLP test accuracy on digits", acc, 0.95, ">=")
        return result
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from perceptrons.config import Config, require
from perceptrons.registry import STUDIES

__all__ = [
    "BUDGETS",
    "Claim",
    "Comparison",
    "Study",
    "StudyConfig",
    "StudyResult",
    "Table",
    "register_study",
]

BUDGETS = ("quick", "full")
Comparison = Literal["<=", ">=", "<", ">"]
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<=": lambda m, t: m <= t,
    ">=": lambda m, t: m >= t,
    "<": lambda m, t: m < t,
    ">": lambda m, t: m > t,
}


@dataclass(frozen=True, kw_only=True)
class StudyConfig(Config):
    """Base of every study's configuration.

    Attributes:
        seed: Base seed of every random draw in the study (data split, initialisation,
            shuffling); ``perceptrons reproduce --seed`` sets it.
        num_threads: torch intra-op threads while the study runs, restored afterwards by the
            runner (``None``: torch's default). Studies of small models set 1: it is as fast
            for them, and 2 threads on a busy 2-core machine made them 5-14x slower.
    """

    seed: int = 0
    num_threads: int | None = None

    def validate(self) -> None:
        require(self.seed >= 0, "seed", "must be >= 0", self.seed)
        require(
            self.num_threads is None or self.num_threads >= 1,
            "num_threads",
            "must be >= 1 or None",
            self.num_threads,
        )


@dataclass(frozen=True)
class Claim:
    """One checked statement of a reproduction.

    Attributes:
        id: Stable snake_case identifier (tests and docs refer to it).
        statement: What is claimed, in words.
        measured: The measured value (NaN when it could not be measured).
        threshold: The value it is compared with.
        comparison: How: ``measured <comparison> threshold`` must hold.
        passed: Whether it held (always False for a NaN measurement).
    """

    id: str
    statement: str
    measured: float
    threshold: float
    comparison: Comparison
    passed: bool

    @classmethod
    def check(
        cls, id: str, statement: str, measured: float, threshold: float, comparison: Comparison
    ) -> Claim:
        """Build a claim and compute its verdict."""
        if comparison not in _COMPARE:
            raise ValueError(f"comparison: expected one of {list(_COMPARE)}, got {comparison!r}")
        measured, threshold = float(measured), float(threshold)
        passed = (
            math.isfinite(measured)
            and not math.isnan(threshold)
            and _COMPARE[comparison](measured, threshold)
        )
        return cls(id, statement, measured, threshold, comparison, bool(passed))

    def to_json(self) -> dict[str, Any]:
        """The ``result.json`` form: ``{"id", "statement", "measured", "threshold", "passed"}``.

        The comparison is part of the statement's wording in the report; ``result.json`` keeps
        the documented five keys.
        """
        return {
            "id": self.id,
            "statement": self.statement,
            "measured": self.measured,
            "threshold": self.threshold,
            "passed": self.passed,
        }


@dataclass
class Table:
    """A small table for the report (also written as CSV).

    Attributes:
        columns: Column names.
        rows: Rows of values, each as long as ``columns``.
    """

    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for i, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(
                    f"rows[{i}]: expected {len(self.columns)} values ({self.columns}), "
                    f"got {len(row)}"
                )


@dataclass
class StudyResult:
    """What a study's ``run`` returns.

    Attributes:
        claims: Checked claims, in the order they should be reported.
        metrics: Scalar or small JSON-able measurements worth keeping.
        tables: Named tables, rendered in ``report.md`` and written as CSV.
        figures: Paths of PNG figures the study wrote inside its ``out_dir``.
    """

    claims: list[Claim] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)

    def claim(
        self,
        id: str,
        statement: str,
        measured: float,
        threshold: float,
        comparison: Comparison,
    ) -> Claim:
        """Check a claim and append it; returns the claim.

        Raises:
            ValueError: a claim with this id already exists.
        """
        if any(c.id == id for c in self.claims):
            raise ValueError(f"claim {id!r} is recorded twice")
        made = Claim.check(id, statement, measured, threshold, comparison)
        self.claims.append(made)
        return made

    @property
    def passed(self) -> bool:
        """True when every claim passed (and there is at least one)."""
        return bool(self.claims) and all(c.passed for c in self.claims)


@dataclass(frozen=True)
class Study:
    """A registered reproduction.

    Attributes:
        name: Registry name (kebab-case, e.g. ``"mlp-digits"``).
        run: ``run(config, out_dir) -> StudyResult``.
        config: The study's `StudyConfig` subclass.
        presets: Budget name -> config; must contain every name in `BUDGETS`.
        paper: Paper reference (title, authors, year, arXiv id).
        summary: One line shown by ``perceptrons list``.
    """

    name: str
    run: Callable[[Any, Path], StudyResult]
    config: type[StudyConfig]
    presets: dict[str, StudyConfig]
    paper: str = ""
    summary: str = ""

    def preset(self, budget: str) -> StudyConfig:
        """The config of budget ``budget``.

        Raises:
            ValueError: unknown budget (message lists the valid ones).
        """
        if budget not in self.presets:
            raise ValueError(
                f"unknown budget {budget!r} for study {self.name!r} "
                f"(valid: {', '.join(self.presets)})"
            )
        return self.presets[budget]


def register_study(
    name: str,
    *,
    config: type[StudyConfig],
    presets: dict[str, StudyConfig],
    paper: str,
    summary: str = "",
) -> Callable[[Callable[[Any, Path], StudyResult]], Callable[[Any, Path], StudyResult]]:
    """Decorator registering ``run`` as study ``name`` in `perceptrons.registry.STUDIES`.

    Raises:
        ValueError: duplicate name, a missing budget, or a preset of the wrong config class.
    """
    missing = [b for b in BUDGETS if b not in presets]
    if missing:
        raise ValueError(f"study {name!r}: presets lack budget(s) {missing}")
    for budget, preset in presets.items():
        if type(preset) is not config:
            raise ValueError(
                f"study {name!r}: preset {budget!r} is a {type(preset).__name__}, "
                f"expected {config.__name__}"
            )

    def decorate(run: Callable[[Any, Path], StudyResult]) -> Callable[[Any, Path], StudyResult]:
        doc = (run.__doc__ or "").strip()
        line = summary or (doc.splitlines()[0] if doc else "")
        study = Study(name, run, config, dict(presets), paper, line)
        STUDIES.add(name, study, config=config, paper=paper, summary=line)
        return run

    return decorate


def config_differences(config: Config, base: Config) -> dict[str, Any]:
    """Dotted field paths whose values differ between two configs of one class."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        a, b = getattr(config, f.name), getattr(base, f.name)
        if isinstance(a, Config) and type(a) is type(b):
            for key, value in config_differences(a, b).items():
                out[f"{f.name}.{key}"] = value
        elif a != b:
            out[f.name] = a
    return out


def format_command(
    name: str, budget: str, seed: int, overrides: Sequence[tuple[str, Any]] = ()
) -> str:
    """The shell command that reruns a study with these settings."""
    parts = ["perceptrons", "reproduce", name, "--budget", budget, "--seed", str(seed)]
    for key, value in overrides:
        text = ",".join(str(v) for v in value) if isinstance(value, tuple) else str(value)
        if isinstance(value, bool) or value is None:
            text = "true" if value is True else "false" if value is False else "null"
        parts += ["--set", f"{key}={text}"]
    return " ".join(parts)
