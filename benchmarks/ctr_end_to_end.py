"""CTR end to end: one Criteo-format file through ours, FuxiCTR and DeepCTR-Torch.

The same generated file (``--rows`` rows, default 1M) is split by row position into
``train.txt`` (first 80%), ``valid.txt`` (next 10%) and ``test.txt`` (last 10%), each a
Criteo TSV on disk, and every library reads those text files itself, trains DeepFM for one
epoch on the training rows (validating once, after the epoch, on the validation rows), saves
what it needs to predict new rows, and scores the test rows:

* **perceptrons**: the command line, ``perceptrons ctr train --format criteo --model deepfm
  --epochs 1 ...`` then ``perceptrons ctr evaluate``, each in its own process; by default with
  the encoder's defaults, ``--ours-numeric`` adds runs with another numeric encoding
  (``--set encoder.numeric_encoding=log_standardize`` or ``quantile``);
* **FuxiCTR** 2.3 (``benchmarks/ctr_e2e_fuxictr_side.py``): its ``FeatureProcessor`` +
  ``build_dataset`` (polars and Ray, to Parquet) with its Criteo recipe (integers bucketised
  by ``convert_to_bucket`` and embedded as categories, ``min_categr_count``), the model zoo's
  DeepFM, ``RankDataLoader`` + ``model.fit`` + ``model.evaluate``;
* **DeepCTR-Torch** 0.3.0 (``benchmarks/ctr_e2e_deepctr_side.py``): pandas ``read_csv``,
  ``fillna``, one sklearn ``LabelEncoder`` per sparse field and a ``MinMaxScaler`` on the dense
  ones (as its Criteo example does), its DeepFM, ``model.fit`` / ``model.predict`` and sklearn's
  ``roc_auc_score``. Its example keeps every id (no minimum count); ``--deepctr-min-counts``
  runs it once per value (default ``1,10``: as documented, and with ids seen fewer than 10 times
  in the training rows merged into one value).

Same settings everywhere as far as the libraries allow: embedding dim 16, MLP (128, 64), ReLU,
no dropout, no batch norm, no L2, Adam lr 1e-3, batch ``--batch-size`` (4096), one epoch,
shuffled, min count ``--min-count`` (10, FuxiCTR's Criteo value and ours by default), torch on
``--threads`` threads (``OMP_NUM_THREADS`` and ``torch.set_num_threads`` in every process).

**Labels.** ``benchmarks/ctr_io.py``'s ``write_criteo`` draws labels independently of the
features (any AUC would be 0.5), so this script draws the features the same way (its Zipf id
and log-normal count helpers) and the labels from a planted logistic model, seeded: a sum of
per-(field, id) effects (a hash of the id's rank, uniform, a weight per field; a missing value
has its own effect), a weight per standardised ``log1p`` count, and rank-4 pairwise terms
``<u_a(id_a), u_b(id_b)>`` on 8 field pairs (what an FM can represent), scaled to a logit
standard deviation of ``LOGIT_STD`` with the bias set for a 25% click rate. The planted model's
own test AUC (``oracle_auc``) is the ceiling; most Zipf ids are rare, so much of it is out of
reach of any model with a minimum count.

**Timings** (seconds, wall): *read* the file parsing, *encode* fitting vocabularies / scalers
and mapping rows to ids (and whatever the library writes for training), *train* building and
training the model including its one validation pass, *evaluate* scoring the test rows and
their AUC, *other* the rest of the processes' wall time (interpreter start, imports, saving).
Ours streams: *read* is the time the pipeline waits on its file reader (which parses the next
block in a background thread, so part of the parsing overlaps with encoding), summed over the
passes over the three files; FuxiCTR's polars queries read and encode in one lazy pass, so
its *read* is reported inside *encode*. The phases of ours come from timers wrapped around
`perceptrons.ctr.pipeline`'s steps (``fit_encoder``, ``_encode``, ``fit_ctr_model``, ``save``,
``evaluate``, ``load``), the reader and ``CTREncoder.transform``, installed by the child
process before it calls the command line's ``main`` with the same arguments as the
``perceptrons`` script (no package code is changed); the split is also cross-checked against
fit's own ``metrics.jsonl`` and the ``seconds`` the command prints. Peak RSS: ``ru_maxrss`` of
each library's processes (via a small wrapper process, since Linux keeps ``ru_maxrss`` across
fork + exec) and, for multi-process libraries (FuxiCTR runs Ray workers), the sampled sum of
the resident memory of the whole process tree. Model size on disk: what predicting new rows
needs (ours: the model folder; FuxiCTR: the checkpoint + ``feature_processor.pkl`` +
``feature_map.json``; DeepCTR-Torch: its ``state_dict`` + the pickled encoders and scaler).

Side environments (throwaway, never committed; torch stays the local CPU wheel)::

    python3.11 -m venv /tmp/fuxi
    /tmp/fuxi/bin/pip install fuxictr==2.3.10 torch -c constraints.txt
    git clone https://github.com/reczoo/FuxiCTR /tmp/FuxiCTR   # the model zoo's DeepFM
    python3.11 -m venv /tmp/dctr
    /tmp/dctr/bin/pip install deepctr-torch requests pandas -c constraints.txt

(FuxiCTR's wheel does not ship ``model_zoo``; its DeepFM is ``model_zoo/DeepFM/DeepFM_torch/
src/DeepFM.py`` of the repository, imported from there, ``--fuxictr-zoo``.) Run::

    nice .venv/bin/python benchmarks/ctr_end_to_end.py                     # 1M rows
    nice .venv/bin/python benchmarks/ctr_end_to_end.py --ours-numeric \\
        default,log_standardize,standardize                               # + 2 runs of ours
    .venv/bin/python benchmarks/ctr_end_to_end.py --rows 50000 --data /tmp/e2e_small

A library whose interpreter (or model zoo) is missing is skipped with the reason printed. The
table goes to stdout, the JSON to ``--out`` (``benchmarks/results/ctr_end_to_end.json``), each
process's stdout / stderr to ``<data>/runs/<library>/``. The JSON also has each library's CPU
seconds (its waited-for processes: without FuxiCTR's Ray workers).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA_VERSION = 1
SPLIT = (0.8, 0.1, 0.1)  # train, valid, test: by row position
LOGIT_STD = 1.5
CLICK_RATE = 0.25
PAIRS = 8
PAIR_RANK = 4
AUC_TOLERANCE = 0.003
_MiB = 1 << 20


# ---------------------------------------------------------------------- data
def _mix64(x: Any) -> Any:
    """splitmix64's finaliser on a uint64 array (wrapping arithmetic)."""
    import numpy as np

    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _hashed_effect(ranks: Any, salt: int) -> Any:
    """A centred unit-variance uniform value per (rank, salt), the same in every run."""
    import numpy as np

    h = _mix64(ranks.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(salt))
    u = (h >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return (u - 0.5) * np.sqrt(12.0)


def _auc(labels: Any, scores: Any) -> float:
    """Rank AUC (scores are continuous: ties are negligible)."""
    import numpy as np

    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[order] = np.arange(1, len(scores) + 1)
    positives = labels.astype(bool)
    n_pos = int(positives.sum())
    n_neg = len(labels) - n_pos
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def make_data(folder: Path, rows: int, seed: int) -> dict[str, Any]:
    """Write ``train.txt``, ``valid.txt``, ``test.txt`` (Criteo TSV) and ``data.json``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pv

    sys.path.insert(0, str(HERE))
    from ctr_io import _hex_ids, _zipf_ranks

    start = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    logit = np.zeros(rows)
    numeric_weights = []
    for i in range(1, 14):  # as write_criteo: rounded log-normal counts, 0-50% missing
        missing = rng.random(rows) < rng.uniform(0.0, 0.5)
        counts = np.floor(np.expm1(rng.normal(rng.uniform(0, 4), rng.uniform(0.5, 2.5), rows)))
        columns[f"I{i}"] = pa.array(counts.astype(np.int64), mask=missing)
        x = np.log1p(np.maximum(counts, 0.0))
        x = (x - x[~missing].mean()) / (x[~missing].std() + 1e-12)
        weight, when_missing = float(rng.normal(0.0, 0.5)), float(rng.normal(0.0, 0.5))
        logit += np.where(missing, when_missing, weight * x)
        numeric_weights.append(weight)
    ranks, missings, fields = [], [], []
    for j in range(1, 27):  # as write_criteo: Zipf ranks over log-uniform cardinalities
        cardinality = int(np.exp(rng.uniform(np.log(4), np.log(50_000_000))))
        exponent = float(rng.uniform(0.75, 1.2))
        rank = _zipf_ranks(rng, rows, cardinality, exponent).astype(np.uint64)
        ids = (rank * np.uint64(2654435761) + np.uint64(97 * j + 1)) & np.uint64(0xFFFFFFFF)
        missing = rng.random(rows) < rng.uniform(0.0, 0.45)
        columns[f"C{j}"] = _hex_ids(ids, missing)
        scale, when_missing = float(rng.uniform(0.2, 1.0)), float(rng.normal(0.0, 1.0))
        logit += scale * np.where(missing, when_missing, _hashed_effect(rank, j << 32))
        ranks.append(rank)
        missings.append(missing)
        fields.append(
            {"name": f"C{j}", "cardinality": cardinality, "exponent": exponent, "weight": scale}
        )
    pairs = []
    chosen = rng.choice(26 * 25 // 2, size=PAIRS, replace=False)
    all_pairs = [(a, b) for a in range(26) for b in range(a + 1, 26)]
    for p, index in enumerate(chosen):
        a, b = all_pairs[int(index)]
        weight = float(rng.uniform(0.5, 1.0))
        term = np.zeros(rows)
        for d in range(PAIR_RANK):
            salt = (1000 + p) << 40 | d << 32
            term += _hashed_effect(ranks[a], salt | a) * _hashed_effect(ranks[b], salt | b)
        both = ~(missings[a] | missings[b])
        logit += weight * np.where(both, term / np.sqrt(PAIR_RANK), 0.0)
        pairs.append({"fields": [f"C{a + 1}", f"C{b + 1}"], "weight": weight})
    logit *= LOGIT_STD / logit.std()
    lo, hi = -10.0, 10.0  # the bias giving the click rate, by bisection
    for _ in range(60):
        bias = (lo + hi) / 2
        if (1 / (1 + np.exp(-(logit + bias)))).mean() < CLICK_RATE:
            lo = bias
        else:
            hi = bias
    logit += bias
    probability = 1 / (1 + np.exp(-logit))
    labels = (rng.random(rows) < probability).astype(np.int8)
    table = pa.table(
        {
            "label": pa.array(labels),
            **{f"I{i}": columns[f"I{i}"] for i in range(1, 14)},
            **{f"C{j}": columns[f"C{j}"] for j in range(1, 27)},
        }
    )
    bounds = [0, int(rows * SPLIT[0]), int(rows * (SPLIT[0] + SPLIT[1])), rows]
    options = pv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
    files = {}
    for name, lo_row, hi_row in zip(("train", "valid", "test"), bounds, bounds[1:], strict=False):
        path = folder / f"{name}.txt"
        tmp = path.with_suffix(".tmp")
        pv.write_csv(table.slice(lo_row, hi_row - lo_row), tmp, options)
        os.replace(tmp, path)
        files[name] = {"path": str(path), "rows": hi_row - lo_row, "bytes": path.stat().st_size}
    test = slice(bounds[2], rows)
    y, p = labels[test].astype(np.float64), np.clip(probability[test], 1e-12, 1 - 1e-12)
    info = {
        "version": DATA_VERSION,
        "rows": rows,
        "seed": seed,
        "split": {"train": SPLIT[0], "valid": SPLIT[1], "test": SPLIT[2], "by": "row position"},
        "files": files,
        "click_rate": float(labels.mean()),
        "oracle_auc": _auc(labels[test], logit[test]),
        "oracle_logloss": float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()),
        "planted_model": {
            "logit_std": LOGIT_STD,
            "bias": float(bias),
            "numeric_weights": numeric_weights,
            "fields": fields,
            "pairs": pairs,
            "pair_rank": PAIR_RANK,
        },
        "write_seconds": time.perf_counter() - start,
    }
    (folder / "data.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


# ---------------------------------------------------------------------- measuring
def _tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants (from /proc; 0 if unreadable)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    total, todo, page = 0, [root], os.sysconf("SC_PAGE_SIZE")
    while todo:
        pid = todo.pop()
        todo += parents.get(pid, [])
        try:
            with open(f"/proc/{pid}/statm") as handle:
                total += int(handle.read().split()[1]) * page
        except OSError:
            pass
    return total


def _measure_child(out: Path, stdout: Path, stderr: Path, cmd: list[str]) -> None:
    """Run ``cmd`` (the wrapper process: RUSAGE_CHILDREN is then the command's own peak)."""
    peak = [0]
    stop = threading.Event()
    start = time.perf_counter()
    with open(stdout, "w") as out_handle, open(stderr, "w") as err_handle:
        proc = subprocess.Popen(cmd, stdout=out_handle, stderr=err_handle)

        def sample() -> None:
            while not stop.wait(0.25):
                peak[0] = max(peak[0], _tree_rss(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        rc = proc.wait()
        stop.set()
        sampler.join()
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = {
        "rc": rc,
        "wall_seconds": wall,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "peak_tree_rss_mib": peak[0] / _MiB,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,  # waited-for processes only
    }
    out.write_text(json.dumps(result) + "\n")


def _measured(
    name: str, cmd: list[str], folder: Path, env: dict[str, str], timeout: float
) -> dict[str, Any]:
    """Run ``cmd`` under the measuring wrapper; its stdout's last JSON line as ``"output"``."""
    stdout, stderr, usage = (folder / f"{name}.{ext}" for ext in ("stdout", "stderr", "json"))
    wrapper = [sys.executable, str(Path(__file__).resolve()), "--measure", str(usage)]
    wrapper += [str(stdout), str(stderr), "--", *cmd]
    print(f"  $ {' '.join(cmd)}", flush=True)
    try:
        subprocess.run(wrapper, env=env, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s", "stderr": str(stderr)}
    result: dict[str, Any] = json.loads(usage.read_text())
    result["stdout"], result["stderr"] = str(stdout), str(stderr)
    lines = [line for line in stdout.read_text().splitlines() if line.startswith("{")]
    if result["rc"] != 0 or not lines:
        tail = stderr.read_text().strip().splitlines()[-4:]
        result["error"] = f"exit {result['rc']}: " + " | ".join(tail)
        return result
    result["output"] = json.loads(lines[-1])
    return result


# ---------------------------------------------------------------------- ours
def _ours_child(phases: Path, threads: int, argv: list[str]) -> None:
    """Run ``perceptrons`` ``argv`` in this process with timers around the pipeline's steps."""
    import torch

    torch.set_num_threads(threads)
    from perceptrons.cli.main import main as cli_main
    from perceptrons.ctr import pipeline
    from perceptrons.ctr.io import encoding

    clock: dict[str, float] = {}

    def add(key: str, seconds: float) -> None:
        clock[key] = clock.get(key, 0.0) + seconds

    def timed(key: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                add(key, time.perf_counter() - start)

        return run

    reader = encoding.iter_chunks

    def timed_reader(*args: Any, **kwargs: Any) -> Iterator[Any]:
        chunks = reader(*args, **kwargs)

        def waiting() -> Iterator[Any]:
            while True:
                start = time.perf_counter()
                chunk = next(chunks, None)
                add("read", time.perf_counter() - start)
                if chunk is None:
                    return
                yield chunk

        return waiting()

    encoding.iter_chunks = timed_reader  # what fit_encoder and iter_encoded call
    for key in ("fit_encoder", "_encode", "fit_ctr_model", "save", "train", "evaluate", "load"):
        setattr(pipeline, key, timed(key, getattr(pipeline, key)))
    encoding.CTREncoder.transform = timed("transform", encoding.CTREncoder.transform)  # type: ignore[method-assign]
    start = time.perf_counter()
    rc = cli_main(argv)
    clock["main"] = time.perf_counter() - start
    clock["torch_threads"] = torch.get_num_threads()
    phases.write_text(json.dumps(clock) + "\n")
    sys.exit(rc)


NUMERIC = {
    "default": "the CLI's default for Criteo files: quantile (16 training-quantile buckets "
    "embedded as categorical fields, missing its own id)",
    "standardize": "standardize: (x - mean) / std, missing -> 0",
    "log_standardize": "log_standardize: standardize sign(x) log(1 + |x|), missing -> 0",
    "quantile": "quantile: 16 training-quantile buckets embedded as categorical fields, "
    "missing its own id",
}


def run_ours(
    args: argparse.Namespace,
    data: dict[str, Any],
    folder: Path,
    env: dict[str, str],
    numeric: str,
) -> dict[str, Any]:
    files = {k: v["path"] for k, v in data["files"].items()}
    model, run_dir = folder / "model", folder / "run"
    settings = {
        "model": "deepfm",
        "epochs": 1,
        "batch_size": args.batch_size,
        "optimizer": "adam (torch, fused=True: the CLI's default)",
        "lr": args.lr,
        "weight_decay": 0.0,
        "embed_dim": args.embed_dim,
        "hidden": [128, 64],
        "dropout": 0.0,
        "min_count": args.min_count,
        "numeric": NUMERIC[numeric],
        "seed": args.seed,
        "validation": "valid.txt once after the epoch (best weights restored: the only ones)",
    }
    train_argv = ["ctr", "train", "--train", files["train"], "--valid", files["valid"]]
    train_argv += ["--format", "criteo", "--model", "deepfm", "--epochs", "1"]
    train_argv += ["--batch-size", str(args.batch_size), "--lr", str(args.lr)]
    train_argv += ["--min-count", str(args.min_count), "--seed", str(args.seed)]
    train_argv += ["--set", "fit.optimizer.name=adam", "--set", f"model.embed_dim={args.embed_dim}"]
    train_argv += ["--set", "model.hidden_features=128,64", "--set", "model.dropout=0.0"]
    if numeric != "default":
        train_argv += ["--set", f"encoder.numeric_encoding={numeric}"]
    train_argv += ["--run-dir", str(run_dir), "--out", str(model)]
    eval_argv = ["ctr", "evaluate", "--model-dir", str(model), "--data", files["test"]]
    child = [sys.executable, str(Path(__file__).resolve()), "--threads", str(args.threads)]
    variant = "CLI defaults" if numeric == "default" else f"CLI, numeric {numeric}"
    runs = {}
    for name, argv in (("train", train_argv), ("evaluate", eval_argv)):
        phases = folder / f"{name}.phases.json"
        cmd = [*child, "--ours-child", str(phases), "--", *argv]
        runs[name] = _measured(name, cmd, folder, env, args.timeout)
        if "error" in runs[name]:
            return {"library": "perceptrons", "variant": variant, "error": runs[name]["error"]}
        runs[name]["phases"] = json.loads(phases.read_text())
    tr, ev = runs["train"]["phases"], runs["evaluate"]["phases"]
    prep = tr["fit_encoder"] + tr["_encode"]
    read = tr.get("read", 0.0) + ev.get("read", 0.0)
    encode = prep - tr.get("read", 0.0) + ev.get("transform", 0.0)
    train = tr["train"] - prep - tr.get("save", 0.0)
    evaluate = ev["evaluate"] - ev.get("read", 0.0) - ev.get("transform", 0.0) + ev["load"]
    fit_records = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    model_files = {p.name: p.stat().st_size for p in sorted(model.iterdir())}
    metrics = runs["evaluate"]["output"]
    import importlib.metadata as md

    return {
        "library": "perceptrons",
        "variant": variant,
        "version": md.version("perceptrons"),
        "torch": md.version("torch"),
        "commands": ["perceptrons " + " ".join(train_argv), "perceptrons " + " ".join(eval_argv)],
        "settings": settings,
        "read": read,
        "encode": encode,
        "train": train,
        "evaluate": evaluate,
        "wall_seconds": runs["train"]["wall_seconds"] + runs["evaluate"]["wall_seconds"],
        "peak_rss_mib": max(r["peak_rss_mib"] for r in runs.values()),
        "peak_tree_rss_mib": max(r["peak_tree_rss_mib"] for r in runs.values()),
        "cpu_seconds": sum(r["cpu_seconds"] for r in runs.values()),
        "model_bytes": sum(model_files.values()),
        "model_files": model_files,
        "auc": metrics["auc"],
        "logloss": metrics["logloss"],
        "valid_auc": runs["train"]["output"]["auc"],
        "details": {
            "train_command": runs["train"],
            "evaluate_command": runs["evaluate"],
            "cli_train_seconds": runs["train"]["output"]["seconds"],
            "fit_seconds_metrics_jsonl": max(r.get("time", 0.0) for r in fit_records),
            "fit_ctr_model_seconds": tr["fit_ctr_model"],
            "save_seconds": tr.get("save", 0.0),
        },
    }


# ---------------------------------------------------------------------- side libraries
def run_side(
    library: str,
    variant: str,
    python: Path,
    script: str,
    extra: list[str],
    args: argparse.Namespace,
    data: dict[str, Any],
    folder: Path,
    env: dict[str, str],
) -> dict[str, Any]:
    files = {k: v["path"] for k, v in data["files"].items()}
    cmd = [str(python), str(HERE / script), "--train", files["train"], "--valid", files["valid"]]
    cmd += ["--test", files["test"], "--work", str(folder / "work")]
    cmd += ["--batch-size", str(args.batch_size), "--lr", str(args.lr)]
    cmd += ["--embed-dim", str(args.embed_dim), "--threads", str(args.threads)]
    cmd += ["--seed", str(args.seed), *extra]
    run = _measured("side", cmd, folder, env, args.timeout)
    if "error" in run:
        return {"library": library, "variant": variant, "error": run["error"], "run": run}
    out = run.pop("output")
    return {
        "library": library,
        "variant": variant,
        **out,
        "command": " ".join(cmd),
        "wall_seconds": run["wall_seconds"],
        "peak_rss_mib": run["peak_rss_mib"],
        "peak_tree_rss_mib": run["peak_tree_rss_mib"],
        "cpu_seconds": run["cpu_seconds"],
        "details": {**out.get("details", {}), "process": run},
    }


# ---------------------------------------------------------------------- report
def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "(in encode)" if value is None else format(value, spec)


def table(results: list[dict[str, Any]], rows: int) -> str:
    head = (
        "| library | read s | encode s | train s | evaluate s | other s | total s | peak RSS MiB"
        " (tree) | model MiB | test AUC | rows/s |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = []
    for r in results:
        name = r["library"] + (f" ({r['variant']})" if r.get("variant") else "")
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error']} |||||||||| ")
            continue
        lines.append(
            f"| {name} | {_fmt(r['read'])} | {_fmt(r['encode'])} | {r['train']:.1f} "
            f"| {r['evaluate']:.1f} | {r['other']:.1f} | {r['wall_seconds']:.1f} "
            f"| {r['peak_rss_mib']:,.0f} ({r['peak_tree_rss_mib']:,.0f}) "
            f"| {r['model_bytes'] / _MiB:.1f} | {r['auc']:.4f} "
            f"| {rows / r['wall_seconds']:,.0f} |"
        )
    return head + "\n".join(lines)


def goals(ours: dict[str, Any], others: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's three goals for one run of ours against the other libraries' runs."""
    best = max(r["auc"] for r in [ours, *others])
    fastest_other = min(others, key=lambda r: r["wall_seconds"])
    smallest_other = min(others, key=lambda r: r["model_bytes"])
    return {
        "ours": ours["variant"],
        "compared_with": [f"{r['library']} ({r['variant']})" for r in others],
        "fastest": {
            "met": ours["wall_seconds"] < fastest_other["wall_seconds"],
            "ours_seconds": ours["wall_seconds"],
            "fastest_other": f"{fastest_other['library']} ({fastest_other['variant']})",
            "fastest_other_seconds": fastest_other["wall_seconds"],
        },
        "auc": {
            "met": ours["auc"] >= best - AUC_TOLERANCE,
            "ours": ours["auc"],
            "best": best,
            "tolerance": AUC_TOLERANCE,
        },
        "model_size": {
            "met": ours["model_bytes"] <= smallest_other["model_bytes"],
            "ours_bytes": ours["model_bytes"],
            "smallest_other": f"{smallest_other['library']} ({smallest_other['variant']})",
            "smallest_other_bytes": smallest_other["model_bytes"],
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the generated file")
    parser.add_argument("--seed", type=int, default=0, help="data and model seed")
    parser.add_argument("--data", type=Path, default=Path("/tmp/ctr_e2e"), help="data folder")
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--embed-dim", type=int, default=16)
    parser.add_argument("--min-count", type=int, default=10, help="ours and FuxiCTR")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, every library")
    parser.add_argument("--libraries", default="perceptrons,fuxictr,deepctr")
    parser.add_argument(
        "--ours-numeric",
        default="default",
        help="our runs, by numeric encoding: default (the CLI's), standardize, "
        "log_standardize, quantile (comma-separated)",
    )
    parser.add_argument("--fuxictr-python", type=Path, default=Path("/tmp/fuxi/bin/python"))
    parser.add_argument(
        "--fuxictr-zoo",
        type=Path,
        default=Path("/tmp/FuxiCTR/model_zoo/DeepFM/DeepFM_torch"),
        help="FuxiCTR's model_zoo/DeepFM/DeepFM_torch folder (holds src/DeepFM.py)",
    )
    parser.add_argument("--deepctr-python", type=Path, default=Path("/tmp/dctr/bin/python"))
    parser.add_argument(
        "--deepctr-min-counts", default="1,10", help="DeepCTR-Torch runs (1: as its docs)"
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per process")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ctr_end_to_end.json"))
    parser.add_argument("--make-data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--measure", nargs=3, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--ours-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        _measure_child(*args.measure, args.rest)
        return
    if args.ours_child:
        _ours_child(args.ours_child, args.threads, args.rest)
        return
    if args.make_data:
        make_data(args.make_data, args.rows, args.seed)
        return

    started = datetime.datetime.now(datetime.UTC)
    load_before = os.getloadavg()
    folder = args.data
    folder.mkdir(parents=True, exist_ok=True)
    info_path = folder / "data.json"
    data = json.loads(info_path.read_text()) if info_path.exists() else {}
    wanted = {"version": DATA_VERSION, "rows": args.rows, "seed": args.seed}
    fresh = all(data.get(k) == v for k, v in wanted.items()) and all(
        Path(f["path"]).exists() for f in data.get("files", {}).values()
    )
    if fresh:
        print(f"reusing the data in {folder}", flush=True)
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--make-data", str(folder)]
        subprocess.run([*cmd, "--rows", str(args.rows), "--seed", str(args.seed)], check=True)
        data = json.loads(info_path.read_text())
        print(f"wrote the data in {data['write_seconds']:.1f} s", flush=True)
    sizes = ", ".join(
        f"{k} {v['rows']:,} rows / {v['bytes'] / 1e6:.0f} MB" for k, v in data["files"].items()
    )
    print(
        f"{sizes}; click rate {data['click_rate']:.3f}, planted model's test AUC "
        f"{data['oracle_auc']:.4f}",
        flush=True,
    )
    env = os.environ.copy()
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(args.threads)
    env["PYTHONUNBUFFERED"] = "1"
    wanted_libraries = [x.strip() for x in args.libraries.split(",") if x.strip()]
    results: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}

    def workdir(name: str) -> Path:
        path = folder / "runs" / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    done = 0
    for library in wanted_libraries:
        print(f"{library}:", flush=True)
        if library == "perceptrons":
            for numeric in [x.strip() for x in args.ours_numeric.split(",") if x.strip()]:
                if numeric not in NUMERIC:
                    raise SystemExit(f"--ours-numeric {numeric!r}: one of {', '.join(NUMERIC)}")
                results.append(
                    run_ours(args, data, workdir(f"perceptrons_{numeric}"), env, numeric)
                )
        elif library == "fuxictr":
            zoo = args.fuxictr_zoo / "src" / "DeepFM.py"
            if not args.fuxictr_python.exists():
                skipped[library] = f"{args.fuxictr_python} not found"
            elif not zoo.exists():
                skipped[library] = f"{zoo} not found (FuxiCTR's model zoo: see the docstring)"
            else:
                extra = ["--zoo", str(args.fuxictr_zoo), "--min-count", str(args.min_count)]
                results.append(
                    run_side(
                        "fuxictr",
                        f"min count {args.min_count}",
                        args.fuxictr_python,
                        "ctr_e2e_fuxictr_side.py",
                        extra,
                        args,
                        data,
                        workdir("fuxictr"),
                        env,
                    )
                )
        elif library == "deepctr":
            if not args.deepctr_python.exists():
                skipped[library] = f"{args.deepctr_python} not found"
            else:
                for count in [int(x) for x in args.deepctr_min_counts.split(",") if x.strip()]:
                    variant = "as its docs: every id" if count <= 1 else f"min count {count}"
                    results.append(
                        run_side(
                            "deepctr-torch",
                            variant,
                            args.deepctr_python,
                            "ctr_e2e_deepctr_side.py",
                            ["--min-count", str(count)],
                            args,
                            data,
                            workdir(f"deepctr_min{count}"),
                            env,
                        )
                    )
        else:
            skipped[library] = "unknown library (perceptrons, fuxictr, deepctr)"
        if library in skipped:
            print(f"  skipped: {skipped[library]}", flush=True)
        for r in results[done:]:
            if "error" in r:
                print(f"  failed: {r['error']}", flush=True)
                continue
            r["other"] = r["wall_seconds"] - sum(
                r[k] or 0.0 for k in ("read", "encode", "train", "evaluate")
            )
            print(
                f"  {r['wall_seconds']:.1f} s, AUC {r['auc']:.4f}, "
                f"model {r['model_bytes'] / _MiB:.1f} MiB",
                flush=True,
            )
        done = len(results)
    rows = data["rows"]
    text = table(results, rows)
    print(
        f"\nCTR end to end: {rows:,}-row Criteo-format file, DeepFM 1 epoch, batch "
        f"{args.batch_size}, {args.threads} torch thread(s); planted-model test AUC "
        f"{data['oracle_auc']:.4f}\n"
    )
    print(text)
    for library, reason in skipped.items():
        print(f"\nskipped {library}: {reason}")
    done = [r for r in results if "error" not in r]
    others = [r for r in done if r["library"] != "perceptrons"]
    verdicts = [goals(r, others) for r in done if r["library"] == "perceptrons" and others]
    ok = {True: "met", False: "MISSED"}
    for v in verdicts:
        f, a, m = v["fastest"], v["auc"], v["model_size"]
        print(
            f"\nours ({v['ours']}):\n"
            f"  fastest end to end: {ok[f['met']]} (ours {f['ours_seconds']:.1f} s, fastest "
            f"other {f['fastest_other']} {f['fastest_other_seconds']:.1f} s)\n"
            f"  AUC within {a['tolerance']} of the best: {ok[a['met']]} (ours {a['ours']:.4f}, "
            f"best {a['best']:.4f})\n"
            f"  model on disk <= the others': {ok[m['met']]} (ours "
            f"{m['ours_bytes'] / _MiB:.2f} MiB, smallest other {m['smallest_other']} "
            f"{m['smallest_other_bytes'] / _MiB:.2f} MiB)"
        )
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "started_utc": started.isoformat(timespec="seconds"),
        "finished_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "threads": args.threads,
        "settings": {
            "batch_size": args.batch_size,
            "lr": args.lr,
            "embed_dim": args.embed_dim,
            "hidden": [128, 64],
            "dropout": 0.0,
            "l2": 0.0,
            "epochs": 1,
            "min_count": args.min_count,
            "deepctr_min_counts": args.deepctr_min_counts,
            "seed": args.seed,
        },
        "data": data,
        "results": results,
        "skipped": skipped,
        "goals": verdicts,
        "table": text,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
