"""The line-by-line Python parser of CTR files: the cvr reader, and the exact reference of the
pyarrow reader of Criteo and table files (`perceptrons.ctr.io.readers`).

`python_chunks` parses every line in Python; `python_rows` turns raw lines into parsed rows
with the file's line numbers, raising `MalformedRowError` (file, line, column) or skipping and
counting a malformed row; the per-format parsers (`make_parser`) turn one line into a row.
The pyarrow reader hands a block back to `python_rows` whenever pyarrow would not read it
exactly as these parsers do, so errors and statistics are the same on both paths.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Iterable, Iterator
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
    object_array,
)

__all__ = [
    "UTF8_BOM",
    "BadField",
    "CriteoParser",
    "LineParser",
    "TableParser",
    "make_parser",
    "parse_label",
    "parse_number",
    "parse_type",
    "python_chunks",
    "python_rows",
    "read_table_header",
    "split_line",
]

UTF8_BOM = b"\xef\xbb\xbf"
"""The byte-order mark some tools write at the start of a UTF-8 file."""

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
    value = int(text)
    if value >= 2**63:
        raise BadField(column, name, f"type id {text!r} is too large (at most 2**63 - 1)")
    return value


# ---------------------------------------------------------------------- row parsers
class LineParser:
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


class CriteoParser(LineParser):
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


class _CVRParser(LineParser):
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


class TableParser(LineParser):
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
def make_parser(path: Path, schema: CTRSchema, require_label: bool) -> LineParser:
    if schema.format == "criteo":
        return CriteoParser(schema, require_label)
    if schema.format == "cvr":
        return _CVRParser(schema, require_label)
    return TableParser(schema, require_label, str(path))


# ---------------------------------------------------------------------- the Python reader
def python_rows(
    lines: Iterable[bytes],
    first_line: int,
    parser: LineParser,
    display: str,
    skip_bad_rows: bool,
    stats: ReadStats,
    strip_bom: bool = True,
) -> Iterator[tuple[tuple[Any, ...], int]]:
    """``(row, line number)`` of raw lines (each with its newline) numbered from ``first_line``.

    A line is its bytes without the final ``\\n`` and then one ``\\r``; a UTF-8 BOM is dropped
    from line 1 (with ``strip_bom``); empty lines are counted in ``stats.blank_lines``; a
    malformed line raises `MalformedRowError` or, with ``skip_bad_rows``, is recorded in
    ``stats`` and passed over.
    """
    for lineno, raw in enumerate(lines, first_line):
        if raw.endswith(b"\n"):
            raw = raw[:-1]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
        if lineno == 1 and strip_bom and raw.startswith(UTF8_BOM):
            raw = raw[3:]
        if not raw:
            stats.blank_lines += 1
            continue
        try:
            row = parser.parse(raw.decode("utf-8"))
        except UnicodeDecodeError as err:
            column, name = parser.column_of_byte(raw, err.start)
            byte = raw[err.start : err.start + 1].hex()
            reason = f"invalid UTF-8 (byte 0x{byte})"
            error = MalformedRowError(display, lineno, column, name, reason)
            if not skip_bad_rows:
                raise error from None
            stats.record(error)
            continue
        except BadField as bad:
            error = MalformedRowError(
                display, lineno, bad.column, bad.name or parser.column_name(bad.column), bad.reason
            )
            if not skip_bad_rows:
                raise error from None
            stats.record(error)
            continue
        yield row, lineno


def python_chunks(
    path: Path,
    schema: CTRSchema,
    chunk_rows: int,
    skip_bad_rows: bool,
    require_label: bool,
    stats: ReadStats,
) -> Iterator[RawChunk]:
    """`iter_chunks` parsing every line in Python: cvr files, and the reference of the others.

    Same rows, line numbers, errors and statistics as the pyarrow reader of Criteo and table
    files (the tests compare the two), at about a tenth of its speed.
    """
    parser = make_parser(path, schema, require_label)
    return python_chunks_of(path, parser, chunk_rows, skip_bad_rows, stats)


def python_chunks_of(
    path: Path, parser: LineParser, chunk_rows: int, skip_bad_rows: bool, stats: ReadStats
) -> Iterator[RawChunk]:
    header_lines = 1 if isinstance(parser, TableParser) else 0
    rows: list[tuple[Any, ...]] = []
    lines: list[int] = []
    with open(path, "rb") as handle:
        for _ in range(header_lines):
            handle.readline()
        for row, lineno in python_rows(
            handle, header_lines + 1, parser, str(path), skip_bad_rows, stats
        ):
            rows.append(row)
            lines.append(lineno)
            if len(rows) == chunk_rows:
                stats.rows += len(rows)
                stats.ignored_pairs = parser.ignored
                yield parser.assemble(rows, lines)
                rows, lines = [], []
    stats.rows += len(rows)
    stats.ignored_pairs = parser.ignored
    if rows:
        yield parser.assemble(rows, lines)
