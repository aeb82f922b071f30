"""The fast CTR readers and encoder against their references, on the fixtures and on seeded
random files (property style).

Readers: `iter_chunks` (pyarrow blocks, a block with anything unusual re-parsed in Python)
must give exactly the rows, labels, types, values, line numbers, errors and statistics of
`python_chunks`, the line-by-line Python parser, whatever the chunk and block sizes.
Encoder: the vectorised `CTREncoder` must give the vocabularies and ids of the reference
encoder below (the previous implementation: `collections.Counter`, a dict lookup and
`zlib.crc32` per value).
"""

from __future__ import annotations

import math
import threading
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from perceptrons.ctr import (
    MISSING_ID,
    NUM_SPECIAL_IDS,
    OOV_ID,
    CTREncoder,
    CTRSchema,
    EncoderConfig,
    MalformedRowError,
    RawChunk,
    ReadStats,
    SyntheticCTRConfig,
    SyntheticCTRTask,
    criteo_schema,
    cvr_schema,
    iter_chunks,
    read_file,
)
from perceptrons.ctr.io import readers
from perceptrons.ctr.io.encoding import CRITEO_MIN_COUNT
from perceptrons.ctr.io.fields import crc32_strings
from perceptrons.ctr.io.schema import Columns, object_array
from perceptrons.ctr.io.text import python_chunks

FIXTURES = Path(__file__).parent / "fixtures"
TABLE_SCHEMA = CTRSchema(
    format="table",
    label="label",
    categorical=("user_id", "age", "city", "zip", "device_hash", "comment"),
    numeric=("price",),
    multi_valued=("tags",),
    na_values=("NA",),
)
CVR_SCHEMA = cvr_schema(fields=(1, 2, 3, 10, 25), multi_valued=(10, 25))


# ---------------------------------------------------------------------- helpers
def _cell(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def rows_of(chunk: RawChunk) -> dict[str, Any]:
    """Everything a chunk holds, as plain Python values (NaN -> None)."""
    out: dict[str, Any] = {
        "lines": chunk.line_numbers.tolist(),
        "labels": [_cell(v) for v in chunk.labels.tolist()],
        "types": chunk.types.tolist(),
        "row_ids": None if chunk.row_ids is None else chunk.row_ids.tolist(),
    }
    for name in chunk.categorical:
        out[f"c:{name}"] = list(chunk.categorical[name])
    for name in chunk.numeric:
        out[f"n:{name}"] = [_cell(v) for v in chunk.numeric[name].tolist()]
    for name in chunk.multi_valued:
        out[f"m:{name}"] = chunk.multi_lists(name)
    return out


def outcome(read: Any, path: Path, schema: CTRSchema, **options: Any) -> dict[str, Any]:
    """Rows and statistics of a read, or the error it raised (type, message, attributes)."""
    stats = ReadStats()
    try:
        chunks = list(read(path, schema, stats=stats, **options))
    except (MalformedRowError, OverflowError) as err:
        attrs = [getattr(err, a, None) for a in ("path", "line", "column", "column_name")]
        return {"error": type(err).__name__, "message": str(err), "attrs": attrs}
    sizes = [c.num_rows for c in chunks]
    rows = rows_of(RawChunk.concat(chunks)) if chunks else None
    return {"rows": rows, "sizes": sizes, "stats": stats.to_dict()}


def python_read(path: Path, schema: CTRSchema, *, stats: ReadStats, **options: Any) -> Any:
    return python_chunks(
        Path(path),
        schema,
        options.get("chunk_rows", 65_536),
        options.get("skip_bad_rows", False),
        options.get("require_label", True),
        stats,
    )


def assert_same(path: Path, schema: CTRSchema, block_bytes: int | None = None, **options: Any):
    expected = outcome(python_read, path, schema, **options)
    with pytest.MonkeyPatch.context() as patch:
        if block_bytes is not None:
            patch.setattr(readers, "_block_bytes", lambda rows: block_bytes)
        got = outcome(iter_chunks, path, schema, **options)
    assert got == expected, (path.name, options, block_bytes)
    return got


# ---------------------------------------------------------------------- fixtures
def _fixture_schema(name: str) -> CTRSchema:
    if name.startswith("criteo"):
        return criteo_schema()
    if name.startswith("table"):
        return TABLE_SCHEMA
    return cvr_schema() if "sample" not in name else CVR_SCHEMA


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.iterdir()))
def test_every_fixture_reads_like_the_python_parser(name: str) -> None:
    path, schema = FIXTURES / name, _fixture_schema(name)
    for skip in (False, True):
        for chunk_rows, block in ((65_536, None), (2, None), (3, 40), (1, 300)):
            assert_same(path, schema, block, chunk_rows=chunk_rows, skip_bad_rows=skip)
    if name.startswith("criteo_sample"):
        assert_same(path, schema, require_label=False)


