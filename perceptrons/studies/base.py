"""What a study is: a registered ``run(config, out_dir) -> StudyResult`` with presets.

A study reproduces a paper's claims. Its package ``perceptrons/studies/<slug>/`` has the same
four modules in every study, so that knowing one means knowing all:

* ``config.py``: the `StudyConfig` subclass, its ``QUICK`` (at most 3 minutes on 2 CPU cores;
  what ``make demo`` runs) and ``FULL`` presets, and the `register_study` call;
* ``experiments.py``: the measurements, each a function returning a typed result dataclass;
* ``figures.py``: one function per figure, taking those results and saving a PNG through
  `perceptrons.studies.common.save_figure`;
* ``run.py``: ``run(config, out_dir) -> StudyResult``, which calls the experiments, draws the
  figures and states the claims (each with its measured value, threshold and verdict).

Registration is lazy: ``config.py`` registers the study with ``run`` as a
``"module:function"`` string, and the module is imported only when the study runs, so
``perceptrons list`` / ``info`` never import matplotlib or scikit-learn. The runner
(`perceptrons.studies.runner`) writes ``config.json``, ``result.json``, ``report.md`` and
tables; a study only returns data and saves figures.

Example (the shape every study follows, see ``perceptrons/studies/mlp_digits``)::

    # config.py
    register_study("mlp-digits", config=MLPDigitsConfig, presets={"quick": QUICK, "full": FULL},
                   paper="library template (no paper)",
                   run="perceptrons.studies.mlp_digits.run:run")

    # run.py
    def run(config: MLPDigitsConfig, out_dir: Path) -> StudyResult:
        result = StudyResult()
        ...
        result.claim("test_accuracy", "MLP test accuracy on digits", acc, 0.95, ">=")
        return result

Users' own studies may also register a function directly, as a decorator::

    @register_study("my-study", config=MyConfig, presets={...}, paper="...")
    def run(config: MyConfig, out_dir: Path) -> StudyResult: ...
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from perceptrons.config import Config, differences, require
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


RunFunction = Callable[[Any, Path], StudyResult]


@dataclass(frozen=True)
class Study:
    """A registered reproduction.

    Attributes:
        name: Registry name (kebab-case, e.g. ``"mlp-digits"``).
        target: The function ``run(config, out_dir) -> StudyResult``, or where it lives as a
            ``"package.module:function"`` string (imported on the first `run`).
        config: The study's `StudyConfig` subclass.
        presets: Budget name -> config; must contain every name in `BUDGETS`.
        paper: Paper reference (title, authors, year, arXiv id).
        summary: One line shown by ``perceptrons list``.
        modules: The library modules that implement what the study measures (shown by
            ``perceptrons info``).
        docs: The study's documentation page, relative to the repository root.
    """

    name: str
    target: RunFunction | str
    config: type[StudyConfig]
    presets: dict[str, StudyConfig]
    paper: str = ""
    summary: str = ""
    modules: tuple[str, ...] = ()
    docs: str = ""

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

    def function(self) -> RunFunction:
        """The run function, importing its module when `target` is a string.

        Raises:
            ImportError: the module of a string target cannot be imported, or lacks the name.
        """
        if not isinstance(self.target, str):
            return self.target
        module, _, attr = self.target.partition(":")
        found = getattr(importlib.import_module(module), attr, None)
        if not callable(found):
            raise ImportError(f"study {self.name!r}: {self.target!r} is not a function")
        return found

    def run(self, config: StudyConfig, out_dir: Path) -> StudyResult:
        """Run the study with ``config`` into ``out_dir`` (see `perceptrons.studies.runner`)."""
        return self.function()(config, out_dir)


def register_study(
    name: str,
    *,
    config: type[StudyConfig],
    presets: dict[str, StudyConfig],
    paper: str,
    summary: str = "",
    run: RunFunction | str | None = None,
    modules: tuple[str, ...] = (),
    docs: str = "",
) -> Any:
    """Register study ``name`` in `perceptrons.registry.STUDIES`.

    With ``run`` (a function, or a ``"module:function"`` string imported only when the study
    runs) the study is registered at once and the `Study` returned; without it this is a
    decorator registering the decorated function. ``summary`` defaults to the first line of
    the function's docstring, else of the config class's.

    Raises:
        ValueError: duplicate name, a missing budget, a preset of the wrong config class, or a
            string ``run`` without ``module:function``.
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
    if isinstance(run, str) and not all(run.partition(":")[::2]):
        raise ValueError(f"study {name!r}: run={run!r} must be 'package.module:function'")

    def add(target: RunFunction | str) -> Study:
        doc = "" if isinstance(target, str) else (target.__doc__ or "").strip()
        doc = doc or (config.__doc__ or "").strip()
        line = summary or (doc.splitlines()[0] if doc else "")
        study = Study(name, target, config, dict(presets), paper, line, tuple(modules), docs)
        STUDIES.add(
            name, study, config=config, paper=paper, summary=line, modules=modules, docs=docs
        )
        return study

    if run is not None:
        return add(run)

    def decorate(function: RunFunction) -> RunFunction:
        add(function)
        return function

    return decorate


def config_differences(config: Config, base: Config) -> dict[str, Any]:
    """Dotted field paths whose values differ between two configs of one class, with the
    value in ``config`` (see `perceptrons.config.differences`)."""
    return {path: getattr_path(config, path) for path in differences(base, config)}


def getattr_path(config: Config, path: str) -> Any:
    """The value of dotted field ``path`` of ``config``."""
    value: Any = config
    for part in path.split("."):
        value = getattr(value, part)
    return value


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
