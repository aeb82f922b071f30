"""What a CTR file holds: its schema, the parsed-but-not-encoded rows, read statistics, errors.

Dimension legend: ``rows`` rows of one chunk; ``total`` the number of values of a multi-valued
column over the chunk's rows.

Three file formats share one `CTRSchema`:

* ``"criteo"``: tab-separated, no header, 40 columns: the label (0/1), 13 integer columns
  ``I1..I13`` and 26 categorical columns ``C1..C26`` (hexadecimal strings); any field but the
  label may be empty (missing). Unlabelled files (39 columns) are read with
  ``require_label=False``.
* ``"table"``: CSV/TSV with a header line, or Parquet, with a declared label column and
  categorical, numeric and multi-valued columns (`infer_schema` infers the undeclared ones).
* ``"cvr"``: the CTI 2023 / Baidu 2023 CVR challenge format, ``log_id \\t t1 \\t t2 \\t t3 \\t
  sample_info``. Each row belongs to exactly one of three conversion types: the column of that
  type holds the label ("0" or "1"), the other two hold "-". ``sample_info`` is a space-separated
  list of ``featid:fieldid`` pairs (both integers); field ``k`` is the column ``f{k}``, and a
  field may carry several ids (multi-valued).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from perceptrons.config import Config, require

__all__ = [
    "CRITEO_CATEGORICAL",
    "CRITEO_NUMERIC",
    "CVR_FIELD_GROUPS",
    "CVR_MULTI_VALUED",
    "CTRDataError",
    "CTRSchema",
    "Columns",
    "MalformedRowError",
    "RawChunk",
    "ReadStats",
    "criteo_schema",
    "cvr_schema",
]

CRITEO_NUMERIC: tuple[str, ...] = tuple(f"I{i}" for i in range(1, 14))
CRITEO_CATEGORICAL: tuple[str, ...] = tuple(f"C{i}" for i in range(1, 27))

# The FuxiCTR baseline of the Baidu 2023 CVR challenge treats these fields as sequences
# (its configs in github.com/reczoo/Baidu2023_CVR_Challenge); the others are single categorical
# fields.
CVR_MULTI_VALUED: tuple[int, ...] = (10, 17, 18, 20, 22, 25, 26)
# Field groups of the CVR data (the data README of reczoo/Baidu2023_CVR_Challenge): user basic
# info, scene, ad, user multi-value info.
CVR_FIELD_GROUPS: dict[str, tuple[int, ...]] = {
    "user": tuple(range(1, 14)),
    "scene": (14, 15, 16),
    "ad": tuple(range(17, 25)),
    "user_multi": (25, 26),
}

CTRFormat = Literal["criteo", "table", "cvr"]


class CTRDataError(ValueError):
    """A CTR file that cannot be read as declared (missing column, unreadable header, ...)."""


class MalformedRowError(CTRDataError):
    """A row that does not match its format; the message names file, line and column.

    Attributes:
        path: The file.
        line: 1-based line of a text file (or row of a Parquet file, then ``unit == "row"``).
        column: 1-based column, or 0 when the whole row is at fault.
        column_name: Name of the column ("" when unknown).
        reason: What is wrong.
    """

    def __init__(
        self,
        path: str,
        line: int,
        column: int,
        column_name: str,
        reason: str,
        *,
        unit: str = "line",
    ) -> None:
        self.path, self.line, self.column = path, line, column
        self.column_name, self.reason, self.unit = column_name, reason, unit
        where = f"column {column}" + (f" ({column_name})" if column_name else "")
        super().__init__(f"{path}: {unit} {line}, {where}: {reason}")


@dataclass(frozen=True, kw_only=True)
class CTRSchema(Config):
    """The columns of a CTR file and how to read them.

    Attributes:
        format: File format: "criteo", "table" (CSV/TSV/Parquet) or "cvr".
        label: Name of the 0/1 label column ("label" for criteo and cvr files).
        categorical: Single-valued categorical columns, in the order of the encoded ids.
        numeric: Numeric columns (float; empty = missing).
        multi_valued: Multi-valued categorical columns (a bag of values per row).
        type_column: Table files: a column holding each row's type (an int >= 0, empty =
            unknown); None: no types. Criteo files have no types; cvr files always have 3.
        delimiter: Table files: the column delimiter ("," for CSV, "\\t" for TSV).
        multi_separator: Table files: the separator of the values inside a multi-valued cell.
        na_values: Table files: cell texts read as missing (the empty cell always is).
    """

    format: CTRFormat = "table"
    label: str = "label"
    categorical: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    multi_valued: tuple[str, ...] = ()
    type_column: str | None = None
    delimiter: str = ","
    multi_separator: str = "|"
    na_values: tuple[str, ...] = ()

    def validate(self) -> None:
        names = [self.label, *self.categorical, *self.numeric, *self.multi_valued]
        if self.type_column is not None:
            names.append(self.type_column)
        seen: set[str] = set()
        for name in names:
            require(name not in seen, "columns", f"{name!r} is declared twice", name)
            seen.add(name)
        require(
            bool(self.categorical or self.numeric or self.multi_valued),
            "categorical",
            "a schema needs at least one feature column",
        )
        require(len(self.delimiter) == 1, "delimiter", "must be one character", self.delimiter)
        require(
            len(self.multi_separator) == 1 and self.multi_separator != self.delimiter,
            "multi_separator",
            "must be one character, not the delimiter",
            self.multi_separator,
        )
        if self.format == "criteo":
            require(
                self.numeric == CRITEO_NUMERIC
                and self.categorical == CRITEO_CATEGORICAL
                and not self.multi_valued
                and self.type_column is None
                and self.label == "label",
                "format",
                "a criteo schema has the fixed columns of criteo_schema()",
            )
        if self.format == "cvr":
            for name in (*self.categorical, *self.multi_valued):
                require(
                    name.startswith("f") and name[1:].isascii() and name[1:].isdigit(),
                    "categorical",
                    "cvr columns are named f<fieldid>",
                    name,
                )
            require(not self.numeric, "numeric", "cvr files have no numeric columns")
            require(self.type_column is None, "type_column", "cvr types come from t1..t3")

    @property
    def feature_columns(self) -> tuple[str, ...]:
        """Categorical, numeric and multi-valued columns, in that order."""
        return (*self.categorical, *self.numeric, *self.multi_valued)

    @property
    def has_types(self) -> bool:
        """Whether rows carry a type (cvr files, or tables with a ``type_column``)."""
        return self.format == "cvr" or self.type_column is not None


def criteo_schema() -> CTRSchema:
    """The Criteo schema: label, ``I1..I13`` numeric, ``C1..C26`` categorical."""
    return CTRSchema(
        format="criteo",
        label="label",
        numeric=CRITEO_NUMERIC,
        categorical=CRITEO_CATEGORICAL,
        delimiter="\t",
    )


def cvr_schema(
    fields: tuple[int, ...] | range = range(1, 27),
    multi_valued: tuple[int, ...] = CVR_MULTI_VALUED,
) -> CTRSchema:
    """Schema of a CVR challenge file: columns ``f{k}`` for the field ids ``fields``.

    Args:
        fields: The field ids (pairs with other field ids are ignored and counted).
        multi_valued: The fields that may carry several ids in one row; the others must carry
            at most one (a second one is a malformed row).
    """
    fields = tuple(int(f) for f in fields)
    unknown = sorted(set(multi_valued) - set(fields))
    if unknown:
        raise ValueError(f"multi_valued: field {unknown[0]} is not one of the fields")
    return CTRSchema(
        format="cvr",
        label="label",
        categorical=tuple(f"f{f}" for f in fields if f not in multi_valued),
        multi_valued=tuple(f"f{f}" for f in fields if f in multi_valued),
        delimiter="\t",
    )


@dataclass
class ReadStats:
    """What a reader saw; filled while it streams (read it after the last chunk).

    Attributes:
        rows: Rows read and returned.
        skipped: Malformed rows skipped (``skip_bad_rows=True``); 0 otherwise.
        blank_lines: Empty lines (not rows) passed over.
        ignored_pairs: CVR ``featid:fieldid`` pairs of fields outside the schema.
        errors: The messages of the first `max_errors` skipped rows.
        max_errors: How many messages to keep.
    """

    rows: int = 0
    skipped: int = 0
    blank_lines: int = 0
    ignored_pairs: int = 0
    errors: list[str] = field(default_factory=list)
    max_errors: int = 20

    def record(self, error: MalformedRowError) -> None:
        """Count a skipped row and keep its message (up to `max_errors`)."""
        self.skipped += 1
        if len(self.errors) < self.max_errors:
            self.errors.append(str(error))

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON summary: rows, skipped, blank_lines, ignored_pairs, errors."""
        return {
            "rows": self.rows,
            "skipped": self.skipped,
            "blank_lines": self.blank_lines,
            "ignored_pairs": self.ignored_pairs,
            "errors": list(self.errors),
        }

    def summary(self) -> str:
        """One line, e.g. ``"1,000 rows read, 2 malformed rows skipped"``."""
        parts = [f"{self.rows:,} rows read"]
        if self.skipped:
            parts.append(f"{self.skipped:,} malformed rows skipped")
        if self.ignored_pairs:
            parts.append(f"{self.ignored_pairs:,} pairs of unknown fields ignored")
        return ", ".join(parts)


