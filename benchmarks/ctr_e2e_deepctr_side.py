"""The DeepCTR-Torch side of ``benchmarks/ctr_end_to_end.py``; runs in a throwaway environment.

It never imports perceptrons. The preprocessing of DeepCTR-Torch's Criteo example, on the
three Criteo TSV files:

* ``pandas.read_csv`` of each file (tab-separated, no header, the 40 Criteo column names,
  ``C1..C26`` read as strings: an id of hex digits only would otherwise parse as a number);
* the rows of the three files concatenated (the example encodes the whole data set, then
  splits it), ``fillna("-1")`` on ``C1..C26`` and ``fillna(0)`` on ``I1..I13``; one sklearn
  ``LabelEncoder`` per sparse field (``fit_transform`` on all rows) and one ``MinMaxScaler``
  on the dense fields; ``SparseFeat(vocabulary_size=nunique)`` / ``DenseFeat``;
* with ``--min-count N > 1`` (not in the example, which keeps every id): values seen fewer
  than ``N`` times in the training rows, or not at all, become one shared value before the
  encoding, as FuxiCTR's and our ``min_count`` do;
* its ``DeepFM`` (embedding dim, MLP (128, 64), ReLU, no dropout, no batch norm, no L2 on the
  linear part, embeddings or MLP), ``compile`` with Adam at ``--lr`` and ``metrics=["auc"]``,
  ``model.fit`` for one epoch (shuffled) with the validation rows as ``validation_data``,
  ``model.predict`` on the test rows and sklearn's ``roc_auc_score``.

Phases (seconds): ``read`` the three ``read_csv``, ``encode`` the rest of the preprocessing,
``train`` model + fit, ``evaluate`` predict + metrics. Model size: ``torch.save`` of the
``state_dict`` + a pickle of the encoders, the scaler and the feature columns (what predicting
new rows needs). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import pickle
import sys
import time
from pathlib import Path
from typing import Any

SPARSE = [f"C{j}" for j in range(1, 27)]
DENSE = [f"I{i}" for i in range(1, 14)]
COLUMNS = ["label", *DENSE, *SPARSE]
RARE = "__rare__"


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("--train", "--valid", "--test", "--work"):
        parser.add_argument(name, required=True)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--embed-dim", type=int, default=16)
    parser.add_argument("--min-count", type=int, default=1, help="1: every id (as the example)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import numpy as np
    import pandas as pd
    import sklearn
    import torch
    from deepctr_torch.inputs import DenseFeat, SparseFeat, get_feature_names
    from deepctr_torch.models import DeepFM
    from sklearn.metrics import log_loss, roc_auc_score
    from sklearn.preprocessing import LabelEncoder, MinMaxScaler

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    start = time.perf_counter()
    parts = [
        pd.read_csv(path, sep="\t", header=None, names=COLUMNS, dtype=dict.fromkeys(SPARSE, str))
        for path in (args.train, args.valid, args.test)
    ]
    read = time.perf_counter() - start

    start = time.perf_counter()
    sizes = [len(p) for p in parts]
    data = pd.concat(parts, ignore_index=True)
    del parts
    data[SPARSE] = data[SPARSE].fillna("-1")
    data[DENSE] = data[DENSE].fillna(0)
    if args.min_count > 1:
        n_train = sizes[0]
        for feat in SPARSE:
            counts = data[feat].iloc[:n_train].value_counts()
            keep = counts.index[counts >= args.min_count]
            data[feat] = data[feat].where(data[feat].isin(keep), RARE)
    encoders = {}
    for feat in SPARSE:
        encoder = LabelEncoder()
        data[feat] = encoder.fit_transform(data[feat])
        encoders[feat] = encoder
    scaler = MinMaxScaler(feature_range=(0, 1))
    data[DENSE] = scaler.fit_transform(data[DENSE])
    columns = [
        SparseFeat(feat, vocabulary_size=data[feat].nunique(), embedding_dim=args.embed_dim)
        for feat in SPARSE
    ] + [DenseFeat(feat, 1) for feat in DENSE]
    names = get_feature_names(columns + columns)
    bounds = np.cumsum([0, *sizes])
    splits = [data.iloc[lo:hi] for lo, hi in zip(bounds, bounds[1:], strict=False)]
    inputs = [{name: split[name] for name in names} for split in splits]
    labels = [split["label"].to_numpy(dtype=np.float32) for split in splits]
    encode = time.perf_counter() - start

    start = time.perf_counter()
    model = DeepFM(
        columns,
        columns,
        dnn_hidden_units=(128, 64),
        l2_reg_linear=0.0,
        l2_reg_embedding=0.0,
        l2_reg_dnn=0.0,
        dnn_dropout=0.0,
        dnn_use_bn=False,
        task="binary",
        device="cpu",
        seed=args.seed,
    )
    model.compile(torch.optim.Adam(model.parameters(), lr=args.lr), "binary_crossentropy", ["auc"])
    stdout, sys.stdout = sys.stdout, sys.stderr  # fit prints its progress
    try:
        history = model.fit(
            inputs[0],
            labels[0],
            batch_size=args.batch_size,
            epochs=1,
            verbose=2,
            validation_data=(inputs[1], labels[1]),
            shuffle=True,
        )
    finally:
        sys.stdout = stdout
    train = time.perf_counter() - start

    start = time.perf_counter()
    probabilities = model.predict(inputs[2], batch_size=args.batch_size)
    auc = float(roc_auc_score(labels[2], probabilities))
    logloss = float(log_loss(labels[2], probabilities))
    evaluate = time.perf_counter() - start

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    weights, pickled = work / "deepfm_state_dict.pt", work / "encoders.pkl"
    torch.save(model.state_dict(), weights)
    with open(pickled, "wb") as handle:
        pickle.dump({"encoders": encoders, "scaler": scaler, "columns": columns}, handle)
    model_files = {p.name: p.stat().st_size for p in (weights, pickled)}
    vocab = sum(c.vocabulary_size for c in columns if isinstance(c, SparseFeat))
    val_auc: Any = history.history.get("val_auc", [None])[-1]
    print(
        json.dumps(
            {
                "version": md.version("deepctr-torch"),
                "torch": torch.__version__,
                "pandas": pd.__version__,
                "sklearn": sklearn.__version__,
                "read": read,
                "encode": encode,
                "train": train,
                "evaluate": evaluate,
                "auc": auc,
                "logloss": logloss,
                "valid_auc": None if val_auc is None else float(val_auc),
                "model_bytes": sum(model_files.values()),
                "model_files": model_files,
                "settings": {
                    "embed_dim": args.embed_dim,
                    "hidden": [128, 64],
                    "dropout": 0.0,
                    "l2": 0.0,
                    "optimizer": "torch.optim.Adam (default, not fused)",
                    "lr": args.lr,
                    "batch_size": args.batch_size,
                    "epochs": 1,
                    "min_count": args.min_count,
                    "numeric": "fillna 0, MinMaxScaler (0, 1), DenseFeat",
                    "sparse": "fillna '-1', LabelEncoder over all rows (as the example)",
                    "init_std": "1e-4 (DeepCTR-Torch's default)",
                    "predict_batch_size": args.batch_size,
                    "seed": args.seed,
                    "torch_threads": torch.get_num_threads(),
                },
                "details": {
                    "embedding_rows": vocab,
                    "params": sum(p.numel() for p in model.parameters()),
                },
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
