"""The FuxiCTR side of ``benchmarks/ctr_end_to_end.py``; runs in a throwaway environment.

It never imports perceptrons. FuxiCTR 2.3's own pipeline on the Criteo TSV files:

* ``FeatureProcessor`` (here ``fuxictr.datasets.criteo.CustomizedFeatureProcessor``, FuxiCTR's
  Criteo processor, whose ``convert_to_bucket`` maps an integer ``x > 2`` to
  ``floor(log(x)^2)``): ``I1..I13`` filled with 0, bucketised and embedded as categorical
  fields, ``C1..C26`` categorical with missing as ``""``, ``min_categr_count`` from
  ``--min-count`` (FuxiCTR's Criteo protocol uses 10). Its ``read_data`` expects CSV files
  with a header; the only change here is a subclass whose ``read_data`` scans the headerless
  TSV with the 40 Criteo column names (``polars.scan_csv``, as FuxiCTR's own reader does);
* ``build_dataset`` (polars statistics, tokenising in Ray tasks, one Parquet file per split);
* the model zoo's ``DeepFM`` (``model_zoo/DeepFM/DeepFM_torch/src/DeepFM.py`` of FuxiCTR's
  repository: the wheel does not ship it; ``--zoo`` is that ``DeepFM_torch`` folder), with
  embedding dim, hidden units (128, 64), ReLU, no dropout, no batch norm, no regularisation,
  Adam at ``--lr``;
* ``RankDataLoader`` (Parquet, Ray Data; shuffled training rows), ``model.fit`` for one epoch
  with the validation rows (FuxiCTR evaluates after the epoch, saves the best checkpoint and
  reloads it; it clips gradients at norm 10, its default), ``model.evaluate`` on the test rows.

Phases (seconds): ``encode`` = ``build_dataset`` (it reads inside its lazy polars queries, so
``read`` is None), ``train`` = loaders + model + fit, ``evaluate`` = test loader + evaluate.
Model size: the checkpoint, ``feature_processor.pkl`` and ``feature_map.json`` (what
predicting new rows needs). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl
from fuxictr.datasets.criteo import CustomizedFeatureProcessor

COLUMNS = ["label", *(f"I{i}" for i in range(1, 14)), *(f"C{j}" for j in range(1, 27))]
DATASET = "criteo_e2e"
SCHEMA = {n: (pl.String if n.startswith("C") else pl.Float64) for n in COLUMNS}
FIT_SECONDS: list[float] = []


class CriteoTSV(CustomizedFeatureProcessor):  # type: ignore[misc]
    """FuxiCTR's Criteo processor reading headerless tab-separated files (pickled with the
    model's feature processor: predicting new rows needs this class importable)."""

    def read_data(self, data_path: str, **kwargs: Any) -> Any:
        return pl.scan_csv(
            data_path, separator="\t", has_header=False, schema=SCHEMA, low_memory=False
        )

    def fit(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return super().fit(*args, **kwargs)
        finally:
            FIT_SECONDS.append(time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("--train", "--valid", "--test", "--work", "--zoo"):
        parser.add_argument(name, required=True)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--embed-dim", type=int, default=16)
    parser.add_argument("--min-count", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)

    import torch

    torch.set_num_threads(args.threads)
    from fuxictr.features import FeatureMap
    from fuxictr.preprocess import build_dataset
    from fuxictr.pytorch.dataloaders import RankDataLoader
    from fuxictr.pytorch.torch_utils import seed_everything

    sys.path.insert(0, args.zoo)
    from src import DeepFM  # the model zoo's package (FuxiCTR's repository)

    work = Path(args.work)
    data_root = work / "data"
    feature_cols = [
        {
            "name": [f"I{i}" for i in range(1, 14)],
            "active": True,
            "dtype": "float",
            "type": "categorical",
            "preprocess": "convert_to_bucket",
            "fill_na": 0,
        },
        {
            "name": [f"C{j}" for j in range(1, 27)],
            "active": True,
            "dtype": "str",
            "type": "categorical",
            "fill_na": "",
        },
    ]
    label_col = {"name": "label", "dtype": "float"}
    params: dict[str, Any] = {
        "dataset_id": DATASET,
        "data_root": str(data_root) + "/",
        "data_format": "parquet",
        "model_root": str(work / "checkpoints") + "/",
        "model": "DeepFM",
        "task": "binary_classification",
        "loss": "binary_crossentropy",
        "metrics": ["logloss", "AUC"],
        "monitor": "AUC",
        "monitor_mode": "max",
        "optimizer": "adam",
        "learning_rate": args.lr,
        "embedding_dim": args.embed_dim,
        "hidden_units": [128, 64],
        "hidden_activations": "relu",
        "net_dropout": 0,
        "batch_norm": False,
        "embedding_regularizer": 0,
        "net_regularizer": 0,
        "batch_size": args.batch_size,
        "epochs": 1,
        "shuffle": True,
        "seed": args.seed,
        "early_stop_patience": 2,
        "save_best_only": True,
        "eval_steps": None,
        "verbose": 0,
        "gpu": -1,
        "min_categr_count": args.min_count,
    }
    seed_everything(seed=args.seed)

    start = time.perf_counter()
    processor = CriteoTSV(
        feature_cols=feature_cols, label_col=label_col, dataset_id=DATASET, data_root=str(data_root)
    )
    train_data, valid_data, test_data = build_dataset(
        processor,
        train_data=args.train,
        valid_data=args.valid,
        test_data=args.test,
        min_categr_count=args.min_count,
    )
    encode = time.perf_counter() - start

    start = time.perf_counter()
    data_dir = data_root / DATASET
    feature_map = FeatureMap(DATASET, str(data_dir))
    feature_map.load(str(data_dir / "feature_map.json"), params)
    model = DeepFM(feature_map, **params)
    os.makedirs(model.model_dir, exist_ok=True)  # run_expid's set_logger makes it
    train_gen, valid_gen = RankDataLoader(
        feature_map,
        stage="train",
        train_data=train_data,
        valid_data=valid_data,
        batch_size=args.batch_size,
        shuffle=True,
        data_format="parquet",
    )
    model.fit(train_gen, validation_data=valid_gen, epochs=1)
    train = time.perf_counter() - start

    start = time.perf_counter()
    test_gen = RankDataLoader(
        feature_map,
        stage="test",
        test_data=test_data,
        batch_size=args.batch_size,
        shuffle=False,
        data_format="parquet",
    )
    logs = model.evaluate(test_gen)
    evaluate = time.perf_counter() - start

    needed = [Path(model.checkpoint), data_dir / "feature_processor.pkl"]
    needed.append(data_dir / "feature_map.json")
    model_files = {p.name: p.stat().st_size for p in needed}
    vocab = sum(
        spec.get("vocab_size", 0)
        for spec in feature_map.features.values()
        if isinstance(spec, dict)
    )
    print(
        json.dumps(
            {
                "version": md.version("fuxictr"),
                "torch": torch.__version__,
                "polars": pl.__version__,
                "ray": md.version("ray"),
                "read": None,
                "encode": encode,
                "train": train,
                "evaluate": evaluate,
                "auc": float(logs["AUC"]),
                "logloss": float(logs["logloss"]),
                "valid_auc": float(model._best_metric),  # fit's validation AUC
                "model_bytes": sum(model_files.values()),
                "model_files": model_files,
                "settings": {
                    **{k: v for k, v in params.items() if k not in ("data_root", "model_root")},
                    "numeric": "fill_na 0, convert_to_bucket (floor(log(x)^2) for x > 2), "
                    "embedded as categorical",
                    "max_gradient_norm": 10.0,
                    "embedding_init": "normal std 1e-4 (FuxiCTR's default)",
                    "reduce_lr_on_plateau": "FuxiCTR's default (no effect in one epoch)",
                    "torch_threads": torch.get_num_threads(),
                },
                "details": {
                    "fit_vocabulary_seconds": sum(FIT_SECONDS),
                    "transform_seconds": encode - sum(FIT_SECONDS),
                    "embedding_rows": vocab,
                    "params": sum(p.numel() for p in model.parameters()),
                    "cpu_count": os.cpu_count(),
                },
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
