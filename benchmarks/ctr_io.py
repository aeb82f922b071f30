"""Throughput of the CTR file readers and encoder on a Criteo-format file.

Generates (once per ``--data`` folder) a Criteo TSV of ``--rows`` rows: a 0/1 label (25%
clicks), 13 integer columns (rounded log-normal counts, 0-50% missing) and 26 categorical
columns of 8-digit hexadecimal ids, each drawn from a truncated Zipf law over ranks (exponent
0.75-1.2, a field's cardinality log-uniform between 4 and 50 million, 0-45% missing), so a
million rows hold millions of distinct raw ids, most of them seen once, as in the real data.
It is written with numpy and ``pyarrow.csv.write_csv``.

Then, in the same run and on the same file (warm page cache, best of ``--repeats``):

* ``pyarrow.csv.read_csv`` of the file with its defaults (type inference): the reference;
* the same with explicit types (strings, floats for I1..I13), what the reader asks pyarrow for;
* ``iter_chunks`` (the reader: RawChunks of ``--chunk-rows`` rows);
* ``fit_encoder`` (read + fit the vocabularies and numeric statistics, default ``min_count``);
* ``iter_encoded`` (read + encode to CTRBatch tensors with the fitted encoder);
* the Python line parser (``python_chunks``, the previous reader) on the first
  ``--python-rows`` rows, for comparison.

    python benchmarks/ctr_io.py                          # 1M rows in a temporary folder
    python benchmarks/ctr_io.py --data /tmp/ctr --rows 300000 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
GOAL_ROWS_PER_SECOND = 300_000  # read + encode
GOAL_RATIO = 2.0  # read + encode time / bare read_csv time


def _hex_ids(values: np.ndarray, missing: np.ndarray) -> Any:
    """uint32 ids as a pyarrow string array of 8 hexadecimal digits (null where missing)."""
    import pyarrow as pa

    n = values.shape[0]
    shifts = np.arange(28, -4, -4, dtype=np.uint32)
    digits = _HEX[(values.astype(np.uint32)[:, None] >> shifts) & np.uint32(0xF)]
    offsets = np.arange(0, 8 * n + 1, 8, dtype=np.int32)
    validity = np.packbits(~missing, bitorder="little")
    return pa.StringArray.from_buffers(
        n,
        pa.py_buffer(offsets),
        pa.py_buffer(digits.tobytes()),
        pa.py_buffer(validity),
        null_count=int(missing.sum()),
    )


def _zipf_ranks(rng: np.random.Generator, n: int, cardinality: int, exponent: float) -> np.ndarray:
    """(n,) ranks in [0, cardinality) with P(rank r) ~ (r + 1)^-exponent (inverse CDF of the
    continuous law, floored)."""
    u = rng.random(n)
    if abs(exponent - 1.0) < 1e-9:
        x = np.exp(u * np.log(cardinality + 1.0))
    else:
        a = 1.0 - exponent
        x = ((cardinality + 1.0) ** a - 1.0) * u + 1.0
        x = x ** (1.0 / a)
    return np.minimum(np.floor(x).astype(np.int64) - 1, cardinality - 1)


def write_criteo(path: Path, rows: int, seed: int = 0) -> dict[str, Any]:
    """Write the synthetic Criteo TSV (see the module docstring); return what was drawn."""
    import pyarrow as pa
    import pyarrow.csv as pv

    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {"label": pa.array((rng.random(rows) < 0.25).astype(np.int8))}
    for i in range(1, 14):
        missing = rng.random(rows) < rng.uniform(0.0, 0.5)
        counts = np.floor(np.expm1(rng.normal(rng.uniform(0, 4), rng.uniform(0.5, 2.5), rows)))
        columns[f"I{i}"] = pa.array(counts.astype(np.int64), mask=missing)
    fields = []
    for j in range(1, 27):
        cardinality = int(np.exp(rng.uniform(np.log(4), np.log(50_000_000))))
        exponent = float(rng.uniform(0.75, 1.2))
        ranks = _zipf_ranks(rng, rows, cardinality, exponent).astype(np.uint64)
        ids = (ranks * np.uint64(2654435761) + np.uint64(97 * j + 1)) & np.uint64(0xFFFFFFFF)
        missing = rng.random(rows) < rng.uniform(0.0, 0.45)
        columns[f"C{j}"] = _hex_ids(ids, missing)
        fields.append({"name": f"C{j}", "cardinality": cardinality, "exponent": exponent})
    table = pa.table(columns)
    tmp = path.with_suffix(".tmp")
    options = pv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
    pv.write_csv(table, tmp, options)
    os.replace(tmp, path)
    import pyarrow.compute as pc

    distinct = sum(len(pc.unique(table.column(f"C{j}"))) - 1 for j in range(1, 27))
    return {"rows": rows, "seed": seed, "distinct_ids": distinct, "fields": fields}


def _timed(run: Callable[[], int], repeats: int) -> tuple[list[float], int]:
    seconds, rows = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        rows = run()
        seconds.append(time.perf_counter() - start)
    return seconds, rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the generated file")
    parser.add_argument("--data", type=Path, default=None, help="folder for the file (reused)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk-rows", type=int, default=65_536)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each step")
    parser.add_argument("--python-rows", type=int, default=100_000, help="0: skip")
    parser.add_argument("--threads", type=int, default=None, help="pyarrow.set_cpu_count")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ctr_io.json"))
    args = parser.parse_args(argv)

    import pyarrow as pa
    import pyarrow.csv as pv

    from perceptrons.ctr import criteo_schema, fit_encoder, iter_chunks, iter_encoded
    from perceptrons.ctr.io.text import python_chunks

    if args.threads:
        pa.set_cpu_count(args.threads)
    console = Console(width=120)
    console.print(
        f"pyarrow {pa.__version__}, {pa.cpu_count()} pyarrow threads, "
        f"{len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()}"
        " usable cores"
    )
    folder = args.data or Path(tempfile.mkdtemp(prefix="ctr_io_"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"criteo_{args.rows}_{args.seed}.txt"
    info_path = path.with_suffix(".json")
    if path.exists() and info_path.exists():
        data_info = json.loads(info_path.read_text())
        console.print(f"reusing {path}")
    else:
        start = time.perf_counter()
        data_info = write_criteo(path, args.rows, args.seed)
        data_info["write_seconds"] = time.perf_counter() - start
        info_path.write_text(json.dumps(data_info, indent=2) + "\n")
        console.print(f"wrote {path} in {data_info['write_seconds']:.1f} s")
    size = path.stat().st_size
    console.print(
        f"{args.rows:,} rows, {size / 1e6:.0f} MB, {data_info['distinct_ids']:,} distinct ids"
    )
    schema = criteo_schema()
    names = ["label", *schema.numeric, *schema.categorical]
    typed = pv.ConvertOptions(
        column_types={n: (pa.float64() if n in schema.numeric else pa.string()) for n in names},
        null_values=[""],
        strings_can_be_null=True,
    )

    def bare() -> int:
        options = pv.ParseOptions(delimiter="\t")
        read = pv.ReadOptions(autogenerate_column_names=True)
        return pv.read_csv(path, read_options=read, parse_options=options).num_rows

    def bare_typed() -> int:
        options = pv.ParseOptions(delimiter="\t", quote_char=False)
        read = pv.ReadOptions(column_names=names)
        return pv.read_csv(
            path, read_options=read, parse_options=options, convert_options=typed
        ).num_rows

    def read() -> int:
        return sum(c.num_rows for c in iter_chunks(path, schema, chunk_rows=args.chunk_rows))

    fitted: dict[str, Any] = {}

    def fit() -> int:
        encoder, stats = fit_encoder(path, schema, chunk_rows=args.chunk_rows)
        fitted["encoder"] = encoder
        return stats.rows

    def encode() -> int:
        encoder = fitted["encoder"]
        return sum(b.num_rows for b in iter_encoded(path, encoder, chunk_rows=args.chunk_rows))

    steps: list[tuple[str, str, Callable[[], int]]] = [
        ("read_csv", "pyarrow.csv.read_csv, defaults (reference)", bare),
        ("read_csv_typed", "pyarrow.csv.read_csv, explicit types", bare_typed),
        ("read", "iter_chunks", read),
        ("fit", "fit_encoder (read + fit)", fit),
        ("encode", "iter_encoded (read + encode)", encode),
    ]
    results: dict[str, dict[str, Any]] = {}
    for key, _, run in steps:
        seconds, rows = _timed(run, args.repeats)
        results[key] = {
            "seconds": seconds,
            "min_seconds": min(seconds),
            "median_seconds": statistics.median(seconds),
            "rows": rows,
            "rows_per_second": rows / min(seconds),
        }
    if args.python_rows:
        head = folder / f"criteo_{args.rows}_{args.seed}_head{args.python_rows}.txt"
        if not head.exists():
            with open(path, "rb") as src, open(head, "wb") as dst:
                for _, line in zip(range(args.python_rows), src, strict=False):
                    dst.write(line)

        def python() -> int:
            from perceptrons.ctr import ReadStats

            chunks = python_chunks(head, schema, args.chunk_rows, False, True, ReadStats())
            return sum(c.num_rows for c in chunks)

        seconds, rows = _timed(python, 1)
        results["python_read"] = {
            "seconds": seconds,
            "min_seconds": min(seconds),
            "median_seconds": statistics.median(seconds),
            "rows": rows,
            "rows_per_second": rows / min(seconds),
        }
        steps.append(("python_read", f"Python line parser ({rows:,} rows)", python))

    reference = results["read_csv"]["min_seconds"] / results["read_csv"]["rows"]
    table = Table(
        title=f"CTR file I/O: {args.rows:,}-row Criteo file ({size / 1e6:.0f} MB), "
        f"chunks of {args.chunk_rows:,} rows, best of {args.repeats}"
    )
    for column in ("step", "seconds (min)", "median", "rows / s", "time / read_csv"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for key, label, _ in steps:
        r = results[key]
        table.add_row(
            label,
            f"{r['min_seconds']:.3f}",
            f"{r['median_seconds']:.3f}",
            f"{r['rows_per_second']:,.0f}",
            f"{r['min_seconds'] / r['rows'] / reference:.2f}",
        )
    console.print(table)
    encode_rate = results["encode"]["rows_per_second"]
    ratio = results["encode"]["min_seconds"] / results["read_csv"]["min_seconds"]
    verdict = "OK" if encode_rate >= GOAL_ROWS_PER_SECOND and ratio <= GOAL_RATIO else "MISSED"
    console.print(
        f"read + encode: {encode_rate:,.0f} rows/s, {ratio:.2f}x the time of read_csv "
        f"(goal >= {GOAL_ROWS_PER_SECOND:,} rows/s and <= {GOAL_RATIO}x): {verdict}"
    )
    encoder = fitted["encoder"]
    cards = encoder.feature_spec.categorical_cardinalities
    console.print(
        f"encoder: min_count {encoder.config.min_count}, {sum(cards):,} embedding rows over "
        f"{len(cards)} fields (min_count 1 would keep every distinct id)"
    )
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "python": platform.python_version(),
        "pyarrow": pa.__version__,
        "numpy": np.__version__,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "pyarrow_threads": pa.cpu_count(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "file": {"path": str(path), "bytes": size, **data_info},
        "chunk_rows": args.chunk_rows,
        "repeats": args.repeats,
        "results": results,
        "read_encode_rows_per_second": encode_rate,
        "read_encode_over_read_csv": ratio,
        "goal_met": verdict == "OK",
        "min_count": encoder.config.min_count,
        "embedding_rows": sum(cards),
        "encoder_summary": encoder.summary(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
