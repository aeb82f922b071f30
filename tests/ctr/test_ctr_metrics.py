"""CTR metrics (`perceptrons.ctr.metrics`) against sklearn and by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import log_loss, roc_auc_score

from perceptrons.ctr.metrics import auc, ctr_metrics, logloss, pcoc, per_type_auc


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_sklearn_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 2_000
    labels = (rng.random(n) < 0.2).astype(np.float32)
    # coarse scores: many ties, within and across classes
    scores = np.round(rng.normal(size=n) + labels, 1 if seed % 2 else 0)
    assert len(np.unique(scores)) < n // 10
    expected = roc_auc_score(labels, scores)
    assert auc(labels, scores) == pytest.approx(expected, abs=1e-12)
    assert auc(torch.from_numpy(labels), torch.from_numpy(scores)) == pytest.approx(
        expected, abs=1e-12
    )


def test_auc_edge_cases() -> None:
    assert auc([0, 1], [0.1, 0.9]) == 1.0
    assert auc([0, 1], [0.9, 0.1]) == 0.0
    assert auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
    with pytest.raises(ValueError, match="both classes"):
        auc([1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="same shape"):
        auc([0, 1], [0.2])
    with pytest.raises(ValueError, match=r"\{0, 1\}"):
        auc([0, 2], [0.2, 0.3])
    with pytest.raises(ValueError, match="finite"):
        auc([0, 1], [0.2, float("nan")])


def test_logloss_matches_sklearn_and_clips() -> None:
    rng = np.random.default_rng(0)
    labels = (rng.random(500) < 0.3).astype(np.float64)
    p = rng.random(500)
    assert logloss(labels, p) == pytest.approx(log_loss(labels, p), rel=1e-10)
    # a confident mistake is clipped at eps = 1e-7, not infinite
    assert logloss([1.0], [0.0]) == pytest.approx(-math.log(1e-7))


def test_pcoc() -> None:
    assert pcoc([1, 0, 0, 1], [0.5, 0.25, 0.25, 0.5]) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="positive"):
        pcoc([0, 0], [0.1, 0.2])


def test_per_type_and_pooled_auc() -> None:
    rng = np.random.default_rng(1)
    n = 3_000
    types = rng.integers(-1, 3, n)
    labels = (rng.random(n) < 0.3).astype(np.float32)
    scores = rng.normal(size=n) + labels * (types + 1)
    per_type = per_type_auc(labels, scores, types)
    assert set(per_type) == {0, 1, 2}
    for t in range(3):
        rows = types == t
        assert per_type[t] == pytest.approx(roc_auc_score(labels[rows], scores[rows]), abs=1e-12)
    probs = 1 / (1 + np.exp(-scores))
    metrics = ctr_metrics(labels, probs, types)
    assert metrics["auc"] == pytest.approx(roc_auc_score(labels, probs), abs=1e-12)
    assert metrics["rows"] == n
    assert metrics["pcoc"] == pytest.approx(probs.sum() / labels.sum())
    assert metrics["auc_type_2"] == pytest.approx(per_type[2], abs=1e-12)
    single = per_type_auc([0, 0, 1], [0.1, 0.2, 0.3], [0, 0, 1])
    assert math.isnan(single[0]) and math.isnan(single[1])
