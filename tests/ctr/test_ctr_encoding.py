"""Feature encoders of CTR data (`perceptrons.ctr.io.encoding`): vocabularies with OOV and
missing ids, stable hashing, numeric normalisation and buckets, multi-valued padding, the exact
JSON round trip, and unseen values at inference."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from perceptrons.ctr import (
    MISSING_ID,
    NUM_SPECIAL_IDS,
    OOV_ID,
    PAD_ID,
    CTRBatch,
    CTREncoder,
    CTRSchema,
    EncoderConfig,
    RawChunk,
    criteo_schema,
    cvr_schema,
    encode_file,
    fit_encoder,
    hash_id,
    iter_chunks,
    iter_encoded,
    read_file,
)
from perceptrons.ctr.io.schema import object_array
from perceptrons.data import TensorLoader

FIXTURES = Path(__file__).parent / "fixtures"
CVR_SCHEMA = cvr_schema(fields=(1, 2, 3, 10, 25), multi_valued=(10, 25))


def chunk_of(
    categorical: dict[str, list],
    numeric: dict[str, list] | None = None,
    multi: dict[str, list[list[str]]] | None = None,
) -> RawChunk:
    """A RawChunk built by hand (labels 0)."""
    n = len(next(iter(categorical.values())))
    multi_arrays = {}
    for name, lists in (multi or {}).items():
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum([len(v) for v in lists], out=offsets[1:])
        multi_arrays[name] = (object_array([v for vs in lists for v in vs]), offsets)
    return RawChunk(
        line_numbers=np.arange(1, n + 1),
        labels=np.zeros(n, dtype=np.float32),
        categorical={k: object_array(v) for k, v in categorical.items()},
        numeric={k: np.asarray(v, dtype=np.float64) for k, v in (numeric or {}).items()},
        multi_valued=multi_arrays,
        types=np.full(n, -1, dtype=np.int64),
    )


# ---------------------------------------------------------------------- categorical
def test_vocabulary_order_min_count_oov_and_missing() -> None:
    schema = CTRSchema(format="table", categorical=("a",))
    train = chunk_of({"a": ["x", "y", "x", None, "z", "y", "x", "w"]})
    encoder = CTREncoder(schema, EncoderConfig(min_count=2)).fit([train])
    # most frequent first: x (3), y (2); z and w (1) fall below min_count
    test = chunk_of({"a": ["x", "y", "z", None, "never-seen"]})
    ids = encoder.transform(test).categorical[:, 0].tolist()
    assert ids == [NUM_SPECIAL_IDS, NUM_SPECIAL_IDS + 1, OOV_ID, MISSING_ID, OOV_ID]
    assert encoder.feature_spec.categorical_cardinalities == (NUM_SPECIAL_IDS + 2,)
    # ties are broken by the value, so the vocabulary does not depend on the row order
    shuffled = chunk_of({"a": ["b", "a", "c", "a", "b", "c"]})
    enc = CTREncoder(schema).fit([shuffled])
    assert enc.transform(chunk_of({"a": ["a", "b", "c"]})).categorical[:, 0].tolist() == [3, 4, 5]


def test_hashing_is_stable_and_pinned() -> None:
    # fixed expected ids: crc32 of the UTF-8 value seeded with crc32 of the field name
    assert [hash_id("C1", v, 1000) for v in ["68fd1e64", "287e684f", "", " é"]] == [
        689,
        369,
        926,
        660,
    ]
    assert hash_id("f3", "33", 2**18) == 206895
    assert hash_id("C2", "68fd1e64", 1000) == 502  # the field salts the hash
    schema = CTRSchema(format="table", categorical=("C1",))
    encoder = CTREncoder(schema, EncoderConfig(categorical_encoding="hash", hash_buckets=1000))
    encoder.fit([chunk_of({"C1": ["a"]})])
    ids = encoder.transform(chunk_of({"C1": ["68fd1e64", None, "287e684f"]})).categorical[:, 0]
    assert ids.tolist() == [689, MISSING_ID, 369]
    assert encoder.feature_spec.categorical_cardinalities == (NUM_SPECIAL_IDS + 1000,)


def test_hashing_is_the_same_in_another_process() -> None:
    code = (
        "from perceptrons.ctr import hash_id; "
        "print([hash_id('C1', v, 1000) for v in ['68fd1e64', '287e684f']])"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # Python's own str hash would differ
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "[689, 369]"


def test_hash_fields_mix_with_vocabularies_on_criteo() -> None:
    config = EncoderConfig(
        hash_fields=("C1", "C2"), hash_buckets=64, numeric_encoding="standardize"
    )
    encoder, stats = fit_encoder(FIXTURES / "criteo_sample.txt", criteo_schema(), config)
    assert stats.rows == 4
    batch, _ = encode_file(FIXTURES / "criteo_sample.txt", encoder)
    spec = encoder.feature_spec
    assert batch.categorical.shape == (4, 26) and batch.numeric.shape == (4, 13)
    assert spec.categorical_cardinalities[:2] == (67, 67)
    assert batch.categorical[0, 0] == hash_id("C1", "68fd1e64", 64)
    cards = torch.tensor(spec.categorical_cardinalities)
    assert bool((batch.categorical < cards).all()) and bool((batch.categorical >= 0).all())
    assert batch.categorical[2, CRITEO_C(26)] == MISSING_ID


def CRITEO_C(k: int) -> int:  # noqa: N802 (column index of Ck in the categorical block)
    return k - 1


# ---------------------------------------------------------------------- numeric
def test_standardize_fits_mean_and_std_over_a_stream() -> None:
    schema = criteo_schema()
    whole, _ = read_file(FIXTURES / "criteo_sample.txt", schema)
    standardize = EncoderConfig(numeric_encoding="standardize")
    one = CTREncoder(schema, standardize).fit([whole])
    chunked = CTREncoder(schema, standardize).fit(
        iter_chunks(FIXTURES / "criteo_sample.txt", schema, chunk_rows=1)
    )
    for name in ("I1", "I2", "I5", "I13"):
        x = whole.numeric[name]
        mean, std = np.nanmean(x), np.nanstd(x)
        params = one.to_dict()["numeric"][name]
        assert params["kind"] == "standardize"
        assert math.isclose(params["mean"], mean) and math.isclose(params["std"], std)
        other = chunked.to_dict()["numeric"][name]
        assert math.isclose(other["mean"], mean) and math.isclose(other["std"], std)
    batch = one.transform(whole)
    assert batch.numeric.dtype == torch.float32
    x = whole.numeric["I5"]
    expected = (x - np.nanmean(x)) / np.nanstd(x)
    np.testing.assert_allclose(batch.numeric[:, 4].numpy(), expected, rtol=1e-6)
    assert batch.numeric[2, 0] == 0.0  # missing I1 -> the mean
    assert bool(torch.isfinite(batch.numeric).all())
    logged = CTREncoder(schema, EncoderConfig(numeric_encoding="log_standardize")).fit([whole])
    z = logged.transform(whole).numeric[:, 4].numpy()
    lx = np.log1p(x)
    np.testing.assert_allclose(z, (lx - lx.mean()) / lx.std(), rtol=1e-5)


def test_numeric_encoding_defaults_by_format() -> None:
    """Criteo counts are bucketed by default (quantiles, as CTR practice buckets them); tables
    and cvr files are standardised; an explicit choice wins and the saved config records it."""
    criteo = CTREncoder(criteo_schema())
    assert criteo.config.numeric_encoding == "quantile" and criteo.config.min_count == 10
    table = CTREncoder(CTRSchema(format="table", categorical=("a",), numeric=("x",)))
    assert table.config.numeric_encoding == "standardize" and table.config.min_count == 1
    chosen = CTREncoder(criteo_schema(), EncoderConfig(numeric_encoding="log_standardize"))
    assert chosen.config.numeric_encoding == "log_standardize"
    whole, _ = read_file(FIXTURES / "criteo_sample.txt", criteo_schema())
    fitted = criteo.fit([whole])
    assert fitted.to_dict()["config"]["numeric_encoding"] == "quantile"
    batch = fitted.transform(whole)
    assert batch.categorical.shape == (4, 26 + 13) and batch.numeric.shape == (4, 0)


def test_quantile_buckets_become_categorical_fields() -> None:
    schema = CTRSchema(format="table", categorical=("a",), numeric=("x",))
    values = np.arange(100, dtype=float)
    train = chunk_of({"a": ["u"] * 100}, {"x": values})
    encoder = CTREncoder(schema, EncoderConfig(numeric_encoding="quantile", num_quantile_buckets=4))
    encoder.fit([train])
    spec = encoder.feature_spec
    assert spec.categorical_fields == ("a", "x") and spec.numeric_fields == ()
    assert spec.categorical_cardinalities[1] == NUM_SPECIAL_IDS + 4
    test = chunk_of({"a": ["u"] * 5}, {"x": [-5.0, 10.0, 60.0, 1e9, math.nan]})
    batch = encoder.transform(test)
    assert batch.numeric.shape == (5, 0)
    assert batch.categorical[:, 1].tolist() == [3, 3, 5, 6, MISSING_ID]
    # every training bucket holds about a quarter of the values
    counts = np.bincount(encoder.transform(train).categorical[:, 1].numpy() - 3)
    assert counts.tolist() == [25, 25, 25, 25]


# ---------------------------------------------------------------------- multi-valued
def test_multi_valued_fields_pad_with_lengths() -> None:
    schema = CTRSchema(format="table", categorical=("a",), multi_valued=("tags",))
    train = chunk_of({"a": ["u", "v"]}, multi={"tags": [["x", "y"], ["y", "z", "x"]]})
    encoder = CTREncoder(schema).fit([train])
    test = chunk_of(
        {"a": ["u", "u", "v"]}, multi={"tags": [["y", "new"], [], ["x", "y", "z", "x"]]}
    )
    batch = encoder.transform(test)
    x, y, z = 3, 4, 5  # x and y seen twice (tie -> by value), z once
    assert batch.multi_lengths.tolist() == [[2], [1], [4]]
    assert batch.multi_ids[0].tolist() == [
        [y, OOV_ID, PAD_ID, PAD_ID],
        [MISSING_ID, PAD_ID, PAD_ID, PAD_ID],
        [x, y, z, x],
    ]
    assert encoder.feature_spec.multi_valued_cardinalities == (6,)
    short = CTREncoder(schema, EncoderConfig(max_multi_length=2)).fit([train]).transform(test)
    assert short.multi_ids[0].tolist() == [[y, OOV_ID], [MISSING_ID, PAD_ID], [x, y]]
    assert short.multi_lengths.tolist() == [[2], [1], [2]]


def test_cvr_file_encodes_with_types() -> None:
    encoder, _ = fit_encoder(FIXTURES / "cvr_sample.txt", CVR_SCHEMA)
    batch, stats = encode_file(FIXTURES / "cvr_sample.txt", encoder)
    assert stats.ignored_pairs == 1
    spec = encoder.feature_spec
    assert spec.categorical_fields == ("f1", "f2", "f3") and spec.num_types == 3
    assert spec.multi_valued_fields == ("f10", "f25")
    assert spec.numeric_fields == () and spec.num_sparse == spec.num_fields == 5
    assert batch.types.tolist() == [0, 1, 2, 2] and batch.labels.tolist() == [1, 0, 1, 0]
    assert batch.multi_lengths.tolist() == [[3, 1], [1, 2], [1, 1], [1, 1]]
    assert batch.multi_ids[0][2].tolist() == [MISSING_ID, PAD_ID, PAD_ID]  # no f10 in row 3


# ---------------------------------------------------------------------- unseen values
def test_unseen_values_and_fields_at_inference_do_not_fail(tmp_path: Path) -> None:
    encoder, _ = fit_encoder(FIXTURES / "cvr_sample.txt", CVR_SCHEMA)
    path = tmp_path / "new.txt"
    path.write_text(
        "9\t-\t1\t-\t777:1 888:2 33:3 999:10 5:25 1:40\n"  # new ids, an unknown field 40
        "10\t-\t-\t-\t\n"  # nothing known: no label, no features
    )
    batch, stats = encode_file(path, encoder, require_label=False)
    train, _ = encode_file(FIXTURES / "cvr_sample.txt", encoder)
    known = train.categorical[0, 2].item()  # f3 = 33 was seen in training
    assert known >= NUM_SPECIAL_IDS
    assert batch.categorical.tolist() == [
        [OOV_ID, OOV_ID, known],
        [MISSING_ID, MISSING_ID, MISSING_ID],
    ]
    assert batch.multi_ids[0][:, 0].tolist() == [OOV_ID, MISSING_ID]
    assert batch.types.tolist() == [1, -1] and math.isnan(batch.labels[1])
    assert stats.ignored_pairs == 1


# ---------------------------------------------------------------------- round trip
@pytest.mark.parametrize(
    "config",
    [
        EncoderConfig(min_count=1),
        EncoderConfig(categorical_encoding="hash", hash_buckets=97),
        EncoderConfig(numeric_encoding="quantile", num_quantile_buckets=3, min_count=2),
        EncoderConfig(numeric_encoding="log_standardize", hash_fields=("C3",)),
    ],
    ids=["vocab", "hash", "quantile", "log+hash-field"],
)
def test_encoder_round_trip_is_exact(config: EncoderConfig, tmp_path: Path) -> None:
    path = FIXTURES / "criteo_sample.txt"
    encoder, _ = fit_encoder(path, criteo_schema(), config)
    state = encoder.to_dict()
    text = json.dumps(state, allow_nan=False)  # plain JSON, no pickle
    again = CTREncoder.from_dict(json.loads(text))
    assert again.to_dict() == state
    encoder.save(tmp_path / "encoder.json")
    loaded = CTREncoder.load(tmp_path / "encoder.json")
    assert loaded.to_dict() == state and loaded.feature_spec == encoder.feature_spec
    assert [p.name for p in tmp_path.iterdir()] == ["encoder.json"]  # no temporary left
    encoder.save(tmp_path / "encoder.json.gz")  # gzip JSON: the same encoder, fixed bytes
    zipped = (tmp_path / "encoder.json.gz").read_bytes()
    assert CTREncoder.load(tmp_path / "encoder.json.gz").to_dict() == state
    encoder.save(tmp_path / "again.json.gz")
    assert (tmp_path / "again.json.gz").read_bytes() == zipped
    assert len(zipped) < (tmp_path / "encoder.json").stat().st_size
    (tmp_path / "bad.json.gz").write_bytes(b"not gzip")
    with pytest.raises(ValueError, match=r"bad\.json\.gz: not a gzip-compressed JSON"):
        CTREncoder.load(tmp_path / "bad.json.gz")
    chunk, _ = read_file(path, criteo_schema())
    a, b = encoder.transform(chunk), loaded.transform(chunk)
    for key, tensor in a.to_tensors().items():
        assert torch.equal(tensor.nan_to_num(-7), b.to_tensors()[key].nan_to_num(-7)), key


def test_encoder_errors() -> None:
    schema = CTRSchema(format="table", categorical=("a",))
    with pytest.raises(RuntimeError, match="fit"):
        CTREncoder(schema).transform(chunk_of({"a": ["x"]}))
    with pytest.raises(ValueError, match="hash_fields"):
        CTREncoder(schema, EncoderConfig(hash_fields=("b",)))
    with pytest.raises(ValueError, match="no column 'a'"):
        CTREncoder(schema).fit([chunk_of({"b": ["x"]})])
    with pytest.raises(ValueError, match="not a CTR encoder"):
        CTREncoder.from_dict({"format": "something else"})
    with pytest.raises(ValueError, match="min_count"):
        EncoderConfig(min_count=0)


# ---------------------------------------------------------------------- batches
def test_batch_tensors_index_cat_and_loader() -> None:
    encoder, _ = fit_encoder(FIXTURES / "cvr_sample.txt", CVR_SCHEMA)
    batches = list(iter_encoded(FIXTURES / "cvr_sample.txt", encoder, chunk_rows=2))
    assert [b.num_rows for b in batches] == [2, 2]
    whole = CTRBatch.cat(batches)
    reference, _ = encode_file(FIXTURES / "cvr_sample.txt", encoder)
    for key, tensor in reference.to_tensors().items():
        assert torch.equal(whole.to_tensors()[key], tensor), key
    # the second chunk's f10 lists were 1 long; re-padded to the longest (3)
    assert batches[1].multi_ids[0].shape == (2, 1) and whole.multi_ids[0].shape == (4, 3)
    sub = whole.index(torch.tensor([1, 3]))
    assert sub.multi_ids[0].shape == (2, 1) and sub.labels.tolist() == [0, 0]
    assert torch.equal(CTRBatch.from_tensors(whole.to_tensors()).categorical, whole.categorical)
    loader = TensorLoader(whole.to_tensors(), batch_size=3, shuffle=True, seed=0)
    rows = 0
    for tensors in loader:
        batch = CTRBatch.from_tensors(tensors)
        assert batch.categorical.shape[1] == 3 and len(batch.multi_ids) == 2
        rows += batch.num_rows
    assert rows == 4


def test_data_specs_set_every_field() -> None:
    """`CTRFeatures` defaults to a model-side example; data code never relies on them."""
    import ast
    import dataclasses

    from perceptrons.ctr.features import CTRFeatures

    fields = {f.name for f in dataclasses.fields(CTRFeatures)}
    root = Path(__file__).resolve().parents[2] / "perceptrons" / "ctr"
    calls = []
    for path in sorted([*(root / "io").rglob("*.py"), root / "synthetic.py"]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "CTRFeatures":
                calls.append(path.name)
                given = {k.arg for k in node.keywords}
                assert given == fields, f"{path.name}:{node.lineno}: missing {fields - given}"
    assert sorted(calls) == ["encoding.py", "synthetic.py"]
