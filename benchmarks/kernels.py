"""Wall time and peak memory of the infinite-width NNGP + NTK of a deep ReLU MLP.

The network is ``serial(Dense(1.4, 0.1), ReLU(), ...)`` with ``--depth`` hidden layers and a
final ``Dense(1.0)``, NTK parameterisation, float64, on N Gaussian inputs of dimension 64; the
kernels are ``net.kernel(x)`` (N x N NNGP and NTK). Each case runs in a fresh subprocess, whose
peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``, which sees torch's
allocations, unlike tracemalloc) is reported along with the size of the two output matrices.

    python benchmarks/kernels.py                       # N = 2000 and 10000
    python benchmarks/kernels.py --sizes 20000         # peak RSS ~ the two outputs (6.4 GiB)
    python benchmarks/kernels.py --sizes 1000 2000 --neural-tangents /tmp/ntvenv/bin/python

``--neural-tangents PYTHON`` also runs the same network through neural-tangents
(``stax.serial(Dense(512, 1.4, 0.1), Relu(), ..., Dense(1, 1.0))``, float64, jitted) with that
interpreter (a throwaway environment; see `benchmarks/neural_tangents_side.py` for how to make
one), one subprocess per size, right after ours, and prints the ratio of their times. Its
``seconds`` is its second call (compilation excluded); ours is the fastest of ``--repeats``
calls (2 by default); both first calls are reported too.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).parent / "results" / "kernels.json"


def run_case(n: int, depth: int, block_size: int, seed: int, repeats: int) -> dict:
    """Compute the NNGP and NTK ``repeats`` times in this process; times, peak RSS, checksums."""
    from perceptrons.theory.kernels import Dense, ReLU, serial

    layers = []
    for _ in range(depth):
        layers += [Dense(1.4, 0.1), ReLU()]
    net = serial(*layers, Dense(1.0))
    # numpy's generator, so the neural-tangents side draws the very same inputs
    x = torch.from_numpy(np.random.default_rng(seed).standard_normal((n, 64)))
    seconds = []
    for _ in range(repeats):
        k = None  # free the previous outputs first: peak memory is one set of outputs
        start = time.perf_counter()
        k = net.kernel(x, block_size=block_size)
        seconds.append(time.perf_counter() - start)
    return {
        "n": n,
        "depth": depth,
        "block_size": block_size,
        "first_call_seconds": seconds[0],
        "seconds": min(seconds),
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
    parser.add_argument(
        "--repeats", type=int, default=2, help="calls per size; the fastest is reported"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    parser.add_argument("--neural-tangents", metavar="PYTHON", help="interpreter with nt")
    parser.add_argument("--case", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case is not None:
        print(json.dumps(run_case(args.case, args.depth, args.block_size, args.seed, args.repeats)))
        return
    rows, nt_rows = [], []
    side = Path(__file__).with_name("neural_tangents_side.py")
    for n in args.sizes:
        cmd = [sys.executable, __file__, "--case", str(n), "--depth", str(args.depth)]
        cmd += ["--block-size", str(args.block_size), "--seed", str(args.seed)]
        cmd += ["--repeats", str(args.repeats)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        r = rows[-1]
        print(
            f"perceptrons      N={r['n']:>6}  depth={r['depth']}  block={r['block_size']}  "
            f"time={r['seconds']:8.2f} s (first call {r['first_call_seconds']:.2f} s)  "
            f"peak RSS={r['peak_rss_mib']:9.1f} MiB  "
            f"outputs={r['output_mib']:9.1f} MiB",
            flush=True,
        )
        if args.neural_tangents:
            cmd = [args.neural_tangents, str(side), "time", "--n", str(n)]
            cmd += ["--depth", str(args.depth), "--seed", str(args.seed)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                tail = done.stderr.strip().splitlines()[-1:] or ["(no output)"]
                nt_rows.append({"n": n, "error": tail[0]})
                print(f"neural-tangents  N={n:>6}  failed: {tail[0]}", flush=True)
                continue
            t = json.loads(done.stdout.strip().splitlines()[-1])
            same = math.isclose(t["nngp_mean_diag"], r["nngp_mean_diag"], rel_tol=1e-12)
            t["speedup_of_perceptrons"] = t["seconds"] / r["seconds"]
            t["same_nngp_mean_diag"] = same
            nt_rows.append(t)
            print(
                f"neural-tangents  N={n:>6}  time={t['seconds']:8.2f} s "
                f"(first call {t['first_call_seconds']:.2f} s)  "
                f"peak RSS={t['peak_rss_mib']:9.1f} MiB  -> perceptrons "
                f"{t['speedup_of_perceptrons']:.2f}x faster; same inputs (NNGP diagonal): {same}",
                flush=True,
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"python": platform.python_version(), "torch": torch.__version__}
    result = {"meta": meta, "cases": rows}
    if args.neural_tangents:
        result["neural_tangents"] = nt_rows
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
