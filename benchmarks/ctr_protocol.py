"""Training-protocol probes of the ``emofm-ctr`` study: test AUC of chosen models on one seed.

Each probe builds the named models as the study does
(`perceptrons.studies.emofm_ctr.experiments.build_model`) and trains them with the library's one
CTR protocol, `perceptrons.ctr.pipeline.fit_ctr_model` (the call of the study's `train_model`
and of ``perceptrons ctr train``: validation AUC every ``--eval-every`` steps, early stopping
after ``--patience`` evaluations, the best validation weights restored) on repetition 0 of the
full preset's task, with the training rows,
epochs, L2 penalty and learning rate given on the command line, and prints one line per model
(test AUC with types hidden, PCOC, best step, seconds). ``pairs`` is a reference model that is
*told* the planted structure: first-order weights plus one factorised term
``<A_p[x_f], B_p[x_g]>`` (dimension 8) per planted pair ``(f, g)``, the type-specific pairs
included; it shows how much of the oracle the rows allow a model to learn. These probes chose
the full preset (docs/ctr.md, "Full preset")::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ctr_protocol.py --rows 200000 --epochs 15 \\
        --weight-decay 1e-4 --eval-every 50 --patience 4 --models lr fm dnn
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ctr_protocol.py --rows 500000 --epochs 10 \\
        --weight-decay 1e-4 --eval-every 100 --patience 5 --models lr fm dnn deepfm dcnv2 emofm
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ctr_protocol.py --rows 200000 --epochs 20 \\
        --eval-every 50 --patience 4 --models pairs --embed-std 0.1

Adam is unfused by default (as the probes ran); ``--fused`` uses the study's fused Adam, which
rounds differently. Results are written to ``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import torch
from torch import Tensor, nn

from perceptrons.ctr import SyntheticCTRTask
from perceptrons.ctr.features import CTRFeatures, as_ctr_input
from perceptrons.ctr.layers import FieldEmbedding
from perceptrons.ctr.pipeline import fit_ctr_model
from perceptrons.io import atomic_write
from perceptrons.studies.emofm_ctr.config import FULL
from perceptrons.studies.emofm_ctr.experiments import (
    PREDICT_BATCH,
    build_model,
    evaluate_model,
    oracle_metrics,
    repetition_data,
)
from perceptrons.train import OptimizerConfig

RESULTS = Path(__file__).parent / "results" / "ctr_protocol.json"


class PlantedPairs(nn.Module):
    """First-order weights plus ``<A_p[x_f], B_p[x_g]>`` for each given field pair ``p``."""

    def __init__(
        self, features: CTRFeatures, pairs: list[tuple[int, int]], dim: int, std: float
    ) -> None:
        super().__init__()
        self.pairs, self.dim = pairs, dim
        generator = torch.Generator().manual_seed(0)
        self.embedding = FieldEmbedding(
            features, dim * len(pairs), embed_std=std, generator=generator
        )

    def forward(self, batch: object) -> Tensor:
        x = as_ctr_input(batch, self.embedding.features)
        e = self.embedding(x)  # (b, F, dim * P): slice p is used by pair p only
        out = self.embedding.first_order(x)
        for p, (f, g) in enumerate(self.pairs):
            part = slice(p * self.dim, (p + 1) * self.dim)
            out = out + (e[:, f, part] * e[:, g, part]).sum(-1)
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["lr", "fm", "dnn"])
    parser.add_argument("--rows", type=int, default=200_000, help="training rows")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-6)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--patience", type=int, default=4)
    parser.add_argument("--embed-std", type=float, default=0.01)
    parser.add_argument("--fused", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)

    optimizer = OptimizerConfig(
        name="adam", lr=args.lr, weight_decay=args.weight_decay, fused=args.fused
    )
    config = FULL.replace(
        num_train=args.rows,
        eval_every=args.eval_every,
        patience=args.patience,
        fit=FULL.fit.replace(max_epochs=args.epochs, optimizer=optimizer),
    )
    task = SyntheticCTRTask(config.task.replace(seed=config.seed))
    train, val, test_rows = repetition_data(config, 0, tie=False)
    test = test_rows.to_batch().to_tensors()
    oracles = oracle_metrics(test_rows)
    print(
        f"rows {args.rows}, epochs {args.epochs}, lr {args.lr}, L2 {args.weight_decay}; "
        f"oracle {oracles.oracle:.4f}, first-order oracle {oracles.first_order_oracle:.4f}"
    )
    rows = []
    for name in args.models:
        if name == "pairs":
            pairs = [*task.pairs, *(p for ps in task.type_pairs for p in ps)]
            model = PlantedPairs(test_rows.feature_spec, pairs, 8, args.embed_std)
        else:
            extra = {} if name == "lr" else {"embed_std": args.embed_std}
            model = build_model(name, config, test_rows.feature_spec, config.seed, **extra)
        fitted = fit_ctr_model(
            model,
            train,
            val,
            config.fit.replace(seed=config.seed, device=config.device),
            batch_size=config.batch_size,
            eval_every=config.eval_every,
            patience=config.patience,
            predict_batch=PREDICT_BATCH,
        )
        metrics = evaluate_model(model, test)
        row = {
            "model": name,
            "test_auc": metrics.auc,
            "pcoc": metrics.pcoc,
            "val_auc": fitted.best_auc,
            "best_step": fitted.best_step,
            "steps": fitted.steps,
            "seconds": round(fitted.seconds, 1),
        }
        rows.append(row)
        print(
            f"{name:8s} test AUC {row['test_auc']:.4f}  PCOC {row['pcoc']:.3f}  "
            f"best step {row['best_step']} of {row['steps']}  {row['seconds']:.0f} s",
            flush=True,
        )
    meta = {"args": {k: str(v) for k, v in vars(args).items()}, "oracles": asdict(oracles)}
    meta["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with atomic_write(args.out) as handle:
        handle.write(json.dumps({"meta": meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
