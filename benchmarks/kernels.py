"""Wall time and peak memory of the infinite-width NNGP + NTK of a deep ReLU MLP.

The network is ``serial(Dense(1.4, 0.1), ReLU(), ...)`` with ``--depth`` hidden layers and a
final ``Dense(1.0)``, NTK parameterisation, float64, on N Gaussian inputs of dimension 64; the
kernels are ``net.kernel(x)`` (N x N NNGP and NTK). Each case runs in a fresh subprocess, whose
peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``, which sees torch's
allocations, unlike tracemalloc) is reported along with the size of the two output matrices.

    python benchmarks/kernels.py                       # N = 2000 and 10000
    python benchmarks/kernels.py --sizes 20000         # ~30 min and ~20 GiB RSS on 2 cores
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results" / "kernels.json"


def run_case(n: int, depth: int, block_size: int, seed: int) -> dict:
    """Compute the NNGP and NTK once in this process; time, peak RSS and a checksum."""
    from perceptrons.theory.kernels import Dense, ReLU, serial

    layers = []
    for _ in range(depth):
        layers += [Dense(1.4, 0.1), ReLU()]
    net = serial(*layers, Dense(1.0))
    x = torch.randn(n, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    start = time.perf_counter()
    k = net.kernel(x, block_size=block_size)
    seconds = time.perf_counter() - start
    return {
        "n": n,
        "depth": depth,
        "block_size": block_size,
        "seconds": seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "output_mib": 2 * n * n * 8 / 2**20,
        "nngp_mean_diag": float(k.nngp.diagonal().mean()),
        "ntk_mean_diag": float(k.ntk.diagonal().mean()),
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--block-size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--case", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case is not None:
        print(json.dumps(run_case(args.case, args.depth, args.block_size, args.seed)))
        return
    rows = []
    for n in args.sizes:
        cmd = [sys.executable, __file__, "--case", str(n), "--depth", str(args.depth)]
        cmd += ["--block-size", str(args.block_size), "--seed", str(args.seed)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        r = rows[-1]
        print(
            f"N={r['n']:>6}  depth={r['depth']}  block={r['block_size']}  "
            f"time={r['seconds']:8.2f} s  peak RSS={r['peak_rss_mib']:9.1f} MiB  "
            f"outputs={r['output_mib']:9.1f} MiB",
            flush=True,
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    meta = {"python": platform.python_version(), "torch": torch.__version__}
    RESULTS.write_text(json.dumps({"meta": meta, "cases": rows}, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
