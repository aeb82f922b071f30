"""Bit-packed binary GEMM and packed BiViT inference against float32 on the CPU.

Part 1, the GEMM: ``sign(A) @ sign(B)ᵀ`` for ``A (M, K)``, ``B (N, K)`` at ``M x K x N`` =
1024³ and 4096³ (``--sizes``), as `perceptrons.binary.binary_matmul` on pre-packed operands
(``(M, K/64)`` and ``(N, K/64)`` int64 words; exact int32 result) with the ``numba`` backend
(blocked XNOR-popcount kernel) and the ``numpy`` one (``np.bitwise_count``, single-threaded),
against ``torch.matmul`` of float32 ``(M, K) x (K, N)``; each with 1 thread and with all
threads (``--threads``; torch's and numba's thread counts are both set). Times are the median of
``--repeats`` calls after one warm-up call (the numba kernels are compiled before, and that
one-off compile time is reported). Also reported: the time to pack ``A`` (`pack_signs`), which
a W1A1 layer pays for its input on every call. Goal: the packed numba GEMM at least 2x faster
than float32 at both sizes.

Part 2, BiViT inference (``create_model("bivit", ...)``, every block binarised): the median
latency of one forward at batch 1 and 64 (``--batches``) of the full-precision model (the same
weights with ``set_binarized(False)``), of the float binary model (binarisation simulated in
float32, what training runs) and of `perceptrons.binary.to_packed` of it (numba and numpy
backends), under ``torch.no_grad()``, for the registry's default model (8x8 digits, e = 64,
17 tokens) and a ViT-S-like one (32x32x3, patch 4, e = 384, 6 heads, 65 tokens, depth 4).
Also recorded per variant: the largest difference of its logits from the float binary model's
(relative to their largest magnitude) and the share of equal argmax predictions (a packed
layer matches its float layer to ~1e-6, but one sign flipped by float rounding changes all
that follows it; see `perceptrons.binary.modules`).

    nice .venv/bin/python benchmarks/binary.py                   # ~2 min on 2 busy cores
    nice .venv/bin/python benchmarks/binary.py --sizes 1024 --repeats 3 --no-model   # quick
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from perceptrons.binary import (
    binary_matmul,
    numba_available,
    pack_signs,
    to_packed,
    unpack_signs,
    warm_up,
)
from perceptrons.io import save_json
from perceptrons.registry import create_model

MODELS = {
    "bivit default (8x8x1, e=64, 17 tokens)": {},
    "bivit ViT-S-like (32x32x3, e=384, 65 tokens)": {
        "image_size": 32,
        "in_channels": 3,
        "patch_size": 4,
        "embed_dim": 384,
        "num_heads": 6,
        "depth": 4,
    },
}


def set_threads(threads: int) -> None:
    """torch's and (when installed) numba's thread count."""
    torch.set_num_threads(threads)
    if numba_available():
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def median_seconds(fn, repeats: int) -> tuple[float, list[float]]:
    """Median of ``repeats`` timed calls of ``fn`` after one untimed one."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def gemm_runs(size: int, thread_counts: list[int], repeats: int, backends: list[str]) -> list:
    """Float32 matmul and packed GEMMs at ``size``³ for every thread count."""
    g = torch.Generator().manual_seed(size)
    a, b = torch.randn(size, size, generator=g), torch.randn(size, size, generator=g)
    a_packed, b_packed = pack_signs(a), pack_signs(b)
    b_t = b.T.contiguous()  # (K, N): the float operand in its natural layout
    # exactness check on a slice (the full float reference would cost as much as the timing)
    rows = min(size, 64)
    expected = (unpack_signs(a_packed[:rows], size) @ unpack_signs(b_packed, size).T).to(
        torch.int32
    )
    runs = []
    for threads in thread_counts:
        set_threads(threads)
        seconds, times = median_seconds(lambda: torch.matmul(a, b_t), repeats)
        runs.append(_run(size, "torch float32", threads, seconds, times))
        pack_seconds, _ = median_seconds(lambda: pack_signs(a), repeats)
        for backend in backends:
            if backend == "numpy" and threads != thread_counts[0]:
                continue  # single-threaded: measured once
            got = binary_matmul(a_packed[:rows], b_packed, size, backend=backend)
            if not torch.equal(got, expected):
                raise AssertionError(f"{backend}: packed GEMM differs from the float reference")
            seconds, times = median_seconds(
                lambda backend=backend, threads=threads: binary_matmul(
                    a_packed, b_packed, size, backend=backend, threads=threads
                ),
                repeats,
            )
            run = _run(
                size, f"packed {backend}", threads if backend == "numba" else 1, seconds, times
            )
            run["pack_a_seconds"] = pack_seconds
            runs.append(run)
    return runs


def _run(size: int, kind: str, threads: int, seconds: float, times: list[float]) -> dict:
    return {
        "size": size,
        "kind": kind,
        "threads": threads,
        "median_seconds": seconds,
        "seconds": times,
        "gops": 2 * size**3 / seconds / 1e9,
    }


