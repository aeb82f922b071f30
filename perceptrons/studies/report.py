"""Report files of a study and the index page across studies.

Per study folder (``<out>/<study>/``):

* ``result.json`` — exactly ``{"study", "budget", "seed", "claims": [{"id", "statement",
  "measured", "threshold", "passed"}], "metrics", "figures", "config", "environment"}``;
* ``report.md`` — claims table, metrics, tables, figures and the command to rerun;
* ``tables/<name>.csv`` — every table of the result;
* for a study that raised: ``error.json`` (study, budget, seed, message, command) and
  ``traceback.txt`` instead of ``result.json``.

``<out>/index.html`` is one self-contained page (inline CSS, figures embedded as base64 PNG) with
a section per study folder found under ``<out>``.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import os
import platform
import sys
from pathlib import Path
from typing import Any

from perceptrons.io import atomic_write, load_json, save_json
from perceptrons.studies.base import Claim, StudyResult

__all__ = ["environment", "result_json", "write_index", "write_study_report"]


def environment() -> dict[str, Any]:
    """Versions and machine facts that a result depends on."""
    import numpy
    import torch

    import perceptrons

    return {
        "perceptrons": perceptrons.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "argv": sys.argv,
    }


def result_json(
    study: str,
    budget: str,
    seed: int,
    result: StudyResult,
    config: dict[str, Any],
    out_dir: Path,
    env: dict[str, Any],
) -> dict[str, Any]:
    """The ``result.json`` document (figure paths relative to ``out_dir``)."""
    return {
        "study": study,
        "budget": budget,
        "seed": seed,
        "claims": [c.to_json() for c in result.claims],
        "metrics": result.metrics,
        "figures": [_relative(p, out_dir) for p in result.figures],
        "config": config,
        "environment": env,
    }


def _relative(path: Path, root: Path) -> str:
    path = Path(path)
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.6g}"
    return str(value)


def _claim_cell(claim: Claim | dict[str, Any]) -> tuple[str, str, str, str, str]:
    if isinstance(claim, Claim):
        return (
            claim.id,
            claim.statement,
            _fmt(claim.measured),
            f"{claim.comparison} {_fmt(claim.threshold)}",
            "pass" if claim.passed else "FAIL",
        )
    measured = claim.get("measured")
    return (
        claim["id"],
        claim["statement"],
        _fmt(measured) if measured is not None else "nan",
        _fmt(claim["threshold"]),
        "pass" if claim["passed"] else "FAIL",
    )


def write_study_report(
    out_dir: Path,
    *,
    study: str,
    paper: str,
    budget: str,
    seed: int,
    command: str,
    result: StudyResult,
    config: dict[str, Any],
    seconds: float,
) -> dict[str, Any]:
    """Write ``result.json``, ``report.md`` and table CSVs; return the result document."""
    env = {**environment(), "command": command}
    doc = result_json(study, budget, seed, result, config, out_dir, env)
    for name, table in result.tables.items():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(table.columns)
        writer.writerows(table.rows)
        with atomic_write(out_dir / "tables" / f"{name}.csv") as handle:
            handle.write(buffer.getvalue())
    lines = [
        f"# {study}",
        "",
        f"Paper: {paper}" if paper else "",
        "",
        f"Budget `{budget}`, seed {seed}, {seconds:.1f} s. Rerun with:",
        "",
        f"    {command}",
        "",
        "## Claims",
        "",
        "| id | statement | measured | threshold | verdict |",
        "|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(_claim_cell(c)) + " |" for c in result.claims]
    scalars = {k: v for k, v in result.metrics.items() if isinstance(v, int | float | str)}
    if scalars:
        lines += ["", "## Metrics", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in scalars.items()]
    for name, table in result.tables.items():
        lines += ["", f"## Table: {name}", "", "| " + " | ".join(table.columns) + " |"]
        lines += ["|" + "---|" * len(table.columns)]
        lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in table.rows]
    if result.figures:
        lines += ["", "## Figures", ""]
        lines += [f"![{Path(p).stem}]({_relative(p, out_dir)})" for p in result.figures]
    lines += ["", "## Environment", ""]
    lines += [f"- {k}: {v}" for k, v in env.items() if k not in ("argv", "command")]
    with atomic_write(out_dir / "report.md") as handle:
        handle.write("\n".join(lines) + "\n")
    save_json(out_dir / "result.json", doc)
    return doc


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{border-bottom:2px solid #444}section{border-top:1px solid #ccc;margin-top:2em}
table{border-collapse:collapse;margin:1em 0;width:100%}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f3f3f3}.pass{color:#106b21;font-weight:bold}
.FAIL,.errored{color:#b00020;font-weight:bold}code,pre{background:#f6f6f6;padding:2px 4px}
pre{padding:8px;overflow-x:auto}img{max-width:100%;border:1px solid #ddd;margin:4px 0}
.summary td{width:auto}
"""


