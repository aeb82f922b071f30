"""The DeepCTR-Torch side of ``benchmarks/ctr.py``; runs in a separate, throwaway environment.

It never imports perceptrons. Reads the ``.npz`` (+ ``.json``) the parent wrote, builds
DeepCTR-Torch's DeepFM with the same fields (single-valued ``SparseFeat``, multi-valued
``VarLenSparseFeat`` mean-pooled with id 0 as padding), embedding dim 16, MLP (128, 64), no
dropout, no L2, Adam lr 1e-3, trains ``--warmup`` untimed then ``--steps`` timed batches with
its own ``model.fit`` (one epoch over the rows those steps cover) and prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch
from deepctr_torch.inputs import SparseFeat, VarLenSparseFeat, get_feature_names
from deepctr_torch.models import DeepFM


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    path = Path(args.data)
    meta = json.loads(path.with_suffix(".json").read_text())
    loaded = np.load(path)
    columns = []
    pairs = zip(meta["categorical_fields"], meta["categorical_cardinalities"], strict=True)
    for name, card in pairs:
        columns.append(SparseFeat(name, card, embedding_dim=16))
    multi = []
    for j, (name, card) in enumerate(
        zip(meta["multi_valued_fields"], meta["multi_valued_cardinalities"], strict=True)
    ):
        ids = loaded[f"multi_ids.{j}"]
        multi.append((name, ids))
        columns.append(
            VarLenSparseFeat(SparseFeat(name, card, embedding_dim=16), ids.shape[1], "mean")
        )
    cat = loaded["categorical"]
    x = {name: cat[:, i] for i, name in enumerate(meta["categorical_fields"])}
    x.update(dict(multi))
    y = loaded["labels"].astype(np.float32)
    model = DeepFM(
        columns,
        columns,
        dnn_hidden_units=(128, 64),
        l2_reg_linear=0.0,
        l2_reg_embedding=0.0,
        l2_reg_dnn=0.0,
        dnn_dropout=0.0,
        device="cpu",
        seed=0,
    )
    model.compile(torch.optim.Adam(model.parameters(), lr=1e-3), "binary_crossentropy")
    names = get_feature_names(columns)
    b = args.batch_size

    def part(lo: int, hi: int) -> dict:
        return {k: x[k][lo:hi] for k in names}

    if args.warmup:
        model.fit(part(0, args.warmup * b), y[: args.warmup * b], batch_size=b, epochs=1, verbose=0)
    lo, hi = args.warmup * b, (args.warmup + args.steps) * b
    start = time.perf_counter()
    history = model.fit(part(lo, hi), y[lo:hi], batch_size=b, epochs=1, verbose=0, shuffle=True)
    seconds = time.perf_counter() - start
    rows = min(hi, y.shape[0]) - lo
    print(
        json.dumps(
            {
                "library": "deepctr-torch",
                "model": "deepfm",
                "rows_per_s": rows / seconds,
                "seconds": seconds,
                "steps": args.steps,
                "final_loss": float(history.history["loss"][-1]),
                "params": sum(p.numel() for p in model.parameters()),
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
