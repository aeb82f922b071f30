"""Throughput of the batched Monte Carlo at initialisation against this machine's matmul rate.

`perceptrons.theory.simulate_grams` runs M independent initialisations of an MLP of ``depth``
hidden layers of width n (``depth + 1`` n x n `DenseLinear` layers, N(0, 1/n) weights, no bias)
on k inputs. Its rate is counted as M x layers x n^2 x k multiply-adds per second and printed
next to reference rates measured in the same run, with the same dtype and sizes:

* ``bmm``: ``torch.bmm`` of [B, k, n] x [B, n, n] (B = the Monte Carlo's chunk of networks), the
  layer matmul the Monte Carlo performs, with weights already in memory;
* ``mm``: one [n, n] x [n, n] matmul (the machine's dense rate at this size);
* ``rng``: Gaussian numbers per second of ``Tensor.normal_`` with one generator, and with one
  generator per thread (how the Monte Carlo draws); every weight is used for k multiply-adds,
  so ``k x rng`` is the rate the Monte Carlo cannot exceed while it draws fresh weights;
* the exact Gram chain (`mlp_gram_chain`, the O(nk^2) simulator of the same law) in the same
  units (simulated networks x layers x n^2 x k per second), and, if available, the correlation
  SDE (`simulate_correlation_sde`) in paths x steps per second.

Each rate is the median of ``--repeats`` timed runs after a warm-up; the runs of the different
measurements are interleaved, so load from other processes affects them alike.

    python benchmarks/montecarlo.py                # widths 64..512, k = 2 and 64, fp32 + fp64
    python benchmarks/montecarlo.py --quick        # a smoke run of a few seconds
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from perceptrons.layers import MLP
from perceptrons.theory import montecarlo
from perceptrons.theory.montecarlo import mlp_gram_chain, simulate_grams

try:  # the SDE solver lives in another module of the theory package
    from perceptrons.theory.limits import simulate_correlation_sde
except ImportError:  # pragma: no cover - only when limits.py is absent
    simulate_correlation_sde = None

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_times(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each function: one warm-up each, then ``repeats`` interleaved runs."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(timed(fn))
    return {name: statistics.median(values) for name, values in times.items()}


class ThreadedNormal:
    """Fill a buffer with one generator per thread (its leading dim split across threads)."""

    def __init__(self, buffer: torch.Tensor, workers: int) -> None:
        self.parts = buffer.chunk(workers)
        self.generators = [torch.Generator().manual_seed(i) for i in range(len(self.parts))]
        self.pool = ThreadPoolExecutor(len(self.parts))

    def __call__(self) -> None:
        list(self.pool.map(lambda i: self.parts[i].normal_(generator=self.generators[i]),
                           range(len(self.parts))))  # fmt: skip


class _Hidden(torch.nn.Module):
    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, inputs: torch.Tensor) -> list[torch.Tensor]:
        return self.net.forward_hidden(inputs, post_activation=True)


def forward_only(model: torch.nn.Module, x: torch.Tensor, batch: int) -> Callable[[], object]:
    """The Monte Carlo's batched forward pass and float64 Gram matrices for ``batch`` networks
    whose weights are already drawn: its cost without the sampling."""
    wrapper = _Hidden(model)
    params = {
        name: torch.randn(batch, *p.shape, dtype=p.dtype) for name, p in wrapper.named_parameters()
    }
    forward = torch.func.vmap(
        lambda p, inputs: torch.func.functional_call(wrapper, p, (inputs,)), in_dims=(0, None)
    )

    def run() -> None:
        with torch.no_grad():
            for h in forward(params, x):
                h64 = h.to(torch.float64)
                _ = h64 @ h64.mT

    return run


def measure(width: int, k: int, dtype: torch.dtype, args: argparse.Namespace) -> dict:
    layers = args.depth + 1
    numbers = args.numbers // (4 if dtype == torch.float64 else 1)  # fp64 sampling is ~4x slower
    num_networks = max(4, numbers // (layers * width * width))
    model = MLP(width, [width] * args.depth, width, weight_std=1.0, bias=False, dtype=dtype)
    x = torch.randn(k, width, dtype=dtype, generator=torch.Generator().manual_seed(0))
    params_per_network = layers * width * width
    block = montecarlo.rng_block(params_per_network)
    itemsize = torch.finfo(dtype).bits // 8
    per_network = params_per_network * itemsize + 4 * k * width * (layers + 1) * 8
    chunk = max(1, montecarlo.MEMORY_BUDGET_BYTES // per_network // block) * block
    batch = min(chunk, num_networks)
    weights = torch.randn(batch, width, width, dtype=dtype)
    hidden = torch.randn(batch, k, width, dtype=dtype)
    square = torch.randn(width, width, dtype=dtype)
    mm_repeats = max(1, 2**27 // width**3)
    rng_buffer = torch.empty(batch, width, width, dtype=dtype)
    generator = torch.Generator().manual_seed(1)
    threaded = ThreadedNormal(rng_buffer, torch.get_num_threads())
    chains = max(64, num_networks)

    fns: dict[str, Callable[[], object]] = {
        "monte_carlo": lambda: simulate_grams(
            model, x, num_networks, generator=torch.Generator().manual_seed(2)
        ),
        "bmm": lambda: torch.bmm(hidden, weights),
        "mm": lambda: [square @ square for _ in range(mm_repeats)],
        "rng_1": lambda: rng_buffer.normal_(generator=generator),
        "rng_threads": threaded,
        "forward": forward_only(model, x, batch),
        "chain": lambda: mlp_gram_chain(
            torch.eye(k, dtype=torch.float64) + 0.5,
            width,
            layers,
            torch.relu,
            chains,
            generator=torch.Generator().manual_seed(3),
        ),  # fmt: skip
    }
    seconds = median_times(fns, args.repeats)
    macs = num_networks * layers * width * width * k
    rates = {
        "monte_carlo": macs / seconds["monte_carlo"],
        "bmm": batch * k * width * width / seconds["bmm"],
        "mm": mm_repeats * width**3 / seconds["mm"],
        "rng_1": batch * width * width / seconds["rng_1"],
        "rng_threads": batch * width * width / seconds["rng_threads"],
        "forward": batch * layers * width * width * k / seconds["forward"],
        "chain": chains * layers * width * width * k / seconds["chain"],
    }
    # Share of the Monte Carlo's time that drawing its weights alone would take.
    rng_share = num_networks * params_per_network / rates["rng_threads"] / seconds["monte_carlo"]
    return {
        "width": width,
        "k": k,
        "dtype": str(dtype).removeprefix("torch."),
        "layers": layers,
        "num_networks": num_networks,
        "chunk_networks": batch,
        "rng_block": block,
        "seconds": seconds,
        "rates": rates,
        "mc_over_bmm": rates["monte_carlo"] / rates["bmm"],
        "mc_over_mm": rates["monte_carlo"] / rates["mm"],
        "mc_over_k_rng": rates["monte_carlo"] / (k * rates["rng_threads"]),
        "rng_share": rng_share,
    }


def measure_sde(args: argparse.Namespace) -> dict | None:
    if simulate_correlation_sde is None:
        return None
    paths, steps = (2000, 200) if args.quick else (20000, 1000)
    seconds = median_times(
        {
            "sde": lambda: simulate_correlation_sde(
                0.0, 1.0, 1.0, paths, steps, torch.Generator().manual_seed(4)
            )
        },
        args.repeats,
    )["sde"]
    return {"paths": paths, "steps": steps, "seconds": seconds, "rate": paths * steps / seconds}


def giga(x: float) -> str:
    return f"{x / 1e9:.2f}"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--inputs", type=int, nargs="+", default=[2, 64], help="values of k")
    parser.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=list(DTYPES))
    parser.add_argument("--depth", type=int, default=16, help="hidden layers (layers = depth+1)")
    parser.add_argument(
        "--numbers", type=int, default=2**26, help="weights drawn per Monte Carlo run (fp32)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--quick", action="store_true", help="widths 64 128, k 2, 1 repeat")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/montecarlo.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.widths, args.inputs, args.numbers, args.repeats = [64, 128], [2], 2**22, 1
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    console = Console(width=140)
    console.print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    rows = []
    for dtype_name in args.dtypes:
        for k in args.inputs:
            for width in args.widths:
                row = measure(width, k, DTYPES[dtype_name], args)
                rows.append(row)
                mc_seconds = row["seconds"]["monte_carlo"]
                console.print(
                    f"  {dtype_name} k={k} n={width}: MC {giga(row['rates']['monte_carlo'])} "
                    f"GMAC/s ({row['num_networks']} networks, {mc_seconds:.2f} s)"
                )
    sde = measure_sde(args)

    table = Table(
        title=f"Monte Carlo at initialisation: MLP with {args.depth + 1} n x n layers, "
        f"{torch.get_num_threads()} thread(s); rates in GMAC/s (1e9 multiply-adds per second) "
        f"and G numbers/s"
    )
    columns = (
        "dtype", "k", "n", "M", "MC", "bmm", "mm", "MC/bmm", "MC/mm", "fwd only", "rng 1 thr",
        "rng thr", "MC/(k·rng)", "rng share", "chain",
    )  # fmt: skip
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        rates = row["rates"]
        table.add_row(
            row["dtype"], str(row["k"]), str(row["width"]), str(row["num_networks"]),
            giga(rates["monte_carlo"]), giga(rates["bmm"]), giga(rates["mm"]),
            f"{row['mc_over_bmm']:.2f}", f"{row['mc_over_mm']:.2f}", giga(rates["forward"]),
            giga(rates["rng_1"]), giga(rates["rng_threads"]),
            f"{row['mc_over_k_rng']:.2f}", f"{row['rng_share']:.2f}", giga(rates["chain"]),
        )  # fmt: skip
    console.print(table)
    if sde is not None:
        console.print(
            f"correlation SDE: {sde['paths']} paths x {sde['steps']} steps in "
            f"{sde['seconds']:.2f} s = {sde['rate'] / 1e6:.1f} M path-steps/s"
        )

    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "threads": torch.get_num_threads(),
        "depth": args.depth,
        "repeats": args.repeats,
        "rows": rows,
        "sde": sde,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
