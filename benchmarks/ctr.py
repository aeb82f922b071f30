"""CTR training throughput (rows/s) and peak memory: our ``deepfm`` and ``emofm`` vs DeepCTR-Torch.

Run::

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/ctr.py                 # 1M rows, batch 4096
    .venv/bin/python benchmarks/ctr.py --rows 200000 --steps 20          # a shorter run

The parent draws ``--rows`` rows of the synthetic CVR-like task (26 fields, 2 multi-valued,
default `SyntheticCTRConfig`) once and saves them to a temporary ``.npz``; each model is then
trained in its own subprocess that loads that file, so the peak resident memory
(``ru_maxrss`` of the child, data included) of each model is comparable (the parent itself
never holds the data: Linux carries ``ru_maxrss`` across fork + exec). Training: Adam
(``fused=True``), lr 1e-3, no weight decay, embedding dim 16, MLP (128, 64), ``--steps``
optimiser steps of ``--batch-size`` rows (default: one epoch) after ``--warmup`` untimed
steps; throughput = timed rows / timed seconds.
Ours trains with `perceptrons.train.fit` through `CTRStep` over a `TensorLoader`; a model
name with the suffix ``:sparse`` (``deepfm:sparse``) builds its tables with
``sparse_embeddings=True`` and updates them with ``embedding_optimizer="sparse_adam"``
(`RowSparseAdam`; fused Adam on the dense part).

DeepCTR-Torch's DeepFM (same fields, embedding dim, MLP, optimiser; multi-valued fields as
``VarLenSparseFeat`` mean-pooled; no L2) runs through ``benchmarks/deepctr_side.py`` with the
interpreter given by ``--deepctr-python`` (a throwaway venv; it is skipped with the reason
printed when that interpreter is missing or fails)::

    python3.11 -m venv /tmp/dctr
    /tmp/dctr/bin/pip install deepctr-torch -c constraints.txt   # torch==2.13.0 CPU wheel
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def make_data(rows: int, path: Path) -> None:
    from perceptrons.ctr import SyntheticCTRConfig, SyntheticCTRTask

    data = SyntheticCTRTask(SyntheticCTRConfig(seed=0)).sample(rows, seed=0)
    batch = data.to_batch()
    spec = data.feature_spec
    arrays = {
        "categorical": batch.categorical.numpy(),
        "multi_lengths": batch.multi_lengths.numpy(),
        "labels": batch.labels.numpy(),
        "types": batch.types.numpy(),
    }
    for j, ids in enumerate(batch.multi_ids):
        arrays[f"multi_ids.{j}"] = ids.numpy()
    np.savez(path, **arrays)
    meta = {
        "categorical_fields": list(spec.categorical_fields),
        "categorical_cardinalities": list(spec.categorical_cardinalities),
        "multi_valued_fields": list(spec.multi_valued_fields),
        "multi_valued_cardinalities": list(spec.multi_valued_cardinalities),
        "num_types": spec.num_types,
    }
    path.with_suffix(".json").write_text(json.dumps(meta))


def train_ours(model_name: str, path: Path, batch_size: int, steps: int, warmup: int) -> dict:
    import torch

    from perceptrons.ctr.features import CTRFeatures
    from perceptrons.ctr.models import CTRStep
    from perceptrons.data.loader import TensorLoader
    from perceptrons.registry import create_model
    from perceptrons.train import Callback, FitConfig, OptimizerConfig, fit

    meta = json.loads(path.with_suffix(".json").read_text())
    loaded = np.load(path)
    tensors = {k: torch.from_numpy(loaded[k]) for k in loaded.files}
    n = tensors["labels"].shape[0]
    tensors["numeric"] = torch.zeros(n, 0)
    features = CTRFeatures(
        categorical_fields=tuple(meta["categorical_fields"]),
        categorical_cardinalities=tuple(meta["categorical_cardinalities"]),
        numeric_fields=(),
        multi_valued_fields=tuple(meta["multi_valued_fields"]),
        multi_valued_cardinalities=tuple(meta["multi_valued_cardinalities"]),
        num_types=meta["num_types"],
    )
    name, _, variant = model_name.partition(":")
    if variant not in ("", "sparse"):
        raise SystemExit(f"--models: unknown variant {variant!r} of {name!r} (only ':sparse')")
    sparse = variant == "sparse"
    kwargs = {"features": features, "embed_dim": 16, "hidden_features": (128, 64)}
    model = create_model(name, seed=0, sparse_embeddings=sparse, **kwargs)
    loader = TensorLoader(tensors, batch_size, seed=0)
    marks: dict[str, float] = {}

    class Clock(Callback):
        def on_step_end(self, state):  # noqa: D102
            if state.step == warmup:
                marks["start"] = time.perf_counter()

    config = FitConfig(
        max_steps=warmup + steps,
        optimizer=OptimizerConfig(
            name="adam",
            lr=1e-3,
            fused=True,
            embedding_optimizer="sparse_adam" if sparse else "same",
        ),
        log_every=max(1, steps),
        progress=False,
    )
    result = fit(model, CTRStep(), loader, config, [Clock()] if warmup else [])
    end = time.perf_counter()
    start = marks.get("start", end - result.wall_time)
    seconds = end - start
    return {
        "library": "perceptrons",
        "model": model_name,
        "rows_per_s": steps * batch_size / seconds,
        "seconds": seconds,
        "steps": steps,
        "final_loss": result.final.get("loss"),
        "params": sum(p.numel() for p in model.parameters()),
    }


def _child(args: argparse.Namespace) -> None:
    out = train_ours(args.child, Path(args.data), args.batch_size, args.steps, args.warmup)
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def _run(cmd: list[str]) -> dict:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": f"exit {proc.returncode}: " + " | ".join(tail)}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default: 1 epoch)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--models", default="deepfm,deepfm:sparse,emofm")
    parser.add_argument("--deepctr-python", default="/tmp/dctr/bin/python")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--make-data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps is None:
        args.steps = max(1, args.rows // args.batch_size - args.warmup)
    if args.make_data:
        make_data(args.rows, Path(args.make_data))
        return
    if args.child:
        _child(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ctr.npz"
        start = time.perf_counter()
        # in a subprocess: Linux keeps ru_maxrss across fork + exec, so a parent that held the
        # data would put its own peak into every child's measurement
        subprocess.run(
            [sys.executable, __file__, "--make-data", str(path), "--rows", str(args.rows)],
            check=True,
        )
        print(f"data: {args.rows} rows in {time.perf_counter() - start:.1f} s", flush=True)
        common = ["--data", str(path), "--batch-size", str(args.batch_size)]
        common += ["--steps", str(args.steps), "--warmup", str(args.warmup)]
        results = []
        for name in args.models.split(","):
            cmd = [sys.executable, __file__, "--child", name, *common]
            results.append({"library": "perceptrons", "model": name, **_run(cmd)})
            print(json.dumps(results[-1]), flush=True)
        side = Path(args.deepctr_python)
        if side.exists():
            cmd = [str(side), str(HERE / "deepctr_side.py"), *common]
            results.append({"library": "deepctr-torch", "model": "deepfm", **_run(cmd)})
        else:
            results.append(
                {"library": "deepctr-torch", "model": "deepfm", "error": f"{side} not found"}
            )
        print(json.dumps(results[-1]), flush=True)
    ours = [
        r
        for r in results
        if r["model"].startswith("deepfm") and "rows_per_s" in r and r["library"] == "perceptrons"
    ]
    theirs = results[-1] if "rows_per_s" in results[-1] else None
    print("\n| library | model | rows/s | peak RSS (MiB) |\n|---|---|---:|---:|")
    for r in results:
        if "rows_per_s" in r:
            print(
                f"| {r['library']} | {r['model']} | {r['rows_per_s']:,.0f} "
                f"| {r['peak_rss_mib']:,.0f} |"
            )
        else:
            print(f"| {r['library']} | {r['model']} | failed: {r['error']} | |")
    for mine in ours if theirs else []:
        ratio = mine["rows_per_s"] / theirs["rows_per_s"]
        print(
            f"{mine['model']} speed ratio (perceptrons / deepctr-torch deepfm): {ratio:.2f}x "
            "(goal >= 1.5x)"
        )


if __name__ == "__main__":
    main()
