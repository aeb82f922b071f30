"""Start-up time of the ``perceptrons`` command and of ``import perceptrons``.

Each command runs in a fresh interpreter, ``--repeats`` times after one untimed warm-up (the
file cache); the table shows the median and the minimum wall time. Two floors put the numbers
in context: an empty interpreter (``python -c pass``) and ``import torch`` alone, which every
command that builds the model registry pays (``list``, ``info``: models are torch modules).
``--help`` and ``import perceptrons`` import no torch at all.

    python benchmarks/cli_startup.py --repeats 5        # writes benchmarks/results/cli_startup.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).parent / "results" / "cli_startup.json"
CLI = [sys.executable, "-m", "perceptrons"]
CASES: list[tuple[str, list[str]]] = [
    ("python -c pass (floor)", [sys.executable, "-c", "pass"]),
    ("import torch (floor of list/info)", [sys.executable, "-c", "import torch"]),
    ("import perceptrons", [sys.executable, "-c", "import perceptrons"]),
    ("perceptrons --help", [*CLI, "--help"]),
    ("perceptrons ctr train --help", [*CLI, "ctr", "train", "--help"]),
    ("perceptrons list", [*CLI, "list"]),
    ("perceptrons info mlp", [*CLI, "info", "mlp"]),
    ("perceptrons info deq-nngp", [*CLI, "info", "deq-nngp"]),
]


def wall_time(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, "CI": "1"})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    args = parser.parse_args()
    rows = []
    for label, command in CASES:
        wall_time(command)  # warm-up: file cache, .pyc files
        times = [wall_time(command) for _ in range(args.repeats)]
        rows.append({"command": label, "median_s": statistics.median(times), "min_s": min(times)})
    table = Table(title=f"Start-up time ({args.repeats} runs each, after one warm-up)")
    for column in ("command", "median (s)", "min (s)"):
        table.add_column(column, justify="left" if column == "command" else "right")
    for row in rows:
        table.add_row(row["command"], f"{row['median_s']:.3f}", f"{row['min_s']:.3f}")
    Console().print(table)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "benchmark": "cli_startup",
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "repeats": args.repeats,
            "results": rows,
        }
        args.out.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
