"""Ready-made `Step`s for the common supervised cases.

A step maps ``(model, batch)`` to a dict of scalar tensors with a ``"loss"`` entry; `fit`
optimises the loss and logs the rest. Studies with other objectives (CTR, RL, CCA) write their
own step; everything else about training stays in `fit`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["classification_step", "regression_step"]


def classification_step(model: nn.Module, batch: Any) -> dict[str, torch.Tensor]:
    """Cross-entropy on ``batch = (x, y)``.

    Args:
        model: Maps x of shape (batch, ...) to logits of shape (batch, num_classes).
        batch: Inputs and integer labels of shape (batch,).

    Returns:
        ``{"loss": mean cross-entropy, "accuracy": fraction of correct argmax predictions}``.
    """
    x, y = batch
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    accuracy = (logits.detach().argmax(dim=-1) == y).float().mean()
    return {"loss": loss, "accuracy": accuracy}


def regression_step(model: nn.Module, batch: Any) -> dict[str, torch.Tensor]:
    """Mean squared error on ``batch = (x, y)`` with predictions shaped like y."""
    x, y = batch
    prediction = model(x)
    return {"loss": F.mse_loss(prediction, y)}
