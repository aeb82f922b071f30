"""Step time of DeepFM against the embedding table size: dense AdamW vs sparse embedding updates.

A Criteo-like DeepFM (26 categorical fields, 13 numeric; embedding dim 16, MLP (128, 64)) with
``--small`` and ``--large`` table rows in all (split evenly over the 26 fields), trained on
synthetic batches of ``--batch-size`` rows whose ids are drawn uniformly from each field (a
pool of 8 batches, cycled, so consecutive steps touch different rows). One step is what `fit`
does: ``zero_grad`` -> `CTRStep` -> ``backward`` -> ``optimizer.step``, with the optimiser
`make_optimizer` builds:

* ``dense adamw``: dense tables, fused AdamW over every parameter (the default model; its
  step reads and writes the whole table, its moments and a dense gradient);
* ``sparse_adam``: ``sparse_embeddings=True``, AdamW on the dense part, SparseAdam on the
  tables (``OptimizerConfig(embedding_optimizer="sparse_adam")``);
* ``adagrad``: the same with Adagrad on the tables;
* ``rowwise_adagrad``: the same with `RowwiseAdagrad` (one accumulator per row, torchrec's
  and PyTorch-BigGraph's choice for large tables);
* ``torch SparseAdam`` / ``torch Adagrad``: the same two with torch's own classes instead of
  `perceptrons.train.optim.RowSparseAdam` / ``RowSparseAdagrad`` (their row-wise subclasses,
  bit-identical updates), for comparison.

Median seconds per step over ``--steps`` timed steps after ``--warmup`` untimed ones (the dense
run at ``--large`` rows takes ``--dense-large-steps``: each of its steps streams gigabytes).
Also reported: the optimiser's share of the step (``optimizer.step`` alone) and the bytes of
parameters + optimiser state. Goal: the sparse step at ``--large`` rows within 1.5x of the
one at ``--small`` rows.

    nice .venv/bin/python benchmarks/ctr_sparse.py                       # 10k vs 10M rows
    nice .venv/bin/python benchmarks/ctr_sparse.py --large 1000000 --steps 10   # quicker
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from perceptrons.ctr.features import CTRFeatures, CTRInput
from perceptrons.ctr.models import CTRStep, DeepFM, DeepFMConfig
from perceptrons.train import OptimizerConfig, make_optimizer
from perceptrons.train.optim import CombinedOptimizer, sparse_embedding_parameters

NUM_CATEGORICAL, NUM_NUMERIC, POOL = 26, 13, 8


def _with_torch(embedding: type[torch.optim.Optimizer]):
    """AdamW on the dense parameters and torch's own ``embedding`` class on the tables."""

    def build(model: torch.nn.Module) -> torch.optim.Optimizer:
        tables = sparse_embedding_parameters(model)
        dense = [p for p in model.parameters() if all(p is not t for t in tables)]
        return CombinedOptimizer([torch.optim.AdamW(dense), embedding(tables)])

    return build


def _from_config(config: OptimizerConfig):
    return lambda model: make_optimizer(model, config)


MODES = {
    "dense adamw": (False, _from_config(OptimizerConfig(name="adamw", fused=True))),
    "sparse_adam": (True, _from_config(OptimizerConfig(embedding_optimizer="sparse_adam"))),
    "adagrad": (True, _from_config(OptimizerConfig(embedding_optimizer="adagrad"))),
    "rowwise_adagrad": (True, _from_config(OptimizerConfig(embedding_optimizer="rowwise_adagrad"))),
    "torch SparseAdam": (True, _with_torch(torch.optim.SparseAdam)),
    "torch Adagrad": (True, _with_torch(torch.optim.Adagrad)),
}


def make_features(total_rows: int) -> CTRFeatures:
    """26 categorical fields whose cardinalities add up to ``total_rows``, 13 numeric fields."""
    base, extra = divmod(total_rows, NUM_CATEGORICAL)
    cards = tuple(base + (i < extra) for i in range(NUM_CATEGORICAL))
    return CTRFeatures(
        categorical_fields=tuple(f"C{i + 1}" for i in range(NUM_CATEGORICAL)),
        categorical_cardinalities=cards,
        numeric_fields=tuple(f"I{i + 1}" for i in range(NUM_NUMERIC)),
        multi_valued_fields=(),
        multi_valued_cardinalities=(),
        num_types=0,
    )


def make_batches(features: CTRFeatures, batch_size: int, seed: int = 0) -> list[tuple]:
    """``POOL`` batches ``(CTRInput, labels)`` with uniform ids in every field."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(POOL):
        cat = torch.stack(
            [
                torch.randint(0, c, (batch_size,), generator=g)
                for c in features.categorical_cardinalities
            ],
            dim=1,
        )
        numeric = torch.randn(batch_size, NUM_NUMERIC, generator=g)
        x = CTRInput(cat, numeric, (), torch.zeros(batch_size, 0, dtype=torch.long))
        labels = (torch.rand(batch_size, generator=g) < 0.25).float()
        batches.append((x, labels))
    return batches


class Run:
    """One model + optimiser of ``mode`` over ``rows`` table rows, stepped on its batch pool."""

    def __init__(self, rows: int, mode: str, batch_size: int, embed_dim: int) -> None:
        sparse, build = MODES[mode]
        self.rows, self.mode = rows, mode
        features = make_features(rows)
        self.model = DeepFM(
            DeepFMConfig(
                features=features,
                embed_dim=embed_dim,
                hidden_features=(128, 64),
                sparse_embeddings=sparse,
            ),
            generator=torch.Generator().manual_seed(0),
        )
        self.model.train()
        self.optimizer = build(self.model)
        self.step_fn = CTRStep()
        self.batches = make_batches(features, batch_size)
        offsets = torch.tensor(self.model.embedding.offsets)
        self.distinct_rows = statistics.mean(
            len(torch.unique(x.categorical + offsets)) for x, _ in self.batches
        )
        self.done = 0
        self.totals: list[float] = []
        self.updates: list[float] = []

    def step(self, timed: bool) -> None:
        """One training step; its seconds (and those of ``optimizer.step``) kept if ``timed``."""
        batch = self.batches[self.done % POOL]
        start = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        self.step_fn(self.model, batch)["loss"].backward()
        middle = time.perf_counter()
        self.optimizer.step()
        end = time.perf_counter()
        self.done += 1
        if timed:
            self.totals.append(end - start)
            self.updates.append(end - middle)

    def state_bytes(self) -> int:
        """Bytes of the parameters and of the optimiser's state tensors."""
        total = sum(p.numel() * p.element_size() for p in self.model.parameters())
        for entry in self.optimizer.state.values():
            for value in entry.values():
                if isinstance(value, torch.Tensor):
                    total += value.numel() * value.element_size()
        return total