def object_array(values: list[Any]) -> np.ndarray:
    """A 1-d object array holding ``values`` (strings, None, ...) as they are."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


class Columns(Mapping[str, Any]):
    """The columns of a `RawChunk`: name -> column, read like a dict.

    The fast readers hold string columns as pyarrow arrays (nulls for missing values) and
    convert one to the documented numpy form (an object array of str and None) only when it is
    read through this mapping, once; the encoder reads the pyarrow form directly (`raw`), so
    no Python object is made per value on the way from the file to the ids. A multi-valued
    column is ``(values, offsets)``; only ``values`` is converted.
    """

    __slots__ = ("_data", "_numpy")

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self._data: dict[str, Any] = {} if data is None else dict(data)
        self._numpy: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name in self._numpy:
            return self._numpy[name]
        value = self._data[name]
        if isinstance(value, tuple):
            out: Any = (to_object_array(value[0]), value[1])
        else:
            out = to_object_array(value) if not isinstance(value, np.ndarray) else value
        self._numpy[name] = out
        return out

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, name: object) -> bool:
        return name in self._data

    def raw(self, name: str) -> Any:
        """The column as held: a pyarrow array, a numpy array, or ``(values, offsets)``."""
        return self._data[name]

    def __repr__(self) -> str:
        return f"Columns({', '.join(self._data)})"


def raw_column(columns: Mapping[str, Any], name: str) -> Any:
    """``columns[name]`` without a conversion to numpy (see `Columns`)."""
    return columns.raw(name) if isinstance(columns, Columns) else columns[name]


def to_object_array(values: Any) -> np.ndarray:
    """A pyarrow string array (or an object array) as a numpy object array, None for nulls."""
    if isinstance(values, np.ndarray):
        return values
    out = values.to_numpy(zero_copy_only=False)
    return out if out.dtype == object else out.astype(object)


def to_arrow_strings(values: Any) -> Any:
    """A string column as a pyarrow ``StringArray`` or ``ChunkedArray`` (None -> null).

    pyarrow columns are returned as they are (no copy); object arrays are converted.
    """
    import pyarrow as pa

    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values if values.type == pa.string() else values.cast(pa.string())
    return pa.array(values, type=pa.string())


def combine_strings(values: Any) -> Any:
    """A string column as one pyarrow ``StringArray`` (chunks are copied into one)."""
    values = to_arrow_strings(values)
    return values.combine_chunks() if hasattr(values, "combine_chunks") else values


def _is_numpy(values: Any) -> bool:
    return isinstance(values, np.ndarray)


def _concat_strings(parts: list[Any]) -> Any:
    if all(_is_numpy(p) for p in parts):
        return np.concatenate(parts) if parts else object_array([])
    import pyarrow as pa

    chunks = []
    for part in parts:
        part = to_arrow_strings(part)
        chunks.extend(part.chunks if isinstance(part, pa.ChunkedArray) else [part])
    return pa.chunked_array(chunks, type=pa.string())  # no copy


def _slice_strings(values: Any, start: int, stop: int) -> Any:
    return values[start:stop] if _is_numpy(values) else values.slice(start, stop - start)


@dataclass(eq=False)
class RawChunk:
    """Rows of a CTR file, parsed and checked but not yet encoded.

    Attributes:
        line_numbers: (rows,) int64: the 1-based line (text files) or row (Parquet) of each row.
        labels: (rows,) float32 in {0, 1}; NaN where the file has no label.
        categorical: name -> (rows,) object array of str; None marks a missing value.
        numeric: name -> (rows,) float64; NaN marks a missing value.
        multi_valued: name -> ``(values, offsets)``: values (total,) object array of str,
            offsets (rows + 1,) int64; row ``i`` holds ``values[offsets[i]:offsets[i + 1]]``
            (no values: missing).
        types: (rows,) int64 type of each row, -1 where unknown.
        row_ids: (rows,) object array of str (the CVR ``log_id``), or None.

    ``categorical`` and ``multi_valued`` may be a `Columns` mapping holding pyarrow arrays
    (what the readers return): reading a column gives the numpy form above.
    """

    line_numbers: np.ndarray
    labels: np.ndarray
    categorical: Mapping[str, np.ndarray]
    numeric: dict[str, np.ndarray]
    multi_valued: Mapping[str, tuple[np.ndarray, np.ndarray]]
    types: np.ndarray
    row_ids: np.ndarray | None = None

    @property
    def num_rows(self) -> int:
        """Number of rows."""
        return int(self.labels.shape[0])

    def __len__(self) -> int:
        return self.num_rows

    def multi_lists(self, name: str) -> list[list[str]]:
        """The values of a multi-valued column as one list per row."""
        values, offsets = self.multi_valued[name]
        return [list(values[a:b]) for a, b in zip(offsets[:-1], offsets[1:], strict=True)]

    def slice(self, start: int, stop: int) -> RawChunk:
        """Rows ``start:stop`` (0 <= start <= stop <= rows); pyarrow columns are not copied."""
        multi: dict[str, tuple[Any, np.ndarray]] = {}
        for name in self.multi_valued:
            values, offsets = raw_column(self.multi_valued, name)
            a, b = int(offsets[start]), int(offsets[stop])
            multi[name] = (_slice_strings(values, a, b), offsets[start : stop + 1] - a)
        return RawChunk(
            line_numbers=self.line_numbers[start:stop],
            labels=self.labels[start:stop],
            categorical=Columns(
                {
                    k: _slice_strings(raw_column(self.categorical, k), start, stop)
                    for k in self.categorical
                }
            ),
            numeric={k: v[start:stop] for k, v in self.numeric.items()},
            multi_valued=Columns(multi),
            types=self.types[start:stop],
            row_ids=None if self.row_ids is None else self.row_ids[start:stop],
        )

    @staticmethod
    def concat(chunks: list[RawChunk]) -> RawChunk:
        """Rows of ``chunks`` one after the other (all with the same columns)."""
        if not chunks:
            raise ValueError("chunks: expected at least one chunk, got none")
        if len(chunks) == 1:
            return chunks[0]
        first = chunks[0]
        multi: dict[str, tuple[Any, np.ndarray]] = {}
        for name in first.multi_valued:
            parts = [raw_column(c.multi_valued, name) for c in chunks]
            ends, start = [np.zeros(1, dtype=np.int64)], 0
            for _, offsets in parts:
                ends.append(np.asarray(offsets[1:], dtype=np.int64) + start)
                start += int(offsets[-1])
            multi[name] = (_concat_strings([v for v, _ in parts]), np.concatenate(ends))
        row_ids = None
        if first.row_ids is not None:
            row_ids = np.concatenate([c.row_ids for c in chunks])  # type: ignore[misc]
        categorical = {
            k: _concat_strings([raw_column(c.categorical, k) for c in chunks])
            for k in first.categorical
        }
        return RawChunk(
            line_numbers=np.concatenate([c.line_numbers for c in chunks]),
            labels=np.concatenate([c.labels for c in chunks]),
            categorical=Columns(categorical),
            numeric={k: np.concatenate([c.numeric[k] for c in chunks]) for k in first.numeric},
            multi_valued=Columns(multi),
            types=np.concatenate([c.types for c in chunks]),
            row_ids=row_ids,
        )


def empty_like_schema(schema: CTRSchema) -> RawChunk:
    """A chunk of zero rows with the columns of ``schema``."""
    empty = object_array([])
    return RawChunk(
        line_numbers=np.zeros(0, dtype=np.int64),
        labels=np.zeros(0, dtype=np.float32),
        categorical={k: empty.copy() for k in schema.categorical},
        numeric={k: np.zeros(0) for k in schema.numeric},
        multi_valued={k: (empty.copy(), np.zeros(1, dtype=np.int64)) for k in schema.multi_valued},
        types=np.zeros(0, dtype=np.int64),
        row_ids=empty.copy() if schema.format == "cvr" else None,
    )
