"""Readers of CTR files (`perceptrons.ctr`): every format, type inference, malformed rows,
invalid UTF-8 and the streaming memory bound, on the small fixtures in ``tests/ctr/fixtures/``.
"""

from __future__ import annotations

import io
import json
import math
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from perceptrons.ctr import (
    CRITEO_CATEGORICAL,
    CTRDataError,
    CTREncoder,
    CTRSchema,
    EncoderConfig,
    MalformedRowError,
    ReadStats,
    criteo_schema,
    cvr_schema,
    infer_schema,
    iter_chunks,
    print_schema_inference,
    read_file,
)

FIXTURES = Path(__file__).parent / "fixtures"

TABLE_SCHEMA = CTRSchema(
    format="table",
    label="label",
    categorical=("user_id", "age", "city", "zip", "device_hash", "comment"),
    numeric=("price",),
    multi_valued=("tags",),
    na_values=("NA",),
)


# ---------------------------------------------------------------------- each format
def test_criteo_values_and_missing_fields() -> None:
    chunk, stats = read_file(FIXTURES / "criteo_sample.txt", criteo_schema())
    assert stats.to_dict() == {
        "rows": 4,
        "skipped": 0,
        "blank_lines": 0,
        "ignored_pairs": 0,
        "errors": [],
    }
    assert chunk.labels.dtype == np.float32 and chunk.labels.tolist() == [0, 1, 0, 1]
    assert chunk.line_numbers.tolist() == [1, 2, 3, 4]
    assert chunk.numeric["I1"].tolist()[:2] == [1.0, 2.0]
    assert math.isnan(chunk.numeric["I1"][2]) and math.isnan(chunk.numeric["I12"][0])
    assert chunk.numeric["I5"].tolist() == [1382.0, 102.0, 767.0, 4392.0]
    assert chunk.numeric["I2"][3] == 893.0 and math.isnan(chunk.numeric["I3"][3])
    assert set(chunk.categorical) == set(CRITEO_CATEGORICAL) and not chunk.multi_valued
    assert chunk.categorical["C1"].tolist() == ["68fd1e64", "68fd1e64", "287e684f", "68fd1e64"]
    assert chunk.categorical["C22"].tolist() == [None, None, "ad3062eb", None]
    assert chunk.categorical["C26"].tolist() == ["9727dd16", "731c3655", None, None]
    assert chunk.types.tolist() == [-1] * 4 and chunk.row_ids is None


def test_criteo_unlabelled_rows_need_require_label_false(tmp_path: Path) -> None:
    lines = (FIXTURES / "criteo_sample.txt").read_text().splitlines()
    path = tmp_path / "test.txt"
    path.write_text("\n".join(line.split("\t", 1)[1] for line in lines) + "\n")
    with pytest.raises(MalformedRowError, match=r"line 1, column 40 \(C26\): expected 40"):
        read_file(path, criteo_schema())
    chunk, _ = read_file(path, criteo_schema(), require_label=False)
    labelled, _ = read_file(FIXTURES / "criteo_sample.txt", criteo_schema())
    assert np.isnan(chunk.labels).all()
    for name in ("I1", "I5", "I13"):
        np.testing.assert_array_equal(chunk.numeric[name], labelled.numeric[name])
    assert chunk.categorical["C26"].tolist() == labelled.categorical["C26"].tolist()


def test_cvr_labels_types_and_fields() -> None:
    schema = cvr_schema(fields=(1, 2, 3, 10, 25), multi_valued=(10, 25))
    chunk, stats = read_file(FIXTURES / "cvr_sample.txt", schema)
    assert chunk.row_ids.tolist() == ["1001", "1002", "1003", "1004"]
    assert chunk.types.tolist() == [0, 1, 2, 2]  # the column holding 0/1 is the type
    assert chunk.labels.tolist() == [1, 0, 1, 0]
    assert chunk.categorical["f1"].tolist() == ["11", "11", "12", "13"]
    assert chunk.categorical["f3"].tolist() == ["33", "34", "35", "33"]
    assert chunk.multi_lists("f10") == [["401", "402", "403"], ["401"], [], ["404"]]
    assert chunk.multi_lists("f25") == [["5"], ["6", "7"], [], ["8"]]
    assert stats.ignored_pairs == 1  # 99:27, a field outside the schema
    assert "1 pairs of unknown fields ignored" in stats.summary()