def measure(mode: str, sizes: list[int], args: argparse.Namespace) -> list[dict]:
    """Step every size of ``mode`` in turn (rotating the order each round), so that the load of
    a shared machine hits the sizes alike; the dense run at the largest size takes
    ``--dense-large-steps`` timed steps, the others ``--steps``."""
    runs = [Run(rows, mode, args.batch_size, args.embed_dim) for rows in sizes]
    largest = max(sizes)
    budget = {
        id(r): args.dense_large_steps
        if (mode == "dense adamw" and r.rows == largest)
        else args.steps
        for r in runs
    }
    for round_index in range(args.warmup + args.steps):
        shift = round_index % len(runs)
        for run in runs[shift:] + runs[:shift]:
            if round_index < args.warmup:
                run.step(timed=False)
            elif len(run.totals) < budget[id(run)]:
                run.step(timed=True)
    results = []
    for run in runs:
        results.append(
            {
                "mode": mode,
                "rows": run.rows,
                "distinct_rows_per_batch": run.distinct_rows,
                "steps": len(run.totals),
                "warmup_steps": args.warmup,
                "seconds": run.totals,
                "optimizer_seconds": run.updates,
                "median_seconds": statistics.median(run.totals),
                "min_seconds": min(run.totals),
                "median_optimizer_seconds": statistics.median(run.updates),
                "state_bytes": run.state_bytes(),
            }
        )
    del runs
    gc.collect()
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows",
        type=int,
        nargs="+",
        default=[10_000, 1_000_000, 10_000_000],
        help="table sizes (rows in all); the ratio compares the largest with the smallest",
    )
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--embed-dim", type=int, default=16)
    parser.add_argument("--steps", type=int, default=30, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps before them")
    parser.add_argument(
        "--dense-large-steps",
        type=int,
        default=5,
        help="timed steps of dense AdamW at the largest size",
    )
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ctr_sparse.json"))
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.sparse.check_sparse_tensor_invariants.disable()  # their default; torch Adagrad warns
    console = Console(width=140)
    console.print(f"torch {torch.__version__}, torch.set_num_threads({torch.get_num_threads()})")
    sizes = sorted(set(args.rows))
    small, large = sizes[0], sizes[-1]
    wall = time.perf_counter()
    runs = []
    for mode in args.modes:
        for run in measure(mode, sizes, args):
            runs.append(run)
            console.print(
                f"{mode:>12} {run['rows']:>11,} rows: {run['median_seconds'] * 1e3:8.1f} ms/step "
                f"(median of {run['steps']})"
            )
    median = {(r["mode"], r["rows"]): r["median_seconds"] for r in runs}
    ratios = {mode: median[(mode, large)] / median[(mode, small)] for mode in args.modes}

    title = (
        f"DeepFM step time vs table rows: batch {args.batch_size}, embed dim {args.embed_dim}, "
        f"26 categorical + 13 numeric fields, {torch.get_num_threads()} thread(s)"
    )
    table = Table(title=title)
    columns = (
        "embedding update",
        "table rows",
        "distinct rows / batch",
        "ms / step (median)",
        "min",
        "optimizer.step ms",
        "params + state MiB",
        f"/ {small:,} rows",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "embedding update" else "right")
    for run in runs:
        ratio = run["median_seconds"] / median[(run["mode"], small)]
        table.add_row(
            run["mode"],
            f"{run['rows']:,}",
            f"{run['distinct_rows_per_batch']:,.0f}",
            f"{run['median_seconds'] * 1e3:.1f}",
            f"{run['min_seconds'] * 1e3:.1f}",
            f"{run['median_optimizer_seconds'] * 1e3:.1f}",
            f"{run['state_bytes'] / 2**20:,.0f}",
            "" if run["rows"] == small else f"{ratio:.2f}x",
        )
    console.print(table)
    for mode in ("sparse_adam", "adagrad", "rowwise_adagrad"):
        if mode in ratios:
            verdict = "OK" if ratios[mode] <= 1.5 else "ABOVE TARGET"
            console.print(
                f"{mode}: {large:,} / {small:,} rows = {ratios[mode]:.2f}; target <= 1.5: {verdict}"
            )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    console.print(f"peak RSS {peak:,.0f} MiB; {time.perf_counter() - wall:.0f} s in all")

    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "threads": torch.get_num_threads(),
        "model": "deepfm, 26 categorical + 13 numeric fields, MLP (128, 64)",
        "batch_size": args.batch_size,
        "embed_dim": args.embed_dim,
        "runs": runs,
        "ratio_largest_over_smallest": ratios,
        "peak_rss_mib": peak,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