def test_clean_files_take_the_pyarrow_path(tmp_path: Path) -> None:
    """Clean Criteo and table files are read by pyarrow (columns stay pyarrow arrays); a block
    with a malformed row is re-read in Python, and only that block."""
    import pyarrow as pa

    chunk, _ = read_file(FIXTURES / "criteo_sample.txt", criteo_schema())
    assert isinstance(chunk.categorical, Columns)
    assert isinstance(chunk.categorical.raw("C1"), (pa.Array, pa.ChunkedArray))
    table, _ = read_file(FIXTURES / "table_sample.csv", TABLE_SCHEMA)  # with quoted cells
    assert isinstance(table.categorical.raw("comment"), (pa.Array, pa.ChunkedArray))
    lines = (FIXTURES / "criteo_sample.txt").read_bytes().splitlines(keepends=True)
    path = tmp_path / "mixed.txt"
    path.write_bytes(b"".join(lines * 3 + [lines[0].replace(b"\t", b"\tx", 1)] + lines * 3))
    fallbacks = []
    python_rows = readers.python_rows

    def counted(*args: Any, **kwargs: Any) -> Any:
        fallbacks.append(args[1])  # the first line of the block
        return python_rows(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(readers, "_block_bytes", lambda rows: len(b"".join(lines)))  # 4 rows
        patch.setattr(readers, "python_rows", counted)
        chunks = list(iter_chunks(path, criteo_schema(), chunk_rows=4, skip_bad_rows=True))
    assert [c.num_rows for c in chunks] == [4, 4, 4, 4, 4, 4]
    assert fallbacks == [13]  # the block of lines 13-16 only


# ---------------------------------------------------------------------- random Criteo files
NUMBER_TOKENS = [
    "", "0", "-1", "12", "1e5", "+3", ".5", "5.", "-0", "007", " 12", "12 ", "1_000", "inf",
    "-inf", "nan", "NaN", "1e400", "0x10", "\u0661\u0662", "12x", "--1", "1.2.3", "e5",
]  # fmt: skip
LABEL_TOKENS = ["0", "1", "", "2", "1.0", "0.0", " 1", "true", "1e0", "-0", "01"]
CAT_TOKENS = [
    b"68fd1e64", b"287e684f", b"", b'"q"', b'"a', b"\xc3\xa9", b"a\x00b", b"a\rb", b"\xff",
    b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\xef\xbb\xbfx", b"x y", b"\\",
]  # fmt: skip
WHOLE_LINES = [b"", b"\r", b"\t" * 39, b"\t" * 38, b"\xef\xbb\xbf", b"1\t2", b"  "]


def random_criteo(rng: np.random.Generator, rows: int, bad: float) -> bytes:
    lines = []
    for _ in range(rows):
        label = "1" if rng.random() < 0.3 else "0"
        ints = [str(int(v)) if rng.random() > 0.2 else "" for v in rng.integers(-5, 10**5, 13)]
        cats = [
            f"{int(v):08x}".encode() if rng.random() > 0.2 else b"" for v in rng.integers(0, 40, 26)
        ]
        parts = [label.encode(), *(i.encode() for i in ints), *cats]
        if rng.random() < bad:
            kind = rng.integers(0, 6)
            if kind == 0:
                parts[rng.integers(1, 14)] = rng.choice(NUMBER_TOKENS).encode()
            elif kind == 1:
                parts[0] = rng.choice(LABEL_TOKENS).encode()
            elif kind == 2:
                parts[rng.integers(14, 40)] = CAT_TOKENS[rng.integers(len(CAT_TOKENS))]
            elif kind == 3:
                del parts[rng.integers(0, 40)]  # 39 columns: unlabelled or malformed
            elif kind == 4:
                parts.append(b"extra")
            else:
                lines.append(WHOLE_LINES[rng.integers(len(WHOLE_LINES))])
                continue
        lines.append(b"\t".join(parts))
    ending = b"\r\n" if rng.random() < 0.3 else b"\n"
    data = ending.join(lines) + (ending if rng.random() < 0.8 else b"")
    if rng.random() < 0.2:
        data = b"\xef\xbb\xbf" + data
    return data


@pytest.mark.parametrize("seed", range(12))
def test_random_criteo_files_read_like_the_python_parser(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    path = tmp_path / "random.txt"
    path.write_bytes(random_criteo(rng, int(rng.integers(1, 80)), bad=[0.0, 0.03, 0.2][seed % 3]))
    for _ in range(3):
        options = {
            "chunk_rows": int(rng.choice([1, 3, 16, 1000])),
            "skip_bad_rows": bool(rng.random() < 0.6),
            "require_label": bool(rng.random() < 0.7),
        }
        block = int(rng.choice([1, 37, 300, 5000, 1 << 20]))
        assert_same(path, criteo_schema(), block, **options)


def test_a_clean_random_criteo_file_is_read_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(99)
    path = tmp_path / "clean.txt"
    path.write_bytes(random_criteo(rng, 3000, bad=0.0))
    got = assert_same(path, criteo_schema(), 20_000, chunk_rows=1000)
    assert got["sizes"] == [1000, 1000, 1000] and got["stats"]["skipped"] == 0


# ---------------------------------------------------------------------- random tables
TABLE_HEADER = b"label,user,price,tags,kind,extra"
TABLE_RANDOM_SCHEMA = CTRSchema(
    format="table",
    label="label",
    categorical=("user", "extra"),
    numeric=("price",),
    multi_valued=("tags",),
    type_column="kind",
    na_values=("NA",),
)
TABLE_CELLS = {
    "label": [b"0", b"1", b"1", b"0", b"", b"NA", b"2", b"1.0", b'"1"'],
    "user": [b"u1", b"u2", b"", b"NA", b'"q,uoted"', b'"a""b"', b'""', b"\xc3\xa9", b" sp"],
    "price": [b"1.5", b"", b"NA", b"3", b"-2e3", b"x", b"inf", b" 4", b'"7"', b"nan"],
    "tags": [b"a|b", b"", b"|a||b|", b"NA", b'"x|y"', b"a", b"b|c|a"],
    "kind": [b"0", b"1", b"2", b"", b"07", b"x", b"-1", b"99999999999999999999"],
    "extra": [b"e", b"", b'mid"quote', b'"a,b"', b'"bad"x', b'"open', b"\xff", b'"a,b",c', b"a\rb"],
}


def random_table(rng: np.random.Generator, rows: int, bad: float) -> bytes:
    columns = TABLE_HEADER.split(b",")
    lines = [TABLE_HEADER]
    for _ in range(rows):
        cells = []
        for name in columns:
            options = TABLE_CELLS[name.decode()]
            good = options[: 4 if name != b"user" else 7]
            pick = options if rng.random() < bad else good
            cells.append(pick[rng.integers(len(pick))])
        if rng.random() < bad / 3:
            cells = cells[:-1] if rng.random() < 0.5 else [*cells, b"more"]
        if rng.random() < bad / 3:
            lines.append(b"")
        lines.append(b",".join(cells))
    ending = b"\r\n" if rng.random() < 0.3 else b"\n"
    data = ending.join(lines) + ending
    return (b"\xef\xbb\xbf" + data) if rng.random() < 0.2 else data


@pytest.mark.parametrize("seed", range(10))
def test_random_tables_read_like_the_python_parser(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    path = tmp_path / "random.csv"
    path.write_bytes(random_table(rng, int(rng.integers(1, 60)), bad=[0.0, 0.05, 0.3][seed % 3]))
    for _ in range(3):
        options = {
            "chunk_rows": int(rng.choice([1, 4, 50, 1000])),
            "skip_bad_rows": bool(rng.random() < 0.6),
        }
        assert_same(path, TABLE_RANDOM_SCHEMA, int(rng.choice([1, 60, 500, 1 << 20])), **options)
    # a table without its label and type columns: unlabelled rows
    unlabelled = CTRSchema(format="table", categorical=("user",), multi_valued=("tags",))
    assert_same(path, unlabelled, 200, require_label=False, skip_bad_rows=True)


def test_tab_separated_tables_and_long_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    long = "x" * 5000
    path.write_text(f'label\ta\tb\n1\t{long}\t2\n0\t"q\tr"\t3\n\n1\t{long[:7]}\t\n')
    schema = CTRSchema(format="table", categorical=("a",), numeric=("b",), delimiter="\t")
    got = assert_same(path, schema, 64, chunk_rows=2)
    assert got["rows"]["c:a"] == [long, "q\tr", long[:7]] and got["stats"]["blank_lines"] == 1


def test_synthetic_tables_read_like_the_python_parser(tmp_path: Path) -> None:
    task = SyntheticCTRTask(SyntheticCTRConfig(max_cardinality=500, calibration_rows=500))
    data = task.sample(400, seed=3)
    schema = data.write(tmp_path / "s.csv", "table")
    got = assert_same(tmp_path / "s.csv", schema, 4000, chunk_rows=128)
    assert got["sizes"] == [128, 128, 128, 16]
    assert got["rows"]["types"] == data.types.tolist()


# ---------------------------------------------------------------------- read-ahead thread
def test_read_ahead_stops_when_the_reader_is_closed(tmp_path: Path) -> None:
    path = tmp_path / "clean.txt"
    path.write_bytes(random_criteo(np.random.default_rng(5), 500, bad=0.0))
    before = threading.active_count()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(readers, "_block_bytes", lambda rows: 2000)
        chunks = iter_chunks(path, criteo_schema(), chunk_rows=10)
        first = next(chunks)
        chunks.close()  # mid-file
    assert first.num_rows == 10 and threading.active_count() == before
    # an error after good blocks arrives after their chunks, as in the Python parser
    lines = path.read_bytes().splitlines(keepends=True)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"".join(lines[:300] + [b"oops\n"] + lines[300:]))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(readers, "_block_bytes", lambda rows: 2000)
        seen = []
        with pytest.raises(MalformedRowError, match=r"line 301, column 2 \(I1\): expected 40"):
            for chunk in iter_chunks(bad, criteo_schema(), chunk_rows=100):
                seen.append(chunk.num_rows)
    assert seen == [100, 100, 100] and threading.active_count() == before


# ---------------------------------------------------------------------- the reference encoder
def reference_vocab(chunks: list[RawChunk], name: str, min_count: int) -> list[str]:
    """The previous implementation: a Counter, then (-count, value) order."""
    counter: Counter = Counter()
    for chunk in chunks:
        if name in chunk.categorical:
            counter.update(chunk.categorical[name])
        else:
            counter.update(chunk.multi_valued[name][0])
    counter.pop(None, None)
    kept = [(c, v) for v, c in counter.items() if c >= min_count]
    kept.sort(key=lambda cv: (-cv[0], cv[1]))
    return [v for _, v in kept]


def reference_ids(values: np.ndarray, vocab: list[str] | None, field: str, buckets: int) -> list:
    if vocab is None:
        seed = zlib.crc32(field.encode("utf-8"))
        return [
            MISSING_ID if v is None else NUM_SPECIAL_IDS + zlib.crc32(v.encode(), seed) % buckets
            for v in values
        ]
    lookup = {v: i + NUM_SPECIAL_IDS for i, v in enumerate(vocab)}
    return [MISSING_ID if v is None else lookup.get(v, OOV_ID) for v in values]


def assert_encoder_matches_reference(chunks: list[RawChunk], schema: CTRSchema, config) -> None:
    encoder = CTREncoder(schema, config).fit(chunks)
    state = encoder.to_dict()
    min_count = encoder.config.min_count
    for k, name in enumerate(schema.categorical):
        hashed = state["categorical"][name]["kind"] == "hash"
        vocab = None if hashed else reference_vocab(chunks, name, min_count)
        if not hashed:
            assert state["categorical"][name]["values"] == vocab, name
        for chunk in chunks:
            ids = encoder.transform(chunk).categorical[:, k].tolist()
            expected = reference_ids(chunk.categorical[name], vocab, name, config.hash_buckets)
            assert ids == expected, name
    for k, name in enumerate(schema.multi_valued):
        hashed = state["multi_valued"][name]["kind"] == "hash"
        vocab = None if hashed else reference_vocab(chunks, name, min_count)
        for chunk in chunks:
            batch = encoder.transform(chunk)
            ids, lengths = batch.multi_ids[k], batch.multi_lengths[:, k]
            got = [row[:n] for row, n in zip(ids.tolist(), lengths.tolist(), strict=True)]
            for lst, row in zip(chunk.multi_lists(name), got, strict=True):
                want = reference_ids(object_array(lst), vocab, name, config.hash_buckets)
                assert row == (want or [MISSING_ID]), name


@pytest.mark.parametrize("min_count", [1, 2, 5])
@pytest.mark.parametrize("encoding", ["vocab", "hash"])
def test_encoder_matches_the_reference_on_fixtures(min_count: int, encoding: str) -> None:
    config = EncoderConfig(min_count=min_count, categorical_encoding=encoding, hash_buckets=97)
    for path, schema in (
        (FIXTURES / "criteo_sample.txt", criteo_schema()),
        (FIXTURES / "table_sample.csv", TABLE_SCHEMA),
        (FIXTURES / "cvr_sample.txt", CVR_SCHEMA),
    ):
        chunks = list(iter_chunks(path, schema, chunk_rows=3))
        assert_encoder_matches_reference(chunks, schema, config)


@pytest.mark.parametrize("seed", range(3))
def test_encoder_matches_the_reference_on_synthetic_data(tmp_path: Path, seed: int) -> None:
    task = SyntheticCTRTask(
        SyntheticCTRConfig(max_cardinality=2000, calibration_rows=500, seed=seed)
    )
    data = task.sample(600, seed=seed)
    for fmt in ("cvr", "table"):
        schema = data.write(tmp_path / f"s.{fmt}", fmt)
        chunks = list(iter_chunks(tmp_path / f"s.{fmt}", schema, chunk_rows=250))
        for config in (
            EncoderConfig(min_count=1),
            EncoderConfig(min_count=3, hash_fields=(schema.categorical[0],), hash_buckets=50),
        ):
            assert_encoder_matches_reference(chunks, schema, config)


def test_encoder_matches_the_reference_on_random_strings() -> None:
    rng = np.random.default_rng(7)
    alphabet = ["a", "b", "é", "中", "😀", "\x00", " ", "", "ab", "zz"]
    values = [
        None if rng.random() < 0.1 else "".join(rng.choice(alphabet, rng.integers(0, 6)))
        for _ in range(3000)
    ]
    schema = CTRSchema(format="table", categorical=("a",))
    train = RawChunk(
        line_numbers=np.arange(3000),
        labels=np.zeros(3000, dtype=np.float32),
        categorical={"a": object_array(values)},
        numeric={},
        multi_valued={},
        types=np.full(3000, -1),
    )
    small = train.slice(0, 10)  # a vocabulary much larger than the chunk
    for config in (
        EncoderConfig(min_count=1),
        EncoderConfig(min_count=4),
        EncoderConfig(categorical_encoding="hash", hash_buckets=2**20 + 7),
    ):
        assert_encoder_matches_reference([train, small], schema, config)


def test_vectorised_crc32_is_zlib_crc32() -> None:
    rng = np.random.default_rng(3)
    values = [
        bytes(rng.integers(0, 256, rng.integers(0, 40))).decode("latin-1") for _ in range(500)
    ]
    values += ["", "68fd1e64", "x" * 300]
    for seed in (0, 1, zlib.crc32(b"C1"), 2**32 - 1):
        got = crc32_strings(object_array(values), seed).tolist()
        assert got == [zlib.crc32(v.encode("utf-8"), seed) for v in values]
    fixed = object_array([f"{i:08x}" for i in range(1000)])  # one width: the fast path
    assert crc32_strings(fixed, 5).tolist() == [zlib.crc32(v.encode(), 5) for v in fixed]


def test_hashed_ids_are_pinned() -> None:
    schema = CTRSchema(format="table", categorical=("C1",), multi_valued=("tags",))
    encoder = CTREncoder(schema, EncoderConfig(categorical_encoding="hash", hash_buckets=1000))
    chunk = RawChunk(
        line_numbers=np.arange(4),
        labels=np.zeros(4, dtype=np.float32),
        categorical={"C1": object_array(["68fd1e64", "", "é中", None])},
        numeric={},
        multi_valued={"tags": (object_array(["68fd1e64", "x" * 50]), np.array([0, 1, 1, 2, 2]))},
        types=np.full(4, -1),
    )
    batch = encoder.fit([chunk]).transform(chunk)
    assert batch.categorical[:, 0].tolist() == [689, 926, 962, MISSING_ID]
    assert batch.multi_ids[0][:, 0].tolist() == [274, MISSING_ID, 141, MISSING_ID]


# ---------------------------------------------------------------------- min_count and summary
def test_min_count_defaults_to_10_for_criteo_and_1_otherwise() -> None:
    assert EncoderConfig().min_count is None and CRITEO_MIN_COUNT == 10
    assert CTREncoder(criteo_schema()).config.min_count == 10
    assert CTREncoder(TABLE_SCHEMA).config.min_count == 1
    assert CTREncoder(CVR_SCHEMA).config.min_count == 1
    assert CTREncoder(criteo_schema(), EncoderConfig(min_count=2)).config.min_count == 2
    with pytest.raises(ValueError, match="min_count"):
        EncoderConfig(min_count=0)


def test_summary_lists_sizes_and_oov_shares(tmp_path: Path) -> None:
    values = ["a"] * 5 + ["b"] * 2 + ["c"] + [None] * 2  # c is OOV with min_count 2
    chunk = RawChunk(
        line_numbers=np.arange(10),
        labels=np.zeros(10, dtype=np.float32),
        categorical={"x": object_array(values), "h": object_array(["v"] * 10)},
        numeric={"n": np.array([1.0, np.nan] * 5)},
        multi_valued={"m": (object_array(["p", "q", "p"]), np.array([0, 2, 3] + [3] * 8))},
        types=np.full(10, -1),
    )
    schema = CTRSchema(format="table", categorical=("x", "h"), numeric=("n",), multi_valued=("m",))
    config = EncoderConfig(min_count=2, hash_fields=("h",), hash_buckets=16)
    encoder = CTREncoder(schema, config).fit([chunk])
    lines = encoder.summary()
    assert lines[0].split() == ["field", "kind", "ids", "values", "OOV", "missing"]
    by_field = {line.split()[0]: line for line in lines[1:]}
    assert by_field.keys() == {"x", "h", "n", "m"}
    assert "vocab" in by_field["x"] and "2 values seen >= 2 times" in by_field["x"]
    assert by_field["x"].split()[-2:] == ["12.5%", "20.0%"]  # 1 of 8 values; 2 of 10 rows
    assert "16 buckets" in by_field["h"] and by_field["h"].split()[-2:] == ["-", "0.0%"]
    assert by_field["n"].split()[-1] == "50.0%"
    assert by_field["m"].split()[-2:] == ["33.3%", "80.0%"]  # q once; 8 of 10 rows empty
    encoder.save(tmp_path / "e.json")
    assert CTREncoder.load(tmp_path / "e.json").summary() == lines
    state = encoder.to_dict()
    del state["fit_stats"]  # an encoder saved before these counts were kept
    assert CTREncoder.from_dict(state).summary()[1].split()[-2:] == ["?", "?"]