def test_cvr_rows_without_a_label(tmp_path: Path) -> None:
    lines = (FIXTURES / "cvr_sample.txt").read_text().splitlines()
    path = tmp_path / "unlabelled.txt"
    path.write_text("\n".join(["2001\t-\t-\t-\t11:1 22:2", *lines[1:]]) + "\n")
    with pytest.raises(MalformedRowError, match=r"line 1, column 2 \(t1\): no label"):
        read_file(path, cvr_schema())
    chunk, _ = read_file(path, cvr_schema(), require_label=False)
    assert math.isnan(chunk.labels[0]) and chunk.types[0] == -1
    assert chunk.labels[1:].tolist() == [0, 1, 0]


def test_table_values_quotes_missing_and_multi_values() -> None:
    chunk, stats = read_file(FIXTURES / "table_sample.csv", TABLE_SCHEMA)
    assert stats.rows == 24 and chunk.line_numbers[0] == 2  # line 1 is the header
    assert chunk.labels[:3].tolist() == [1, 0, 0]
    assert chunk.categorical["user_id"][:3].tolist() == ["130", "102", "118"]
    assert chunk.categorical["comment"][:3].tolist() == ["ok", None, "hello, world"]  # NA, quotes
    assert chunk.categorical["zip"][0] == "01000"
    assert chunk.categorical["city"][5] is None
    assert chunk.numeric["price"][0] == 40.09 and math.isnan(chunk.numeric["price"][3])
    tags = chunk.multi_lists("tags")
    assert tags[0] == ["sport", "news", "tech"] and tags[4] == ["music"] and tags[7] == []


def test_table_reader_handles_bom_crlf_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"\xef\xbb\xbflabel,a,b\r\n1,x,2.5\r\n\r\n0,,3\r\n")
    schema = CTRSchema(format="table", categorical=("a",), numeric=("b",))
    chunk, stats = read_file(path, schema)
    assert chunk.labels.tolist() == [1, 0] and chunk.categorical["a"].tolist() == ["x", None]
    assert chunk.numeric["b"].tolist() == [2.5, 3.0] and chunk.line_numbers.tolist() == [2, 4]
    assert stats.blank_lines == 1


def test_table_header_must_hold_the_schema_columns() -> None:
    schema = CTRSchema(format="table", categorical=("city", "country"))
    with pytest.raises(CTRDataError, match=r"table_sample.csv: line 1: column 'country'"):
        read_file(FIXTURES / "table_sample.csv", schema)


def test_parquet_reads_like_csv(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    csv_chunk, _ = read_file(FIXTURES / "table_sample.csv", TABLE_SCHEMA)
    table = pa.table(
        {
            "label": pa.array(csv_chunk.labels.astype(np.int64)),
            "user_id": pa.array([int(v) for v in csv_chunk.categorical["user_id"]]),
            "price": pa.array([None if math.isnan(v) else v for v in csv_chunk.numeric["price"]]),
            "tags": pa.array(csv_chunk.multi_lists("tags"), type=pa.list_(pa.string())),
            "city": pa.array(csv_chunk.categorical["city"].tolist()),
        }
    )
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=10)
    schema = CTRSchema(
        format="table",
        categorical=("user_id", "city"),
        numeric=("price",),
        multi_valued=("tags",),
    )
    chunks = list(iter_chunks(path, schema, chunk_rows=7))
    assert [c.num_rows for c in chunks] and max(c.num_rows for c in chunks) <= 7
    chunk, stats = read_file(path, schema)
    assert stats.rows == 24 and chunk.line_numbers.tolist() == list(range(1, 25))
    np.testing.assert_array_equal(chunk.labels, csv_chunk.labels)
    np.testing.assert_array_equal(chunk.numeric["price"], csv_chunk.numeric["price"])
    assert chunk.categorical["user_id"].tolist() == csv_chunk.categorical["user_id"].tolist()
    assert chunk.categorical["city"].tolist() == csv_chunk.categorical["city"].tolist()
    assert chunk.multi_lists("tags") == csv_chunk.multi_lists("tags")
    inferred = infer_schema(path, label="label")
    assert inferred.schema.multi_valued == ("tags",)
    assert inferred.schema.numeric == ("price",)
    assert set(inferred.schema.categorical) == {"user_id", "city"}