def _embed_png(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def _study_folders(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.iterdir()
        if p.is_dir()
        and not p.name.startswith(".")
        and ((p / "result.json").exists() or (p / "error.json").exists())
    )


def write_index(root: Path) -> Path:
    """Write ``root/index.html`` covering every study folder under ``root``; return its path."""
    root = Path(root)
    sections, summary = [], []
    for folder in _study_folders(root):
        e = html.escape
        if (folder / "error.json").exists():
            err = load_json(folder / "error.json")
            status = "errored"
            body = (
                f"<p class='errored'>errored: {e(str(err.get('message', '')))}</p>"
                f"<p>Traceback: <code>{e(folder.name)}/traceback.txt</code></p>"
                f"<p>Rerun: <code>{e(err.get('command', ''))}</code></p>"
            )
            claims_text = "-"
        else:
            doc = load_json(folder / "result.json")
            claims = doc.get("claims", [])
            passed = sum(bool(c["passed"]) for c in claims)
            status = "pass" if claims and passed == len(claims) else "FAIL"
            claims_text = f"{passed}/{len(claims)}"
            rows = "".join(
                "<tr>"
                + "".join(
                    f"<td class='{e(c)}'>{e(c)}</td>" if i == 4 else f"<td>{e(c)}</td>"
                    for i, c in enumerate(_claim_cell(claim))
                )
                + "</tr>"
                for claim in claims
            )
            figures = "".join(
                _embed_png(folder / f) for f in doc.get("figures", []) if (folder / f).exists()
            )
            command = doc.get("environment", {}).get("command", "")
            metrics = doc.get("metrics", {})
            seconds = metrics.get("wall_time_s")
            body = (
                f"<p>Budget <b>{e(doc['budget'])}</b>, seed {doc['seed']}"
                + (f", {seconds:.1f} s" if isinstance(seconds, int | float) else "")
                + f". Rerun: <code>{e(command)}</code>. Details: "
                f"<a href='{e(folder.name)}/report.md'>report.md</a>, "
                f"<a href='{e(folder.name)}/result.json'>result.json</a>.</p>"
                "<table><tr><th>claim</th><th>statement</th><th>measured</th>"
                f"<th>threshold</th><th>verdict</th></tr>{rows}</table>{figures}"
            )
        summary.append(
            f"<tr><td><a href='#{e(folder.name)}'>{e(folder.name)}</a></td>"
            f"<td class='{status}'>{status}</td><td>{claims_text}</td></tr>"
        )
        sections.append(f"<section id='{e(folder.name)}'><h2>{e(folder.name)}</h2>{body}</section>")
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>perceptrons reports</title>"
        f"<style>{_CSS}</style></head><body><h1>perceptrons: study reports</h1>"
        "<table class='summary'><tr><th>study</th><th>status</th><th>claims passed</th></tr>"
        + "".join(summary)
        + "</table>"
        + "".join(sections)
        + "</body></html>\n"
    )
    path = root / "index.html"
    with atomic_write(path) as handle:
        handle.write(page)
    return path
