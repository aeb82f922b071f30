"""Time and memory of one attention layer vs sequence length: AMLP against softmax and linear.

The protocol of the AMLP/CAB efficiency benchmark (``docs/amlp.md``), on the CPU: one
self-attention layer (in- and output projections included), d_model 512, 8 heads, batch 4,
float32, c = 16 landmarks, lengths 256 ... 8192, for each kind of
`perceptrons.layers.ATTENTION_KINDS`:

* ``softmax``: ``F.scaled_dot_product_attention`` (PyTorch's fused CPU kernel);
* ``naive``: softmax attention with the ``(b, h, n, n)`` scores materialised (the paper's
  "vanilla");
* ``linear``: elu+1 linear attention; ``amlp-pquery``, ``amlp-cov``: `AttentiveMLP`.

Each (kind, length) runs in a fresh subprocess with ``--threads`` torch threads. Measured:

* ``forward``: one call under ``torch.no_grad()`` (inference);
* ``train``: forward + ``backward`` of ``(out * g).sum()`` with the input requiring grad;
* times: the median of up to ``--repeats`` calls after one warm-up call each; a measurement
  stops early once its calls have used ``--budget`` seconds (at least one timed call), and a
  warm-up call longer than ``--budget`` is itself the measurement (``*_calls`` = 0);
* ``peak_mib``: the growth of the process's peak resident set size
  (``resource.getrusage(RUSAGE_SELF).ru_maxrss``, which sees torch's allocations) over the
  inputs and parameters, during the warm-up calls: forward first, then training, so it is the
  peak of a training step (a training step allocates at least what a forward does);
* ``saved_mib``: the bytes autograd saves for backward (`perceptrons.layers.saved_tensor_bytes`),
  deterministic, the activation memory a layer holds in a network.

Cases whose estimated peak exceeds ``--max-gib`` are recorded as skipped (naive attention at
n = 8192 needs about 4 x 4 GiB score-sized buffers per training step).

Crossover lengths, for every kind against ``naive`` and against ``softmax``, for each metric: the
length above which the kind is cheaper, (1) by log-log linear interpolation of the ratio between
the two measured lengths where it changes sign for the last time ("interp"; "<= 256" when it is
cheaper at every measured length, "> 8192" when never), and (2) the "efficiency length" fit of
the CAB benchmark (Zhang et al. 2023, arXiv:2210.07661; "fit", vs naive only): a quadratic
least-squares fit to naive and a straight line to the kind, intersected
("all n" when the fitted naive curve is above the line everywhere). The fit is dominated by the
longest lengths and moves a lot with timing noise; "interp" is the one to quote.

    .venv/bin/python benchmarks/attention.py                      # full run, ~10 min on 2 cores
    .venv/bin/python benchmarks/attention.py --lengths 256 512 1024 --repeats 3   # quick
    .venv/bin/python benchmarks/attention.py --kinds naive amlp-pquery --max-gib 4
    .venv/bin/python benchmarks/attention.py --report benchmarks/results/attention.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).parent / "results" / "attention.json"
KINDS = ("softmax", "naive", "linear", "amlp-pquery", "amlp-cov")
METRICS = ("forward_ms", "train_ms", "peak_mib", "saved_mib")
MIB = 2**20


def estimate_gib(kind: str, n: int, batch: int, embed_dim: int, heads: int) -> float:
    """Rough peak of one training step: score-sized buffers for naive, activations otherwise."""
    linear = 24 * batch * n * embed_dim * 4  # inputs, projections, grads, outputs (float32)
    quadratic = 4.5 * batch * heads * n * n * 4 if kind == "naive" else 0  # measured: ~4.4
    return (linear + quadratic) / 2**30


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _timed(fn, repeats: int, budget: float) -> tuple[float, list[float]]:
    """Warm-up call, then up to ``repeats`` timed calls within ``budget`` seconds.

    A warm-up call longer than ``budget`` is the only measurement (its one-off costs are
    negligible at that size), so the longest cases run once.
    """
    start = time.perf_counter()
    fn()
    warm = time.perf_counter() - start
    if warm > budget:
        return warm, []
    times: list[float] = []
    spent = 0.0
    while len(times) < repeats and (not times or spent + statistics.median(times) <= budget):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        spent += times[-1]
    return warm, times


def run_case(args: argparse.Namespace, kind: str, n: int) -> dict:
    """Measure one (kind, length) in this process."""
    from perceptrons.layers import largest_saved_tensor_numel, make_attention, saved_tensor_bytes

    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(args.seed)
    mod = make_attention(
        kind, args.embed_dim, args.heads, num_landmarks=args.landmarks, generator=gen
    )
    x = torch.randn(args.batch, n, args.embed_dim, generator=gen).requires_grad_()
    g = torch.randn(args.batch, n, args.embed_dim, generator=gen)

    def forward() -> None:
        with torch.no_grad():
            mod(x, x, x)

    def train() -> None:
        mod.zero_grad(set_to_none=True)
        x.grad = None
        out, _ = mod(x, x, x)
        (out * g).sum().backward()

    base = _maxrss_mib()
    fwd_warm, fwd_times = _timed(forward, args.repeats, args.budget)
    train_warm, train_times = _timed(train, args.repeats, args.budget)
    peak = _maxrss_mib() - base
    calls = {"forward_calls": len(fwd_times), "train_calls": len(train_times)}
    fwd_times, train_times = fwd_times or [fwd_warm], train_times or [train_warm]
    saved = saved_tensor_bytes(mod, x, x, x) / MIB
    largest = largest_saved_tensor_numel(mod, x, x, x)
    return {
        "kind": kind,
        "n": n,
        "forward_ms": 1e3 * statistics.median(fwd_times),
        "train_ms": 1e3 * statistics.median(train_times),
        "forward_min_ms": 1e3 * min(fwd_times),
        "train_min_ms": 1e3 * min(train_times),
        "forward_warmup_ms": 1e3 * fwd_warm,
        "train_warmup_ms": 1e3 * train_warm,
        **calls,
        "peak_mib": peak,
        "saved_mib": saved,
        "largest_saved_numel": largest,
        "threads": torch.get_num_threads(),
    }


# --------------------------------------------------------------------------- crossovers


def crossover_interp(ns: list[int], ours: list[float], theirs: list[float]) -> dict:
    """Length above which ``ours < theirs``, by log-log interpolation of the ratio.

    Returns ``{"value": n or None, "bound": "<= n0" | "> n_max" | None}``.
    """
    logr = [math.log(a / b) for a, b in zip(ours, theirs, strict=True)]
    if all(r < 0 for r in logr):
        return {"value": None, "bound": f"<= {ns[0]}"}
    if logr[-1] >= 0:
        return {"value": None, "bound": f"> {ns[-1]}"}
    i = max(j for j, r in enumerate(logr) if r >= 0)  # last length where we are not cheaper
    x0, x1 = math.log(ns[i]), math.log(ns[i + 1])
    t = logr[i] / (logr[i] - logr[i + 1])
    return {"value": round(math.exp(x0 + t * (x1 - x0))), "bound": None}


def crossover_fit(ns: list[int], ours: list[float], naive: list[float]) -> float | str | None:
    """CAB's protocol (arXiv:2210.07661): quadratic fit to naive, line to ours, intersected.

    Returns the largest positive intersection, ``"all n"`` when the fitted naive curve lies
    above our line at every positive length, or None (fewer than 3 lengths, or never above).
    """
    if len(ns) < 3:
        return None
    x = np.asarray(ns, dtype=float)
    quad = np.polyfit(x, np.asarray(naive), 2)
    line = np.polyfit(x, np.asarray(ours), 1)
    diff = quad - np.concatenate([[0.0], line])  # naive - ours, a quadratic in n
    real = [float(r.real) for r in np.roots(diff) if abs(r.imag) < 1e-9 and r.real > 0]
    above_at_end = np.polyval(diff, 2 * x[-1]) > 0
    if not real:
        return "all n" if above_at_end else None
    return round(max(real)) if above_at_end else None


def crossovers(rows: list[dict], kinds: list[str]) -> list[dict]:
    table = {(r["kind"], r["n"]): r for r in rows if "skipped" not in r}
    out = []
    for baseline in ("naive", "softmax"):
        for kind in kinds:
            if kind == baseline or baseline not in kinds:
                continue
            ns = sorted(n for (k, n) in table if k == kind and (baseline, n) in table)
            if len(ns) < 2:
                continue
            for metric in METRICS:
                ours = [table[kind, n][metric] for n in ns]
                theirs = [table[baseline, n][metric] for n in ns]
                if min(ours + theirs) <= 0:
                    continue  # e.g. a peak-RSS growth of 0 at short lengths
                entry = {"kind": kind, "baseline": baseline, "metric": metric, "lengths": ns}
                entry["interp"] = crossover_interp(ns, ours, theirs)
                if baseline == "naive":
                    entry["fit"] = crossover_fit(ns, ours, theirs)
                out.append(entry)
    return out


# --------------------------------------------------------------------------- report


def markdown(rows: list[dict], kinds: list[str], lengths: list[int]) -> str:
    table = {(r["kind"], r["n"]): r for r in rows}
    titles = {
        "forward_ms": "forward (no grad), ms",
        "train_ms": "forward + backward, ms",
        "peak_mib": "peak RSS growth of a training step, MiB",
        "saved_mib": "saved for backward, MiB",
    }
    parts = []
    for metric in METRICS:
        head = f"| n | {' | '.join(kinds)} |\n|---:|" + "---:|" * len(kinds)
        lines = [f"**{titles[metric]}**\n", head]
        for n in lengths:
            cells = []
            for kind in kinds:
                r = table.get((kind, n))
                if r is None:
                    cells.append("")
                elif "skipped" in r:
                    cells.append("skipped")
                else:
                    v = r[metric]
                    cells.append(f"{v:,.0f}" if v >= 100 else f"{v:.3g}")
            lines.append(f"| {n} | {' | '.join(cells)} |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def crossover_text(entries: list[dict]) -> str:
    lines = ["| kind | vs | metric | interp | fit |", "|---|---|---|---:|---:|"]
    for e in entries:
        c = e["interp"]
        interp = str(c["value"]) if c["value"] is not None else c["bound"]
        fit = e.get("fit", "")
        lines.append(
            f"| {e['kind']} | {e['baseline']} | {e['metric']} | {interp} | "
            f"{'' if fit is None else fit} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[256 * 2**i for i in range(6)])
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--embed-dim", type=int, default=512)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--landmarks", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per measurement")
    parser.add_argument(
        "--budget", type=float, default=15.0, help="seconds of timed calls per measurement"
    )
    parser.add_argument(
        "--threads", type=int, default=torch.get_num_threads(), help="torch threads per case"
    )
    parser.add_argument("--max-gib", type=float, default=10.0, help="skip larger estimates")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    parser.add_argument(
        "--report", type=Path, help="print the tables and crossovers of a results file; no runs"
    )
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.report is not None:
        saved = json.loads(args.report.read_text())
        kinds, lengths = saved["meta"]["kinds"], saved["meta"]["lengths"]
        print(markdown(saved["rows"], kinds, lengths))
        print()
        print(crossover_text(crossovers(saved["rows"], kinds)))
        return
    if args.case is not None:
        kind, n = args.case.split(":")
        print(json.dumps(run_case(args, kind, int(n))))
        return

    rows = []
    started = time.perf_counter()
    load_start = os.getloadavg()
    passthrough = ["--batch", "--embed-dim", "--heads", "--landmarks", "--repeats", "--budget"]
    passthrough += ["--threads", "--seed"]
    for n in args.lengths:
        for kind in args.kinds:
            gib = estimate_gib(kind, n, args.batch, args.embed_dim, args.heads)
            if gib > args.max_gib:
                rows.append({"kind": kind, "n": n, "skipped": f"estimated {gib:.1f} GiB"})
                print(f"{kind:>12} n={n:>5}  skipped (estimated {gib:.1f} GiB)", flush=True)
                continue
            cmd = [sys.executable, __file__, "--case", f"{kind}:{n}"]
            for flag in passthrough:
                cmd += [flag, str(getattr(args, flag[2:].replace("-", "_")))]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
                rows.append({"kind": kind, "n": n, "skipped": f"failed: {tail}"})
                print(f"{kind:>12} n={n:>5}  failed: {tail}", flush=True)
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(r)
            print(
                f"{kind:>12} n={n:>5}  forward {r['forward_ms']:10.1f} ms  "
                f"train {r['train_ms']:10.1f} ms  peak {r['peak_mib']:8.1f} MiB  "
                f"saved {r['saved_mib']:8.1f} MiB",
                flush=True,
            )
    cross = crossovers(rows, args.kinds)
    print()
    print(markdown(rows, args.kinds, args.lengths))
    print()
    print(crossover_text(cross))
    meta = {
        "command": " ".join(sys.argv),
        "load_average_start": load_start,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "load_average_end": os.getloadavg(),
        "seconds": time.perf_counter() - started,
        **{k: v for k, v in vars(args).items() if k not in ("out", "case")},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": rows, "crossovers": cross}, indent=1))
    print(f"\nwrote {args.out} in {meta['seconds']:.0f} s")


if __name__ == "__main__":
    main()