def test_parquet_bad_label_names_row_and_column(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"label": [0, 1, 2, 1], "a": ["x", "y", "z", "w"]}), path)
    schema = CTRSchema(format="table", categorical=("a",))
    with pytest.raises(MalformedRowError, match=r"row 3, column 1 \(label\): expected a label"):
        read_file(path, schema)
    chunk, stats = read_file(path, schema, skip_bad_rows=True)
    assert chunk.categorical["a"].tolist() == ["x", "y", "w"] and stats.skipped == 1


def test_parquet_without_pyarrow_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "t.parquet"
    path.write_bytes(b"PAR1" + bytes(16) + b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow -> ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ImportError, match="pip install 'pyarrow"):
        iter_chunks(path, CTRSchema(format="table", categorical=("a",)))


def test_cvr_field_ids_with_leading_zeros(tmp_path: Path) -> None:
    path = tmp_path / "z.txt"
    path.write_text("1\t1\t-\t-\t007:01 5:002\n")
    chunk, _ = read_file(path, cvr_schema(fields=(1, 2), multi_valued=()))
    # field ids are numbers; feature ids are kept as written
    assert chunk.categorical["f1"].tolist() == ["007"] and chunk.categorical["f2"].tolist() == ["5"]


def test_chunks_are_bounded_and_concatenate_to_the_whole_file() -> None:
    whole, _ = read_file(FIXTURES / "table_sample.csv", TABLE_SCHEMA)
    chunks = list(iter_chunks(FIXTURES / "table_sample.csv", TABLE_SCHEMA, chunk_rows=5))
    assert [c.num_rows for c in chunks] == [5, 5, 5, 5, 4]
    assert np.concatenate([c.line_numbers for c in chunks]).tolist() == whole.line_numbers.tolist()
    assert sum((c.multi_lists("tags") for c in chunks), []) == whole.multi_lists("tags")


# ---------------------------------------------------------------------- type inference
def test_table_type_inference_rules_and_report() -> None:
    inference = infer_schema(FIXTURES / "table_sample.csv", label="label", na_values=("NA",))
    kinds = {c.name: (c.kind, c.reason) for c in inference.columns}
    assert kinds["label"][0] == "label"
    assert kinds["user_id"] == ("categorical", "integer ids (the name ends in 'id')")
    assert kinds["age"][0] == "categorical" and "only 5 distinct" in kinds["age"][1]
    assert kinds["price"][0] == "numeric"
    assert kinds["city"][0] == "categorical" and "non-numeric" in kinds["city"][1]
    assert kinds["zip"] == ("categorical", "integer codes with leading zeros")
    assert kinds["tags"][0] == "multi_valued"
    assert kinds["device_hash"][0] == "categorical" and "hashed ids" in kinds["device_hash"][1]
    schema = inference.schema
    assert schema.numeric == ("price",) and schema.multi_valued == ("tags",)
    assert schema.categorical == ("user_id", "age", "city", "zip", "device_hash", "comment")
    price = next(c for c in inference.columns if c.name == "price")
    assert (price.num_values, price.num_missing) == (22, 2)
    out = io.StringIO()
    print_schema_inference(inference, file=out)
    text = out.getvalue()
    assert json.loads(json.dumps(inference.to_dict()))["schema"] == schema.to_dict()
    assert "table_sample.csv" in text and "24 rows examined" in text
    assert any(line.split()[:2] == ["price", "numeric"] for line in text.splitlines())
    # a declaration wins over the inference, and the report says so
    declared = infer_schema(FIXTURES / "table_sample.csv", numeric=("age",), ignore=("comment",))
    kinds = {c.name: (c.kind, c.reason) for c in declared.columns}
    assert kinds["age"] == ("numeric", "declared") and kinds["comment"][0] == "ignored"
    assert "comment" not in declared.schema.feature_columns


