"""The synthetic CTR generator (`perceptrons.ctr.synthetic`): determinism, reproducible
oracle AUC, the interactions switch, types, and the file round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from perceptrons.config import ConfigError
from perceptrons.ctr import (
    NUM_SPECIAL_IDS,
    CTREncoder,
    SyntheticCTRConfig,
    SyntheticCTRTask,
    encode_file,
    infer_schema,
    read_file,
    synthetic_ctr,
)

SMALL = {"max_cardinality": 2_000, "calibration_rows": 5_000}


@pytest.fixture(scope="module")
def task() -> SyntheticCTRTask:
    return SyntheticCTRTask(SyntheticCTRConfig(seed=3, **SMALL))


def test_same_seed_same_data_and_oracle_auc(task: SyntheticCTRTask) -> None:
    again = SyntheticCTRTask(SyntheticCTRConfig(seed=3, **SMALL))
    a, b = task.sample(20_000, seed=1), again.sample(20_000, seed=1)
    for name in (
        "ids",
        "types",
        "labels",
        "probability",
        "probability_hidden_type",
        "first_order_probability",
        "type_probabilities",
    ):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for (va, oa), (vb, ob) in zip(a.multi_values, b.multi_values, strict=True):
        np.testing.assert_array_equal(va, vb)
        np.testing.assert_array_equal(oa, ob)
    auc_a = roc_auc_score(a.labels, a.probability)
    assert auc_a == roc_auc_score(b.labels, b.probability)  # reproducible to the last bit
    # our design targets: oracle about 0.78-0.82, first-order oracle about 0.70
    assert 0.76 < auc_a < 0.87, auc_a
    first = roc_auc_score(a.labels, a.first_order_probability)
    hidden = roc_auc_score(a.labels, a.probability_hidden_type)
    assert 0.62 < first < auc_a - 0.05 and first < hidden <= auc_a + 0.005
    # other seeds give other rows, and other task seeds other worlds
    c = task.sample(20_000, seed=2)
    assert not np.array_equal(a.ids, c.ids)
    other = SyntheticCTRTask(SyntheticCTRConfig(seed=4, **SMALL))
    assert not np.array_equal(other.cardinalities, task.cardinalities)


def test_rows_are_well_formed(task: SyntheticCTRTask) -> None:
    config = task.config
    data = task.sample(5_000, seed=0)
    assert data.ids.shape == (5_000, config.num_single_fields) and data.ids.dtype == np.int64
    assert bool((data.ids >= 0).all()) and bool((data.ids < task.cardinalities[:24]).all())
    assert len(data.multi_values) == config.num_multi_fields == 2
    for j, (values, offsets) in enumerate(data.multi_values):
        lengths = np.diff(offsets)
        assert offsets[0] == 0 and offsets[-1] == values.shape[0]
        assert lengths.min() >= 1 and lengths.max() <= config.max_multi_length
        assert bool((values < task.cardinalities[config.num_single_fields + j]).all())
    assert set(np.unique(data.labels).tolist()) == {0.0, 1.0}
    assert abs(float(data.labels.mean()) - config.base_rate) < 0.02
    assert abs(float(data.probability.mean()) - config.base_rate) < 0.01
    assert data.type_probabilities.shape == (5_000, 3)
    np.testing.assert_allclose(data.type_probabilities.sum(axis=1), 1.0)
    # types are predictable from the features: an auxiliary type model has signal
    majority = np.bincount(data.types).max() / data.num_rows
    accuracy = float((data.type_probabilities.argmax(axis=1) == data.types).mean())
    assert accuracy > majority + 0.05
    assert task.groups[:13] == ("user",) * 13 and task.groups[-2:] == ("user_multi",) * 2


def test_interactions_off_leaves_the_first_order_oracle() -> None:
    task = SyntheticCTRTask(SyntheticCTRConfig(seed=3, interactions=False, **SMALL))
    data = task.sample(5_000, seed=1)
    np.testing.assert_array_equal(data.probability, data.first_order_probability)
    # the type mixture of identical probabilities, up to rounding
    np.testing.assert_allclose(data.probability_hidden_type, data.probability, rtol=1e-12)
    assert task.beta == task.gamma == 0.0
    # the first-order part is the same world as with interactions on
    on = SyntheticCTRTask(SyntheticCTRConfig(seed=3, **SMALL))
    assert on.beta > 0 and on.gamma > 0
    np.testing.assert_array_equal(on.cardinalities, task.cardinalities)


def test_batch_and_file_round_trip(task: SyntheticCTRTask, tmp_path: Path) -> None:
    data = task.sample(300, seed=5)
    batch = data.to_batch()
    spec = data.feature_spec
    assert batch.categorical.shape == (300, 24) and len(batch.multi_ids) == 2
    assert bool((batch.categorical < torch.tensor(spec.categorical_cardinalities)).all())
    assert bool((batch.categorical >= NUM_SPECIAL_IDS).all())
    assert spec.num_types == 3 and spec.num_sparse == 26 and spec.numeric_fields == ()
    # cvr file: labels and types survive, and the encoder sees every field
    schema = data.write(tmp_path / "train.txt", "cvr")
    assert infer_schema(tmp_path / "train.txt", "cvr").schema == schema
    chunk, stats = read_file(tmp_path / "train.txt", schema)
    assert stats.rows == 300 and stats.ignored_pairs == 0
    np.testing.assert_array_equal(chunk.labels, data.labels)
    np.testing.assert_array_equal(chunk.types, data.types)
    assert chunk.categorical["f1"].tolist() == data.sparse_ids(0).astype(str).tolist()
    raw = data.to_raw_chunk()
    assert chunk.multi_lists("f26") == raw.multi_lists("f26")
    encoder = CTREncoder(schema).fit([chunk])
    encoded, _ = encode_file(tmp_path / "train.txt", encoder)
    # the encoder's ids are a relabelling of the generator's value ids, field by field
    for f in range(24):
        ours, theirs = encoded.categorical[:, f].tolist(), batch.categorical[:, f].tolist()
        pairs = set(zip(ours, theirs, strict=True))
        assert len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})
    # table file with hidden types
    schema = data.write(tmp_path / "test.csv", "table", hide_types=True)
    chunk, _ = read_file(tmp_path / "test.csv", schema)
    assert chunk.types.tolist() == [-1] * 300
    np.testing.assert_array_equal(chunk.labels, data.labels)
    assert chunk.multi_lists("f25") == raw.multi_lists("f25")
    with pytest.raises(ValueError, match="hide_types"):
        data.write(tmp_path / "x.txt", "cvr", hide_types=True)


def test_shortcut_and_validation() -> None:
    data = synthetic_ctr(
        100,
        seed=1,
        task_seed=2,
        num_user_fields=2,
        num_ad_fields=2,
        num_scene_fields=0,
        num_multi_fields=0,
        num_types=2,
        **SMALL,
    )
    assert data.ids.shape == (100, 4) and data.multi_values == ()
    assert data.to_batch().multi_lengths.shape == (100, 0)
    with pytest.raises(ConfigError, match="base_rate"):
        SyntheticCTRConfig(base_rate=1.5)
    with pytest.raises(ValueError, match="num_rows"):
        SyntheticCTRTask(SyntheticCTRConfig(**SMALL)).sample(0)


# ------------------------------------------------------------------ interaction families
FAMILY = {"max_cardinality": 100, "calibration_rows": 5_000}


@pytest.mark.parametrize("family", ["lookup", "conjunction", "mixed"])
def test_family_oracle_matches_the_click_rate_and_plants_its_effect(family: str) -> None:
    task = SyntheticCTRTask(SyntheticCTRConfig(seed=1, interaction=family, **FAMILY))
    data = task.sample(60_000, seed=4)
    p, y = data.probability, data.labels.astype(np.float64)
    # labels ~ Bernoulli(p): the mean residual and each decile's have a known variance
    assert abs(np.mean(y - p)) < 4 * np.sqrt(np.sum(p * (1 - p))) / p.size
    order = np.argsort(p)
    for part in np.array_split(order, 10):
        sd = np.sqrt(np.sum(p[part] * (1 - p[part]))) / part.size
        assert abs(np.mean(y[part] - p[part])) < 4.5 * sd
    oracle = roc_auc_score(y, data.probability_hidden_type)
    first = roc_auc_score(y, data.first_order_probability)
    assert oracle - first > 0.05  # the planted family is present
    # every pair term has zero mean given a single field (exact centring)
    ids, multi, uniform = task._draw_features(np.random.default_rng(0), 50_000)
    for pair, effect in zip(task.pairs, task.pair_effects, strict=True):
        term = task._pair_term(effect, pair, ids, multi)
        assert abs(term.mean()) < 5 * term.std() / np.sqrt(term.size)
        assert 0.3 < term.var() * task.config.latent_dim < 2.0  # scaled to 1 / latent_dim


def test_families_are_deterministic_and_product_is_unchanged() -> None:
    lookup = SyntheticCTRConfig(seed=2, interaction="lookup", **FAMILY)
    a = SyntheticCTRTask(lookup).sample(5_000, seed=1)
    b = SyntheticCTRTask(lookup).sample(5_000, seed=1)
    np.testing.assert_array_equal(a.probability, b.probability)
    np.testing.assert_array_equal(a.labels, b.labels)
    product = SyntheticCTRTask(SyntheticCTRConfig(seed=2, **FAMILY)).sample(5_000, seed=1)
    np.testing.assert_array_equal(product.ids, a.ids)  # same rows, other pair terms
    assert not np.allclose(product.probability, a.probability)
    families = {
        e["family"]
        for e in SyntheticCTRTask(
            SyntheticCTRConfig(seed=2, interaction="mixed", num_pairs=20, **FAMILY)
        ).pair_effects
    }
    assert families == {"product", "lookup", "conjunction"}
    assert {e["family"] for e in SyntheticCTRTask(SyntheticCTRConfig(seed=2)).pair_effects} == {
        "product"
    }


def test_family_config_errors_name_the_field() -> None:
    for field, kwargs in (
        ("interaction", {"interaction": "cubic"}),
        ("lookup_buckets", {"lookup_buckets": 1}),
        ("num_conjunctions", {"num_conjunctions": 0}),
        ("conjunction_fraction", {"conjunction_fraction": 1.0}),
    ):
        with pytest.raises(ConfigError, match=field):
            SyntheticCTRConfig(**kwargs)
    config = SyntheticCTRConfig(interaction="conjunction", num_conjunctions=3)
    assert SyntheticCTRConfig.from_json(config.to_json()) == config
