"""Overhead of `perceptrons.train.fit` over a minimal hand-written torch loop.

Both train the same MLP (784 -> H -> H -> 10, ReLU, default H = 512) with AdamW on the same
synthetic in-memory data (shuffled mini-batches gathered by index), from the same initial
weights. `fit` runs with checkpointing and progress off and ``log_every=50``; its timed call
includes everything it does (optimiser/scheduler construction, RNG fork, per-step checks,
metric accumulation, scheduler steps, logging). One untimed warm-up run of each precedes the
timed repeats. Each repeat also runs the hand-written loop a second time ("A/A control"): on a
shared machine the spread between two identical runs can exceed the 5% target, and the control
shows it. The order of the three runs rotates between repeats; medians and minima are reported.

    python benchmarks/trainer_overhead.py --steps 300 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table
from torch import nn

from perceptrons.data.loader import TensorLoader
from perceptrons.train import FitConfig, OptimizerConfig, fit

NUM_SAMPLES, IN_FEATURES, NUM_CLASSES = 8192, 784, 10


def make_data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic classification data: x of shape (n, 784), labels of shape (n,)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(NUM_SAMPLES, IN_FEATURES, generator=g)
    y = torch.randint(0, NUM_CLASSES, (NUM_SAMPLES,), generator=g)
    return x, y


def make_model(hidden: int, seed: int = 0) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(
            nn.Linear(IN_FEATURES, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, NUM_CLASSES),
        )


def classification_step(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> dict:
    x, y = batch
    return {"loss": F.cross_entropy(model(x), y)}


def run_fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, batch: int) -> float:
    loader = TensorLoader((x, y), batch, shuffle=True, seed=0)
    config = FitConfig(
        max_steps=steps,
        optimizer=OptimizerConfig(name="adamw", lr=1e-3),
        log_every=50,
        checkpoint_every=None,
        progress=False,
    )
    start = time.perf_counter()
    fit(model, classification_step, loader, config)
    return time.perf_counter() - start


def run_hand(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, batch: int) -> float:
    start = time.perf_counter()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    model.train()
    generator = torch.Generator().manual_seed(0)
    done = 0
    while done < steps:
        order = torch.randperm(len(x), generator=generator)
        for lo in range(0, len(x), batch):
            if done == steps:
                break
            index = order[lo : lo + batch]
            xb, yb = x[index], y[index]
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            optimizer.step()
            done += 1
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="timed steps per run")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each loop")
    parser.add_argument("--warmup", type=int, default=30, help="steps of the untimed warm-up")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=512, help="width H of the hidden layers")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/trainer_overhead.json")
    )
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    console = Console(width=120)
    console.print(f"torch {torch.__version__}, torch.set_num_threads({torch.get_num_threads()})")
    x, y = make_data()
    run_fit(make_model(args.hidden), x, y, args.warmup, args.batch_size)
    run_hand(make_model(args.hidden), x, y, args.warmup, args.batch_size)

    # "hand_again" is the same hand-written loop run a second time: an A/A control whose ratio
    # to "hand" shows how much of a difference the machine's noise alone produces.
    runners = {"hand": run_hand, "hand_again": run_hand, "fit": run_fit}
    times: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    for repeat in range(args.repeats):
        for name in names[repeat % 3 :] + names[: repeat % 3]:  # rotate the order
            model = make_model(args.hidden)
            times[name].append(runners[name](model, x, y, args.steps, args.batch_size))
    median = {name: statistics.median(values) for name, values in times.items()}
    best = {name: min(values) for name, values in times.items()}
    ratio = median["fit"] / median["hand"]

    title = (
        f"Trainer overhead: MLP 784-{args.hidden}-{args.hidden}-10, batch {args.batch_size}, "
        f"{args.steps} steps, {args.repeats} repeats, {torch.get_num_threads()} thread(s)"
    )
    table = Table(title=title)
    for column in ("loop", "median (s)", "ms / step", "min (s)", "median / hand", "min / hand"):
        table.add_column(column, justify="left" if column == "loop" else "right")
    labels = {
        "hand": "hand-written torch loop",
        "hand_again": "same loop again (A/A noise control)",
        "fit": "perceptrons.train.fit",
    }
    for name, label in labels.items():
        table.add_row(
            label,
            f"{median[name]:.3f}",
            f"{median[name] / args.steps * 1e3:.3f}",
            f"{best[name]:.3f}",
            f"{median[name] / median['hand']:.4f}",
            f"{best[name] / best['hand']:.4f}",
        )
    console.print(table)
    verdict = "OK" if ratio <= 1.05 else "ABOVE TARGET"
    console.print(
        f"overhead ratio fit / hand (medians) = {ratio:.4f}; target <= 1.05: {verdict}; "
        f"A/A control {median['hand_again'] / median['hand']:.4f}"
    )

    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "threads": torch.get_num_threads(),
        "model": f"784-{args.hidden}-{args.hidden}-10",
        "batch_size": args.batch_size,
        "steps": args.steps,
        "repeats": args.repeats,
        "warmup_steps": args.warmup,
        "seconds": times,
        "median_seconds": median,
        "min_seconds": best,
        "ratio": ratio,
        "ratio_of_minima": best["fit"] / best["hand"],
        "aa_control_ratio": median["hand_again"] / median["hand"],
        "overhead_us_per_step": (median["fit"] - median["hand"]) / args.steps * 1e6,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