def test_cvr_inference_finds_multi_valued_fields() -> None:
    inference = infer_schema(FIXTURES / "cvr_sample.txt", "cvr")
    schema = inference.schema
    assert schema.multi_valued == ("f10", "f25")
    assert schema.categorical == ("f1", "f2", "f3", "f27")
    assert inference.sample_rows == 4
    assert infer_schema(FIXTURES / "criteo_sample.txt", "criteo").schema == criteo_schema()


def test_inference_reads_only_the_sample(tmp_path: Path) -> None:
    rows = [f"{i % 2},{i * 0.5}" for i in range(50)] + ["1,not-a-number"]
    path = tmp_path / "t.csv"
    path.write_text("label,x\n" + "\n".join(rows) + "\n")
    schema = infer_schema(path, sample_rows=50).schema
    assert schema.numeric == ("x",)
    # the row past the sample is caught when the file is read
    with pytest.raises(MalformedRowError, match=r"line 52, column 2 \(x\): expected a number"):
        read_file(path, schema)


# ---------------------------------------------------------------------- malformed rows
MALFORMED = [
    # file, schema, line, column, column name, reason, rows left when skipped
    ("criteo_bad_columns.txt", criteo_schema(), 3, 40, "C26", "found 39", 3),
    ("criteo_bad_numeric.txt", criteo_schema(), 2, 6, "I5", "expected a number, got '12x'", 3),
    ("criteo_bad_label.txt", criteo_schema(), 4, 1, "label", "expected a label 0 or 1", 3),
    ("criteo_invalid_utf8.txt", criteo_schema(), 2, 17, "C3", "invalid UTF-8 (byte 0xff)", 3),
    ("cvr_bad_pair.txt", cvr_schema(), 3, 5, "sample_info", "pair 2 '22x:2'", 3),
    ("cvr_bad_type.txt", cvr_schema(), 2, 3, "t2", "a second type column", 3),
    ("cvr_bad_columns.txt", cvr_schema(), 4, 5, "sample_info", "found 4", 3),
    ("cvr_repeated_field.txt", cvr_schema(), 2, 5, "sample_info", "single-valued", 3),
    ("table_bad_columns.csv", TABLE_SCHEMA, 7, 10, "", "expected 9 columns", 8),
    ("table_bad_numeric.csv", TABLE_SCHEMA, 6, 4, "price", "got 'cheap'", 8),
]


