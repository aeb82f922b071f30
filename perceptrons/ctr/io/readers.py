"""Streaming readers of CTR files: Criteo TSV, CSV/TSV/Parquet tables, CVR challenge records.

Every reader yields `RawChunk` objects of at most ``chunk_rows`` rows, so memory is bounded by
the chunk size whatever the file size (text files are read line by line in binary mode; Parquet
files batch by batch). A row that does not match its format raises `MalformedRowError` naming
file, line and column, or, with ``skip_bad_rows=True``, is skipped and counted in `ReadStats`.

Example::

    stats = ReadStats()
    for chunk in iter_chunks("train.txt", criteo_schema(), chunk_rows=65_536, stats=stats):
        ...                                   # chunk.labels: (rows,), chunk.numeric["I1"]: (rows,)
    print(stats.summary())

Parquet needs the optional dependency ``pyarrow`` (imported only when a Parquet file is read).
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from perceptrons.ctr.io.schema import (
    CRITEO_CATEGORICAL,
    CRITEO_NUMERIC,
    CTRDataError,
    CTRSchema,
    MalformedRowError,
    RawChunk,
    ReadStats,
    empty_like_schema,
    object_array,
)

__all__ = ["is_parquet", "iter_chunks", "read_file", "read_table_header", "require_pyarrow"]

UTF8_BOM = b"\xef\xbb\xbf"
_CVR_COLUMNS = ("log_id", "t1", "t2", "t3", "sample_info")


class BadField(Exception):
    """A row-level problem inside a parser: column (1-based, 0 = whole row), name, reason."""

    def __init__(self, column: int, name: str, reason: str) -> None:
        super().__init__(reason)
        self.column, self.name, self.reason = column, name, reason


# ---------------------------------------------------------------------- field parsers
def parse_label(text: str, column: int, name: str, require_label: bool) -> float:
    if text == "1":
        return 1.0
    if text == "0":
        return 0.0
    if not text:
        if require_label:
            raise BadField(column, name, "missing label")
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise BadField(column, name, f"expected a label 0 or 1, got {text!r}") from None
    if value not in (0.0, 1.0):
        raise BadField(column, name, f"expected a label 0 or 1, got {text!r}")
    return value


def parse_number(text: str, column: int, name: str) -> float:
    if not text:
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise BadField(column, name, f"expected a number, got {text!r}") from None
    if math.isinf(value):
        raise BadField(column, name, f"expected a finite number, got {text!r}")
    return value  # "nan" reads as missing


def parse_type(text: str, column: int, name: str) -> int:
    if not text:
        return -1
    if not (text.isascii() and text.isdigit()):
        raise BadField(column, name, f"expected a type id (an int >= 0), got {text!r}")
    return int(text)


# ---------------------------------------------------------------------- row parsers
class _Parser:
    """Parses one decoded line into a row tuple; `assemble` turns rows into a `RawChunk`.

    A row is ``(label, type, row_id, categorical values, numeric values, multi-valued lists)``.
    """

    delimiter = "\t"
    has_row_ids = False

    def __init__(self, schema: CTRSchema, require_label: bool) -> None:
        self.schema = schema
        self.require_label = require_label
        self.ignored = 0  # CVR pairs of unknown fields

    def parse(self, text: str) -> tuple[Any, ...]:
        raise NotImplementedError

    def column_of_byte(self, raw: bytes, offset: int) -> tuple[int, str]:
        """1-based column (and its name) holding byte ``offset`` of a raw line."""
        column = raw[:offset].count(self.delimiter.encode()) + 1
        return column, self.column_name(column)

    def column_name(self, column: int) -> str:
        return ""

    def assemble(self, rows: list[tuple[Any, ...]], lines: list[int]) -> RawChunk:
        schema, n = self.schema, len(rows)
        columns = list(zip(*rows, strict=True))
        cats = list(zip(*columns[3], strict=True)) if schema.categorical else []
        nums = list(zip(*columns[4], strict=True)) if schema.numeric else []
        multis = list(zip(*columns[5], strict=True)) if schema.multi_valued else []
        multi: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, lists in zip(schema.multi_valued, multis, strict=True):
            lengths = np.fromiter((len(v) for v in lists), dtype=np.int64, count=n)
            offsets = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(lengths, out=offsets[1:])
            multi[name] = (object_array([v for vs in lists for v in vs]), offsets)
        return RawChunk(
            line_numbers=np.asarray(lines, dtype=np.int64),
            labels=np.asarray(columns[0], dtype=np.float32),
            types=np.asarray(columns[1], dtype=np.int64),
            categorical={
                k: object_array(list(v)) for k, v in zip(schema.categorical, cats, strict=True)
            },
            numeric={
                k: np.asarray(v, dtype=np.float64)
                for k, v in zip(schema.numeric, nums, strict=True)
            },
            multi_valued=multi,
            row_ids=object_array(list(columns[2])) if self.has_row_ids else None,
        )


class _CriteoParser(_Parser):
    names = ("label", *CRITEO_NUMERIC, *CRITEO_CATEGORICAL)

    def column_name(self, column: int) -> str:
        return self.names[column - 1] if 1 <= column <= len(self.names) else ""

    def parse(self, text: str) -> tuple[Any, ...]:
        parts = text.split("\t")
        n = len(parts)
        if n == 40:
            label, shift = parse_label(parts[0], 1, "label", self.require_label), 1
        elif n == 39 and not self.require_label:  # unlabelled: I1 is the first column
            label, parts, shift = math.nan, ["", *parts], 0
        else:
            raise BadField(
                min(n, 40) + 1,
                "",
                f"expected 40 tab-separated columns (label, 13 integer, 26 categorical), found {n}",
            )
        nums = tuple(parse_number(parts[i], i + shift, self.names[i]) for i in range(1, 14))
        cats = tuple(v or None for v in parts[14:40])
        return (label, -1, None, cats, nums, ())


# sample_info of well-formed rows: featid:fieldid pairs of ASCII digits, separated by spaces
_CVR_PAIRS = re.compile(r" *(?:[0-9]+:[0-9]+(?: +|$))*")


def _check_pairs(info: str) -> None:
    """Raise `BadField` naming the first token of ``info`` that is not ``featid:fieldid``."""
    for j, token in enumerate(info.split(), 1):
        feat, sep, fieldid = token.partition(":")
        ok = sep and feat.isascii() and feat.isdigit() and fieldid.isascii() and fieldid.isdigit()
        if not ok:
            raise BadField(
                5, "sample_info", f"pair {j} {token!r}: expected featid:fieldid (two integers)"
            )


class _CVRParser(_Parser):
    """CVR rows; feature ids are kept as the strings of the file, field ids are read as ints."""

    has_row_ids = True

    def __init__(self, schema: CTRSchema, require_label: bool) -> None:
        super().__init__(schema, require_label)
        # field id -> index of a single field (>= 0) or ~index of a multi-valued one (< 0)
        self.slots: dict[str, int] = {}
        for i, name in enumerate(schema.categorical):
            self.slots[name[1:]] = i
        for i, name in enumerate(schema.multi_valued):
            self.slots[name[1:]] = ~i
        self.num_single, self.num_multi = len(schema.categorical), len(schema.multi_valued)

    def column_name(self, column: int) -> str:
        return _CVR_COLUMNS[column - 1] if 1 <= column <= 5 else ""

    def parse(self, text: str) -> tuple[Any, ...]:
        parts = text.split("\t")
        if len(parts) != 5:
            raise BadField(
                min(len(parts), 5) + 1,
                "",
                "expected 5 tab-separated columns (log_id, t1, t2, t3, sample_info), "
                f"found {len(parts)}",
            )
        label, kind = math.nan, -1
        for k in range(3):
            value = parts[1 + k]
            if value == "-":
                continue
            name = f"t{k + 1}"
            if value not in ("0", "1"):
                raise BadField(2 + k, name, f"expected '0', '1' or '-', got {value!r}")
            if kind >= 0:
                raise BadField(2 + k, name, "a second type column holds a label (exactly one may)")
            label, kind = float(value), k
        if kind < 0 and self.require_label:
            raise BadField(2, "t1", "no label: exactly one of t1, t2, t3 must hold 0 or 1")
        info = parts[4]
        if _CVR_PAIRS.fullmatch(info) is None:
            _check_pairs(info)  # names the bad pair (other whitespace passes)
        tokens = info.replace(":", " ").split()
        singles: list[str | None] = [None] * self.num_single
        multis: list[list[str]] = [[] for _ in range(self.num_multi)]
        get, ignored = self.slots.get, 0
        for feat, fieldid in zip(tokens[0::2], tokens[1::2], strict=True):
            slot = get(fieldid)
            if slot is None:
                if fieldid[0] == "0":  # "07" is field 7
                    slot = get(str(int(fieldid)))
                if slot is None:
                    ignored += 1
                    continue
            if slot < 0:
                multis[~slot].append(feat)
            elif singles[slot] is None:
                singles[slot] = feat
            else:
                raise BadField(
                    5,
                    "sample_info",
                    f"pair '{feat}:{fieldid}': field {int(fieldid)} is single-valued in the "
                    "schema but has a second id (declare it multi-valued)",
                )
        self.ignored += ignored
        return (label, kind, parts[0], tuple(singles), (), tuple(multis))


def split_line(text: str, delimiter: str) -> list[str]:
    if '"' not in text:
        return text.split(delimiter)
    try:
        return next(csv.reader([text], delimiter=delimiter, strict=True))
    except (csv.Error, StopIteration) as err:
        raise BadField(0, "", f"unreadable quoting ({err})") from None


def read_table_header(path: str | os.PathLike[str], delimiter: str) -> list[str]:
    """Column names of a CSV/TSV file's header line (a UTF-8 BOM is dropped).

    Raises:
        CTRDataError: an empty file, an undecodable or duplicated header.
    """
    with open(path, "rb") as handle:
        raw = handle.readline()
    raw = raw.rstrip(b"\r\n")
    if raw.startswith(UTF8_BOM):
        raw = raw[3:]
    if not raw:
        raise CTRDataError(f"{path}: line 1: expected a header line with the column names")
    try:
        names = split_line(raw.decode("utf-8"), delimiter)
    except UnicodeDecodeError as err:
        raise MalformedRowError(
            str(path), 1, raw[: err.start].count(delimiter.encode()) + 1, "", "invalid UTF-8"
        ) from None
    except BadField as bad:
        raise CTRDataError(f"{path}: line 1 (header): {bad.reason}") from None
    seen: set[str] = set()
    for i, name in enumerate(names, 1):
        if name in seen:
            raise CTRDataError(f"{path}: line 1, column {i}: duplicate column name {name!r}")
        seen.add(name)
    return names


class _TableParser(_Parser):
    def __init__(self, schema: CTRSchema, require_label: bool, path: str) -> None:
        super().__init__(schema, require_label)
        self.delimiter = schema.delimiter
        self.names = read_table_header(path, schema.delimiter)
        index = {name: i for i, name in enumerate(self.names)}
        optional = set() if require_label else {schema.label, schema.type_column}
        for name in (schema.label, schema.type_column, *schema.feature_columns):
            if name is not None and name not in index and name not in optional:
                raise CTRDataError(
                    f"{path}: line 1: column {name!r} of the schema is not in the header "
                    f"(columns: {', '.join(self.names)})"
                )
        self.label_index = index.get(schema.label)
        self.type_index = index.get(schema.type_column) if schema.type_column else None
        self.cat_index = [index[k] for k in schema.categorical]
        self.num_index = [index[k] for k in schema.numeric]
        self.multi_index = [index[k] for k in schema.multi_valued]
        self.na = set(schema.na_values)

    def column_name(self, column: int) -> str:
        return self.names[column - 1] if 1 <= column <= len(self.names) else ""

    def parse(self, text: str) -> tuple[Any, ...]:
        parts = split_line(text, self.delimiter)
        n, expected = len(parts), len(self.names)
        if n != expected:
            raise BadField(
                min(n, expected) + 1, "", f"expected {expected} columns (as the header), found {n}"
            )
        na, names = self.na, self.names
        if na:
            parts = ["" if v in na else v for v in parts]
        if self.label_index is None:
            label = math.nan
        else:
            i = self.label_index
            label = parse_label(parts[i], i + 1, names[i], self.require_label)
        kind = -1
        if self.type_index is not None:
            i = self.type_index
            kind = parse_type(parts[i], i + 1, names[i])
        cats = tuple(parts[i] or None for i in self.cat_index)
        nums = tuple(parse_number(parts[i], i + 1, names[i]) for i in self.num_index)
        sep = self.schema.multi_separator
        multis = tuple([v for v in parts[i].split(sep) if v] for i in self.multi_index)
        return (label, kind, None, cats, nums, multis)


# ---------------------------------------------------------------------- drivers
def is_parquet(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` starts with the Parquet magic bytes ``PAR1``."""
    with open(path, "rb") as handle:
        return handle.read(4) == b"PAR1"


