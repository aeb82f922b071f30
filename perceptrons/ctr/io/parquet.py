"""Parquet tables, read batch by batch with pyarrow (an optional dependency, imported lazily).

Values are converted to the representation of `RawChunk`: numeric columns (integer, floating or
boolean Parquet types, or strings holding numbers) to float64 with NaN for nulls; categorical
columns to strings (``str`` of the value, None for nulls); multi-valued columns from Parquet
lists or from strings joined by ``schema.multi_separator``. Errors name the file, the 1-based
row and the 1-based column.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from perceptrons.ctr.io.readers import require_pyarrow
from perceptrons.ctr.io.schema import (
    CTRDataError,
    CTRSchema,
    MalformedRowError,
    RawChunk,
    ReadStats,
    object_array,
)
from perceptrons.ctr.io.text import BadField, parse_label, parse_number, parse_type

__all__ = ["iter_parquet_chunks", "parquet_columns", "parquet_sample"]


def parquet_columns(path: str | Path) -> list[str]:
    """Column names of a Parquet file."""
    return list(require_pyarrow().ParquetFile(path).schema_arrow.names)


def _cell_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace") or None
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value)


def parquet_sample(path: str | Path, max_rows: int) -> tuple[list[str], list[list[Any]]]:
    """Up to ``max_rows`` rows of a Parquet file as ``(names, columns)``.

    Each column is a list with one entry per row: a string, None (null), or a list of strings
    for Parquet list columns.
    """
    pq = require_pyarrow()
    handle = pq.ParquetFile(path)
    names = list(handle.schema_arrow.names)
    columns: list[list[Any]] = [[] for _ in names]
    taken = 0
    for batch in handle.iter_batches(batch_size=min(max_rows, 65_536)):
        take = min(batch.num_rows, max_rows - taken)
        for j in range(len(names)):
            for value in batch.column(j).slice(0, take).to_pylist():
                if isinstance(value, list):
                    columns[j].append([t for t in map(_cell_text, value) if t is not None])
                else:
                    columns[j].append(_cell_text(value))
        taken += take
        if taken >= max_rows:
            break
    return names, columns


def iter_parquet_chunks(
    path: Path,
    schema: CTRSchema,
    *,
    chunk_rows: int,
    skip_bad_rows: bool,
    require_label: bool,
    stats: ReadStats,
) -> Iterator[RawChunk]:
    """`iter_chunks` for a Parquet table (same arguments, same errors, rows for lines)."""
    import pyarrow as pa

    pq = require_pyarrow()
    handle = pq.ParquetFile(path)
    names = list(handle.schema_arrow.names)
    index = {name: i for i, name in enumerate(names)}
    optional = set() if require_label else {schema.label, schema.type_column}
    for name in (schema.label, schema.type_column, *schema.feature_columns):
        if name is not None and name not in index and name not in optional:
            raise CTRDataError(
                f"{path}: column {name!r} of the schema is not in the file "
                f"(columns: {', '.join(names)})"
            )
    wanted = [schema.label, schema.type_column, *schema.feature_columns]
    needed = [name for name in wanted if name is not None and name in index]
    display, start = str(path), 0
    for batch in handle.iter_batches(batch_size=chunk_rows, columns=needed):
        n = batch.num_rows
        bad: dict[int, MalformedRowError] = {}

        def fail(row: int, name: str, reason: str, bad: dict = bad, start: int = start) -> None:
            if row not in bad:
                bad[row] = MalformedRowError(
                    display, start + row + 1, index[name] + 1, name, reason, unit="row"
                )

        columns = {name: batch.column(i) for i, name in enumerate(needed)}

        labels = np.full(n, math.nan, dtype=np.float32)
        if schema.label in index:
            for i, value in enumerate(columns[schema.label].to_pylist()):
                text = "" if value is None else _number_text(value)
                try:
                    labels[i] = parse_label(text, 0, schema.label, require_label)
                except BadField as err:
                    fail(i, schema.label, err.reason)
        types = np.full(n, -1, dtype=np.int64)
        if schema.type_column is not None and schema.type_column in index:
            for i, value in enumerate(columns[schema.type_column].to_pylist()):
                try:
                    types[i] = parse_type(_number_text(value), 0, schema.type_column)
                except BadField as err:
                    fail(i, schema.type_column, err.reason)
        numeric: dict[str, np.ndarray] = {}
        for name in schema.numeric:
            col = columns[name]
            if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
                values = col.cast(pa.float64()).to_numpy(zero_copy_only=False).copy()
                for i in np.flatnonzero(np.isinf(values)):
                    fail(int(i), name, f"expected a finite number, got {values[i]!r}")
            elif pa.types.is_boolean(col.type):
                values = np.array(
                    [math.nan if v is None else float(v) for v in col.to_pylist()], dtype=float
                )
            elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
                values = np.full(n, math.nan)
                for i, value in enumerate(col.to_pylist()):
                    try:
                        values[i] = parse_number(value or "", 0, name)
                    except BadField as err:
                        fail(i, name, err.reason)
            else:
                raise CTRDataError(f"{path}: column {name!r} of type {col.type} is not numeric")
            numeric[name] = values
        categorical = {}
        na = set(schema.na_values)
        for name in schema.categorical:
            cells = [_cell_text(v) for v in columns[name].to_pylist()]
            categorical[name] = object_array([None if c in na else c for c in cells])
        multi: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name in schema.multi_valued:
            lists = []
            for value in columns[name].to_pylist():
                if isinstance(value, list):
                    items = [t for t in map(_cell_text, value) if t is not None]
                else:
                    text = _cell_text(value)
                    items = [] if text is None or text in na else text.split(schema.multi_separator)
                lists.append([t for t in items if t])
            offsets = np.zeros(n + 1, dtype=np.int64)
            np.cumsum([len(v) for v in lists], out=offsets[1:])
            multi[name] = (object_array([v for vs in lists for v in vs]), offsets)
        chunk = RawChunk(
            line_numbers=np.arange(start + 1, start + n + 1, dtype=np.int64),
            labels=labels,
            categorical=categorical,
            numeric=numeric,
            multi_valued=multi,
            types=types,
        )
        if bad:
            if not skip_bad_rows:
                raise bad[min(bad)]
            for row in sorted(bad):
                stats.record(bad[row])
            chunk = _take_rows(chunk, np.array([i not in bad for i in range(n)]))
        start += n
        stats.rows += chunk.num_rows
        if chunk.num_rows:
            yield chunk


def _number_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _take_rows(chunk: RawChunk, keep: np.ndarray) -> RawChunk:
    """The rows of ``chunk`` where ``keep`` (rows,) is true."""
    multi = {}
    for name, (values, offsets) in chunk.multi_valued.items():
        lengths = np.diff(offsets)[keep]
        pieces = [values[a:b] for a, b, k in zip(offsets[:-1], offsets[1:], keep, strict=True) if k]
        new_offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=new_offsets[1:])
        flat = np.concatenate(pieces) if pieces else object_array([])
        multi[name] = (flat, new_offsets)
    return RawChunk(
        line_numbers=chunk.line_numbers[keep],
        labels=chunk.labels[keep],
        categorical={k: v[keep] for k, v in chunk.categorical.items()},
        numeric={k: v[keep] for k, v in chunk.numeric.items()},
        multi_valued=multi,
        types=chunk.types[keep],
        row_ids=None,
    )