def model_runs(
    thread_counts: list[int], batches: list[int], repeats: int, backends: list[str]
) -> list:
    """Latency of one forward of each BiViT variant and batch size."""
    runs = []
    for name, overrides in MODELS.items():
        model = create_model("bivit", seed=0, **overrides).eval()
        full = create_model("bivit", seed=0, **overrides).eval()
        full.set_binarized(attention=False, mlp=False)
        variants = {"full precision": full, "float binary": model}
        for backend in backends:
            variants[f"packed {backend}"] = to_packed(model, backend=backend)
        for batch in batches:
            x = model.example_input(batch, generator=torch.Generator().manual_seed(batch))
            with torch.no_grad():
                reference = model(x)
                for variant, module in variants.items():
                    error = agree = None  # only the packed variants compute the same function
                    if variant.startswith("packed"):
                        out = module(x)
                        error = float((out - reference).abs().max() / reference.abs().max())
                        agree = float((out.argmax(-1) == reference.argmax(-1)).float().mean())
                    for threads in thread_counts:
                        set_threads(threads)
                        seconds, times = median_seconds(lambda m=module, x=x: m(x), repeats)
                        runs.append(
                            {
                                "model": name,
                                "variant": variant,
                                "batch": batch,
                                "threads": threads,
                                "median_seconds": seconds,
                                "seconds": times,
                                "max_rel_error_vs_float_binary": error,
                                "argmax_agreement_vs_float_binary": agree,
                            }
                        )
    return runs


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096], help="M = K = N")
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[1, os.cpu_count() or 1], help="thread counts"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per measurement")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--no-model", action="store_true", help="skip the BiViT latencies")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/binary.json"))
    args = parser.parse_args(argv)
    thread_counts = sorted(set(args.threads))
    console = Console(width=140)
    backends = (["numba"] if numba_available() else []) + ["numpy"]
    compile_seconds = None
    if numba_available():
        start = time.perf_counter()
        warm_up("numba")
        compile_seconds = time.perf_counter() - start
        console.print(f"numba kernels compiled in {compile_seconds:.1f} s (once per process)")
    else:
        console.print(
            "numba is not installed: numpy backend only (pip install 'perceptrons[fast]')"
        )
    wall = time.perf_counter()

    gemm = [
        run for size in args.sizes for run in gemm_runs(size, thread_counts, args.repeats, backends)
    ]
    baseline = {
        (r["size"], r["threads"]): r["median_seconds"] for r in gemm if r["kind"] == "torch float32"
    }
    table = Table(title="sign(A) @ sign(B)^T, M = K = N: packed (exact int32) vs torch float32")
    for column in (
        "M x K x N",
        "kernel",
        "threads",
        "ms (median)",
        "G(bit-)op/s",
        "speed-up vs float32",
        "pack A ms",
    ):
        table.add_column(column, justify="left" if column == "kernel" else "right")
    speedups = {}
    for r in gemm:
        base = baseline[(r["size"], r["threads"])]
        r["speedup_vs_float32"] = base / r["median_seconds"]
        if r["kind"] == "packed numba":
            speedups[f"{r['size']}^3, {r['threads']} thread(s)"] = r["speedup_vs_float32"]
        table.add_row(
            f"{r['size']}³",
            r["kind"],
            str(r["threads"]),
            f"{r['median_seconds'] * 1e3:,.1f}",
            f"{r['gops']:,.0f}",
            f"{r['speedup_vs_float32']:.2f}x",
            f"{r['pack_a_seconds'] * 1e3:.1f}" if "pack_a_seconds" in r else "",
        )
    console.print(table)
    goal = bool(speedups) and all(s >= 2 for s in speedups.values())
    console.print(
        f"goal: packed numba >= 2x float32 at every size and thread count: "
        f"{'MET' if goal else 'MISSED'} {speedups}"
    )

    models = (
        [] if args.no_model else model_runs(thread_counts, args.batches, args.repeats, backends)
    )
    if models:
        table = Table(title="BiViT forward latency (torch.no_grad), median ms")
        columns = (
            "model",
            "variant",
            "batch",
            "threads",
            "ms",
            "vs full precision",
            "max rel. diff vs float binary",
            "same argmax",
        )
        for column in columns:
            table.add_column(column, justify="left" if column in ("model", "variant") else "right")
        full = {
            (r["model"], r["batch"], r["threads"]): r["median_seconds"]
            for r in models
            if r["variant"] == "full precision"
        }
        for r in models:
            r["speedup_vs_full_precision"] = (
                full[(r["model"], r["batch"], r["threads"])] / r["median_seconds"]
            )
            table.add_row(
                r["model"],
                r["variant"],
                str(r["batch"]),
                str(r["threads"]),
                f"{r['median_seconds'] * 1e3:,.2f}",
                f"{r['speedup_vs_full_precision']:.2f}x",
                _format(r["max_rel_error_vs_float_binary"], "{:.1e}"),
                _format(r["argmax_agreement_vs_float_binary"], "{:.0%}"),
            )
        console.print(table)
    console.print(
        f"{time.perf_counter() - wall:.0f} s in all; load average "
        f"{os.getloadavg() if hasattr(os, 'getloadavg') else 'n/a'}"
    )

    numba_version = None
    if numba_available():
        import numba

        numba_version = numba.__version__
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "numba": numba_version,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "numba_compile_seconds": compile_seconds,
        "gemm": gemm,
        "goal_numba_2x_float32": goal,
        "numba_speedups": speedups,
        "models": models,
    }
    save_json(args.out, result)
    console.print(f"wrote {args.out}")
    return result


def _format(value: float | None, spec: str) -> str:
    return "" if value is None else spec.format(value)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
