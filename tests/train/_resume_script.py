"""Training run used by the resume test: ``python _resume_script.py OUT_DIR [MAX_STEPS]``.

Prints ``step N`` (flushed) after every step so the test can SIGKILL it at a chosen step and
rerun it with the same OUT_DIR: `fit` resumes from the newest checkpoint. The step also draws
from numpy's and python's global generators, so their saved states matter too.
"""

from __future__ import annotations

import random
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from perceptrons.data.loader import TensorLoader
from perceptrons.train import (
    Callback,
    EarlyStopping,
    Evaluator,
    FitConfig,
    OptimizerConfig,
    ScheduleConfig,
    TrainState,
    fit,
)


class PrintStep(Callback):
    def on_step_end(self, state: TrainState) -> None:
        print(f"step {state.step}", flush=True)


def main(out_dir: str, max_steps: int) -> None:
    torch.set_num_threads(1)
    # A script may seed globals; fit restores all three generators when it resumes.
    torch.manual_seed(0)
    np.random.seed(0)  # noqa: NPY002
    random.seed(0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(100, 6, generator=g)
    y = torch.sin(x.sum(dim=1, keepdim=True))
    x_val = torch.randn(40, 6, generator=g)
    y_val = torch.sin(x_val.sum(dim=1, keepdim=True))
    model = nn.Sequential(
        nn.Linear(6, 32),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(32, 32),
        nn.Tanh(),
        nn.Dropout(0.1),
        nn.Linear(32, 1),
    )

    def step(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> dict:
        xb, yb = batch
        noise = torch.from_numpy(np.random.standard_normal(xb.shape)).to(xb.dtype)  # noqa: NPY002
        scale = random.uniform(0.5, 1.5)
        loss = scale * F.mse_loss(model(xb + 0.01 * noise), yb)
        return {"loss": loss, "scale": torch.tensor(scale)}

    def validate(model: nn.Module) -> dict[str, float]:
        return {"loss": F.mse_loss(model(x_val), y_val).item()}

    config = FitConfig(
        max_steps=max_steps,
        optimizer=OptimizerConfig(name="adamw", lr=3e-3, weight_decay=0.01),
        schedule=ScheduleConfig(name="cosine", warmup_steps=5, min_lr_ratio=0.1),
        grad_clip_norm=0.5,
        log_every=1,
        checkpoint_every=7,
        keep_checkpoints=2,
        progress=False,
        seed=3,
    )
    loader = TensorLoader((x, y), batch_size=16, shuffle=True, seed=5)  # 7 batches per epoch
    callbacks = [
        Evaluator(validate, every=5),
        EarlyStopping("val/loss", patience=1000),
        PrintStep(),
    ]
    result = fit(model, step, loader, config, callbacks, out_dir=out_dir)
    print(f"done {result.steps} resumed_from {result.resumed_from}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 60)
