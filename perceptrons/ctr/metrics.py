"""CTR evaluation metrics: AUC (tie-aware), logloss, PCOC, per-type and pooled AUC.

Every function takes 1-d ``labels`` in {0, 1} and predictions (probabilities, or any score for
`auc`) as tensors or array-likes of ``n`` rows, and computes in float64 on the inputs' device.

* `auc`: the Mann-Whitney statistic with average ranks for ties (equal to
  ``sklearn.metrics.roc_auc_score``), one sort, vectorised;
* `logloss`: mean binary cross-entropy with ``p`` clipped to ``[eps, 1 - eps]`` (our choice,
  keeping the loss finite: ``eps = 1e-7``);
* `pcoc`: predicted CTR over observed CTR, ``sum p / sum y`` (ideal 1.0);
* `per_type_auc`: AUC of each row type; `ctr_metrics`: all of them at once (pooled AUC is the
  AUC over all rows, the CVR challenge's leaderboard metric).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["auc", "ctr_metrics", "logloss", "pcoc", "per_type_auc"]


def _vectors(labels: Any, predictions: Any, name: str = "predictions") -> tuple[Tensor, Tensor]:
    y = torch.as_tensor(labels).detach()
    p = torch.as_tensor(predictions).detach()
    if y.dim() != 1 or p.shape != y.shape:
        raise ValueError(
            f"{name}: expected labels and {name} of the same shape (n,), got "
            f"{tuple(y.shape)} and {tuple(p.shape)}"
        )
    y, p = y.to(device=p.device, dtype=torch.float64), p.to(torch.float64)
    if not bool(((y == 0) | (y == 1)).all()):
        raise ValueError("labels: expected values in {0, 1}")
    if not bool(torch.isfinite(p).all()):
        raise ValueError(f"{name}: expected finite values")
    return y, p


def auc(labels: Any, scores: Any) -> float:
    """Area under the ROC curve, ties counted 1/2: (n,), (n,) -> float.

    .. math::

        \\mathrm{AUC} = \\frac{\\sum_{i: y_i = 1} r_i - n_+ (n_+ + 1) / 2}{n_+ n_-}

    with ``r_i`` the average rank of ``scores_i`` (ties share the mean of their ranks).

    Raises:
        ValueError: mismatched shapes, labels outside {0, 1}, non-finite scores, or only one
            class present (AUC is undefined).
    """
    y, s = _vectors(labels, scores, "scores")
    positives = float(y.sum())
    negatives = y.numel() - positives
    if positives == 0 or negatives == 0:
        raise ValueError("labels: AUC needs both classes, got only one")
    sorted_scores, order = torch.sort(s)
    _, inverse, counts = torch.unique_consecutive(
        sorted_scores, return_inverse=True, return_counts=True
    )
    ends = counts.cumsum(0).to(torch.float64)  # 1-based rank of each group's last element
    average_rank = ends - (counts.to(torch.float64) - 1) / 2
    rank_sum = (average_rank[inverse] * y[order]).sum()
    return float((rank_sum - positives * (positives + 1) / 2) / (positives * negatives))


def logloss(labels: Any, probabilities: Any, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy with ``p`` clipped to ``[eps, 1 - eps]``: (n,), (n,) -> float."""
    y, p = _vectors(labels, probabilities, "probabilities")
    if y.numel() == 0:
        raise ValueError("labels: expected at least one row")
    p = p.clamp(eps, 1 - eps)
    return float(-(y * p.log() + (1 - y) * (1 - p).log()).mean())


def pcoc(labels: Any, probabilities: Any) -> float:
    """Predicted CTR over observed CTR, ``sum p / sum y``: (n,), (n,) -> float (ideal 1.0).

    Raises:
        ValueError: no positive label (the ratio is undefined), or bad inputs.
    """
    y, p = _vectors(labels, probabilities, "probabilities")
    clicks = float(y.sum())
    if clicks == 0:
        raise ValueError("labels: PCOC needs at least one positive label")
    return float(p.sum()) / clicks


def per_type_auc(labels: Any, scores: Any, types: Any) -> dict[int, float]:
    """AUC of the rows of each type: ``{type: auc}`` (n,), (n,), (n,) -> dict.

    Rows of type ``-1`` (unknown) are left out; a type whose rows hold a single class gets
    ``nan``.
    """
    y, s = _vectors(labels, scores, "scores")
    t = torch.as_tensor(types).to(device=s.device)
    if t.shape != y.shape:
        raise ValueError(f"types: expected shape {tuple(y.shape)}, got {tuple(t.shape)}")
    out = {}
    for value in sorted(int(v) for v in torch.unique(t) if int(v) >= 0):
        rows = t == value
        ys = y[rows]
        out[value] = auc(ys, s[rows]) if 0 < float(ys.sum()) < ys.numel() else float("nan")
    return out


def ctr_metrics(labels: Any, probabilities: Any, types: Any = None) -> dict[str, float]:
    """``{"auc", "logloss", "pcoc", "rows"}`` (pooled over all rows) plus ``"auc_type_{t}"``.

    Args:
        labels: (n,) clicks in {0, 1}.
        probabilities: (n,) predicted click probabilities.
        types: Optional (n,) row types (-1 unknown) for the per-type AUCs.
    """
    y, p = _vectors(labels, probabilities, "probabilities")
    out = {
        "auc": auc(y, p),
        "logloss": logloss(y, p),
        "pcoc": pcoc(y, p),
        "rows": float(y.numel()),
    }
    if types is not None:
        for t, value in per_type_auc(y, p, types).items():
            out[f"auc_type_{t}"] = value
    return out