def require_pyarrow() -> Any:
    """Import ``pyarrow.parquet``, or raise `ImportError` saying how to install it."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError(
            "reading Parquet files needs pyarrow: pip install 'pyarrow>=14'"
        ) from None
    return pq


def iter_chunks(
    path: str | os.PathLike[str],
    schema: CTRSchema,
    *,
    chunk_rows: int = 65_536,
    skip_bad_rows: bool = False,
    require_label: bool = True,
    stats: ReadStats | None = None,
) -> Iterator[RawChunk]:
    """Stream the rows of a CTR file as chunks of at most ``chunk_rows`` rows.

    Args:
        path: A Criteo TSV, CSV/TSV/Parquet table or CVR file, as ``schema.format`` says
            (a table file starting with ``PAR1`` is read as Parquet).
        schema: The columns to read (`criteo_schema`, `cvr_schema`, `infer_schema`).
        chunk_rows: Rows per chunk (the last one may be smaller); memory is O(chunk_rows).
        skip_bad_rows: Skip malformed rows and count them in ``stats`` instead of raising.
        require_label: Every row must have a label (and cvr rows a type); with False, rows
            without one (Criteo rows of 39 columns, cvr rows with t1..t3 all "-", tables without
            the label column) read with label NaN and type -1.
        stats: Filled while streaming: rows, skipped rows and their messages, blank lines,
            ignored CVR pairs.

    Returns:
        An iterator of `RawChunk` of ``rows <= chunk_rows`` rows, in file order. Arguments, the
        file's existence and a table's header are checked when it is called; rows as they are
        read (``stats`` is complete once the iterator is exhausted).

    Raises:
        MalformedRowError: a malformed row (without ``skip_bad_rows``); names file, line, column.
        CTRDataError: a table whose header lacks a column of the schema.
        FileNotFoundError: no such file.
        ImportError: a Parquet file without pyarrow installed.
    """
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ValueError(f"chunk_rows: expected an int >= 1, got {chunk_rows!r}")
    if not isinstance(schema, CTRSchema):
        raise TypeError(f"schema: expected a CTRSchema, got {type(schema).__name__}")
    stats = ReadStats() if stats is None else stats
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if schema.format == "table" and is_parquet(path):
        from perceptrons.ctr.io.parquet import iter_parquet_chunks

        require_pyarrow()  # fail now, not at the first chunk
        return iter_parquet_chunks(
            path,
            schema,
            chunk_rows=chunk_rows,
            skip_bad_rows=skip_bad_rows,
            require_label=require_label,
            stats=stats,
        )
    parser: _Parser
    if schema.format == "criteo":
        parser, header_lines = _CriteoParser(schema, require_label), 0
    elif schema.format == "cvr":
        parser, header_lines = _CVRParser(schema, require_label), 0
    else:  # reads the header now: a missing column fails before the first chunk
        parser, header_lines = _TableParser(schema, require_label, str(path)), 1
    return _text_chunks(path, parser, header_lines, chunk_rows, skip_bad_rows, stats)


def _text_chunks(
    path: Path,
    parser: _Parser,
    header_lines: int,
    chunk_rows: int,
    skip_bad_rows: bool,
    stats: ReadStats,
) -> Iterator[RawChunk]:
    display = str(path)
    rows: list[tuple[Any, ...]] = []
    lines: list[int] = []
    with open(path, "rb") as handle:
        for lineno, raw in enumerate(handle, 1):
            if lineno <= header_lines:
                continue
            if raw.endswith(b"\n"):
                raw = raw[:-1]
                if raw.endswith(b"\r"):
                    raw = raw[:-1]
            if lineno == 1 and raw.startswith(UTF8_BOM):
                raw = raw[3:]
            if not raw:
                stats.blank_lines += 1
                continue
            try:
                rows.append(parser.parse(raw.decode("utf-8")))
                lines.append(lineno)
            except UnicodeDecodeError as err:
                column, name = parser.column_of_byte(raw, err.start)
                byte = raw[err.start : err.start + 1].hex()
                error = MalformedRowError(
                    display, lineno, column, name, f"invalid UTF-8 (byte 0x{byte})"
                )
                if not skip_bad_rows:
                    raise error from None
                stats.record(error)
            except BadField as bad:
                error = MalformedRowError(
                    display,
                    lineno,
                    bad.column,
                    bad.name or parser.column_name(bad.column),
                    bad.reason,
                )
                if not skip_bad_rows:
                    raise error from None
                stats.record(error)
            if len(rows) == chunk_rows:
                stats.rows += len(rows)
                stats.ignored_pairs = parser.ignored
                yield parser.assemble(rows, lines)
                rows, lines = [], []
    stats.rows += len(rows)
    stats.ignored_pairs = parser.ignored
    if rows:
        yield parser.assemble(rows, lines)


def read_file(
    path: str | os.PathLike[str],
    schema: CTRSchema,
    *,
    chunk_rows: int = 65_536,
    skip_bad_rows: bool = False,
    require_label: bool = True,
) -> tuple[RawChunk, ReadStats]:
    """All rows of a CTR file in one `RawChunk` (for files that fit in memory), and the stats.

    Arguments and errors as `iter_chunks`; a file without rows gives a chunk of 0 rows.
    """
    stats = ReadStats()
    chunks = list(
        iter_chunks(
            path,
            schema,
            chunk_rows=chunk_rows,
            skip_bad_rows=skip_bad_rows,
            require_label=require_label,
            stats=stats,
        )
    )
    return (RawChunk.concat(chunks) if chunks else empty_like_schema(schema)), stats
