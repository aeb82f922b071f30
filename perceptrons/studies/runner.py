"""Run a registered study into a folder, safely.

`run_study` resolves the config (preset of the budget, then ``--set`` overrides, then the seed),
runs the study in a fresh temporary folder next to the destination and, when it finishes —
successfully or with an exception — swaps that folder in for ``<out>/<study>``. A crash or a kill
therefore never leaves a half-written report where a complete one used to be. A study that
raises is recorded (``error.json`` + ``traceback.txt``) rather than propagated, so that
``reproduce all`` goes on with the next study.
"""

from __future__ import annotations

import shutil
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from perceptrons.io import atomic_write, make_temp_dir, replace_dir, save_json
from perceptrons.registry import STUDIES
from perceptrons.studies.base import Study, StudyConfig, StudyResult, format_command
from perceptrons.studies.report import write_index, write_study_report

__all__ = ["StudyOutcome", "resolve_config", "run_study", "write_index"]


@dataclass
class StudyOutcome:
    """How one study run ended.

    Attributes:
        name: Study name.
        status: ``"passed"`` (every claim held), ``"failed"`` (ran, some claim failed) or
            ``"errored"`` (raised).
        out_dir: The study's report folder.
        seconds: Wall time of ``run``.
        result: The result, None when errored.
        error: One-line error message when errored.
    """

    name: str
    status: Literal["passed", "failed", "errored"]
    out_dir: Path
    seconds: float
    result: StudyResult | None = None
    error: str | None = None


def resolve_config(
    study: Study, budget: str, seed: int | None, overrides: list[tuple[str, Any]]
) -> StudyConfig:
    """Preset of ``budget`` with ``overrides`` (dotted paths) and ``seed`` applied.

    Raises:
        ValueError: unknown budget; `perceptrons.config.ConfigError` for a bad override.
    """
    config = study.preset(budget)
    for path, value in overrides:
        config = config.replace_path(path, value)
    if seed is not None:
        config = config.replace(seed=seed)
    return config


def run_study(
    study: str | Study,
    *,
    budget: str = "quick",
    seed: int | None = None,
    out: str | Path = "reports",
    overrides: list[tuple[str, Any]] | None = None,
    index: bool = True,
    reraise: bool = False,
) -> StudyOutcome:
    """Run study ``name`` and write its reports to ``<out>/<name>/``.

    Args:
        study: Registered study name, or a `Study` object (need not be registered).
        budget: ``"quick"`` or ``"full"``.
        seed: Overrides the preset's seed when given.
        out: Root folder of the reports.
        overrides: ``(dotted_field, value)`` pairs applied to the preset, values already typed.
        index: Rewrite ``<out>/index.html`` afterwards.
        reraise: Re-raise the study's exception after its error report is in place
            (``perceptrons --debug``).

    Returns:
        The outcome; exceptions raised by the study are caught and reported in it.

    Raises:
        KeyError: unknown study (with suggestions). ValueError: bad budget or override.
    """
    if isinstance(study, str):
        study = STUDIES.get(study).obj
    name = study.name
    overrides = list(overrides or [])
    config = resolve_config(study, budget, seed, overrides)
    command = format_command(name, budget, config.seed, overrides)
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    dest = root / name
    tmp = make_temp_dir(root, f".{name}.tmp-")
    save_json(tmp / "config.json", {"type": type(config).__name__, "params": config.to_dict()})
    start = time.perf_counter()
    threads = torch.get_num_threads()
    try:
        if config.num_threads is not None:
            torch.set_num_threads(config.num_threads)
        try:
            result = study.run(config, tmp)
        finally:
            torch.set_num_threads(threads)
        if not isinstance(result, StudyResult):
            raise TypeError(f"study {name!r} returned {type(result).__name__}, not StudyResult")
        seconds = time.perf_counter() - start
        result.metrics.setdefault("wall_time_s", seconds)
        write_study_report(
            tmp,
            study=name,
            paper=study.paper,
            budget=budget,
            seed=config.seed,
            command=command,
            result=result,
            config=config.to_dict(),
            seconds=seconds,
        )
        status: Literal["passed", "failed", "errored"] = "passed" if result.passed else "failed"
        error = None
    except Exception as exc:  # noqa: BLE001 - any study failure is reported, not propagated
        failure = exc
        seconds = time.perf_counter() - start
        result, status = None, "errored"
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        with atomic_write(tmp / "traceback.txt") as handle:
            handle.write(traceback.format_exc())
        save_json(
            tmp / "error.json",
            {
                "study": name,
                "budget": budget,
                "seed": config.seed,
                "message": error,
                "command": command,
            },
        )
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if result is not None:
        result.figures = [
            dest / Path(p).relative_to(tmp) if Path(p).is_relative_to(tmp) else p
            for p in result.figures
        ]
    replace_dir(tmp, dest)
    if index:
        write_index(root)
    if reraise and status == "errored":
        raise failure
    return StudyOutcome(name, status, dest, seconds, result, error)