@pytest.mark.parametrize(
    ("name", "schema", "line", "column", "column_name", "reason", "rows"),
    MALFORMED,
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_row_error_names_file_line_and_column(
    name: str, schema: CTRSchema, line: int, column: int, column_name: str, reason: str, rows: int
) -> None:
    path = FIXTURES / name
    with pytest.raises(MalformedRowError) as info:
        read_file(path, schema)
    err = info.value
    assert isinstance(err, ValueError)
    assert (err.path, err.line, err.column, err.column_name) == (
        str(path),
        line,
        column,
        column_name,
    )
    assert reason in err.reason
    message = str(err)
    assert message.startswith(f"{path}: line {line}, column {column}")
    assert reason in message
    # skipping: the bad row is counted and surfaced, the others are read
    stats = ReadStats()
    chunks = list(iter_chunks(path, schema, skip_bad_rows=True, stats=stats, chunk_rows=2))
    assert sum(c.num_rows for c in chunks) == stats.rows == rows
    assert stats.skipped == 1 and stats.errors == [message]
    assert line not in np.concatenate([c.line_numbers for c in chunks]).tolist()
    assert "1 malformed rows skipped" in stats.summary()


def test_invalid_utf8_in_a_table_header_and_cvr_row(tmp_path: Path) -> None:
    header = tmp_path / "h.csv"
    header.write_bytes(b"label,ci\xfety\n1,x\n")
    with pytest.raises(MalformedRowError, match=r"line 1, column 2: invalid UTF-8"):
        read_file(header, CTRSchema(format="table", categorical=("city",)))
    cvr = tmp_path / "c.txt"
    cvr.write_bytes(b"1\t1\t-\t-\t1:1\n2\t0\t-\t-\t\xc3(:1\n")
    with pytest.raises(MalformedRowError, match=r"line 2, column 5 \(sample_info\): invalid UTF-8"):
        read_file(cvr, cvr_schema())


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="chunk_rows"):
        next(iter_chunks(FIXTURES / "cvr_sample.txt", cvr_schema(), chunk_rows=0))
    with pytest.raises(FileNotFoundError, match="no such file"):
        next(iter_chunks(FIXTURES / "missing.txt", cvr_schema()))
    with pytest.raises(ValueError, match="declared twice"):
        CTRSchema(format="table", categorical=("a",), numeric=("a",))
    with pytest.raises(ValueError, match="criteo_schema"):
        CTRSchema(format="criteo", categorical=("a",))
    with pytest.raises(CTRDataError, match="column 'clicked' is not in the file"):
        infer_schema(FIXTURES / "table_sample.csv", label="clicked")


# ---------------------------------------------------------------------- streaming memory
def _write_criteo(path: Path, rows: int) -> None:
    rng = np.random.default_rng(0)
    ints = rng.integers(0, 1000, size=(rows, 13))
    cats = rng.integers(0, 50, size=(rows, 26))  # bounded vocabulary
    with path.open("w") as handle:
        for i in range(rows):
            fields = [str(i % 2), *map(str, ints[i]), *(f"{c:08x}" for c in cats[i])]
            if i % 7 == 0:
                fields[3] = ""  # a missing integer
            handle.write("\t".join(fields) + "\n")


def _peak_bytes(run: Callable[[], object]) -> int:
    """Peak memory of ``run()``: Python's (tracemalloc, numpy included) plus pyarrow's."""
    import pyarrow as pa

    pool = pa.proxy_memory_pool(pa.default_memory_pool())  # its own allocation statistics
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pool)
    tracemalloc.start()
    try:
        run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        pa.set_memory_pool(previous)
    return peak + pool.max_memory()


def _fit_and_encode(path: Path, chunk_rows: int) -> None:
    schema = criteo_schema()
    # pass 1 fits the encoder over the stream, pass 2 encodes it; standardised numerics (the
    # quantile default of Criteo also keeps a bounded sample of quantile_sample_size values)
    encoder = CTREncoder(schema, EncoderConfig(numeric_encoding="standardize")).fit(
        iter_chunks(path, schema, chunk_rows=chunk_rows)
    )
    total = 0
    for chunk in iter_chunks(path, schema, chunk_rows=chunk_rows):
        total += encoder.transform(chunk).num_rows
    assert total == encoder.num_rows_fitted


def test_streaming_memory_is_bounded_by_the_chunk(tmp_path: Path) -> None:
    small, large = tmp_path / "small.txt", tmp_path / "large.txt"
    _write_criteo(small, 400)
    _write_criteo(large, 4_000)  # 10x the rows, 40x the chunk
    _peak_bytes(lambda: _fit_and_encode(small, chunk_rows=100))  # imports and caches
    peak_small = _peak_bytes(lambda: _fit_and_encode(small, chunk_rows=100))
    peak_large = _peak_bytes(lambda: _fit_and_encode(large, chunk_rows=100))
    assert peak_large < 2 * peak_small, (peak_small, peak_large)
    # the measurement can see a reader that holds the whole file: reading it whole costs more
    peak_whole = _peak_bytes(lambda: read_file(large, criteo_schema(), chunk_rows=100))
    assert peak_whole > 3 * peak_large, (peak_whole, peak_large)
