"""Schema inference: which columns of a CTR file are categorical, numeric or multi-valued.

Declared columns keep their declaration. Every other column of a table (except the label, the
type column and ``ignore``) is classified from the first ``sample_rows`` rows, by the first of
these rules that applies (the reason is reported per column):

1. the multi-value separator appears in some value → **multi-valued**;
2. no non-empty value in the sample → **categorical**;
3. some non-empty value does not parse as a finite float → **categorical**;
4. integer codes with leading zeros (``"007"``, zip codes) → **categorical**;
5. integers of 10 or more digits (hashed ids, as in the CVR data) → **categorical** (declare a
   Unix-timestamp column numeric);
6. integers in a column whose name ends in "id" (``user_id``, ``adgroupid``) → **categorical**;
7. fewer than ``min_distinct`` distinct values → **categorical** (flags, small enums, hours);
8. otherwise → **numeric**.

For cvr files the fields seen in the sample are the columns ``f<fieldid>``; a field that carries
more than one id in some row is multi-valued. Criteo files have a fixed schema.

`SchemaInference.format` (and `print_schema_inference`) shows the result as a table, so the
user sees what was inferred and can override it by declaring columns.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from perceptrons.ctr.io.readers import is_parquet
from perceptrons.ctr.io.schema import CTRDataError, CTRSchema, criteo_schema
from perceptrons.ctr.io.text import UTF8_BOM, BadField, read_table_header, split_line

__all__ = ["ColumnReport", "SchemaInference", "infer_schema", "print_schema_inference"]

ColumnKind = Literal["label", "type", "categorical", "numeric", "multi_valued", "ignored"]
_DISTINCT_CAP = 10_000  # distinct values are counted up to this many


@dataclass(frozen=True)
class ColumnReport:
    """How one column was classified.

    Attributes:
        name: Column name.
        kind: "label", "type", "categorical", "numeric", "multi_valued" or "ignored".
        reason: Why ("declared", or the inference rule that applied).
        num_values: Non-empty values in the sample.
        num_missing: Empty values in the sample.
        num_distinct: Distinct values in the sample (counted up to 10,000).
    """

    name: str
    kind: ColumnKind
    reason: str
    num_values: int = 0
    num_missing: int = 0
    num_distinct: int = 0


@dataclass(frozen=True)
class SchemaInference:
    """The inferred schema and the per-column report.

    Attributes:
        path: The file examined.
        schema: The schema to read the file with.
        columns: One report per column, in file order.
        sample_rows: Rows examined.
        skipped_rows: Rows of the sample that could not be split into the header's columns
            (reading the file with the schema reports them as malformed).
    """

    path: str
    schema: CTRSchema
    columns: tuple[ColumnReport, ...]
    sample_rows: int
    skipped_rows: int = 0

    def format(self) -> str:
        """A table: one line per column with kind, reason and sample counts."""
        width = max([len("column"), *(len(c.name) for c in self.columns)])
        head = (
            f"schema of {self.path} ({self.schema.format}, {self.sample_rows:,} rows examined"
            + (f", {self.skipped_rows:,} unreadable" if self.skipped_rows else "")
            + ")"
        )
        lines = [
            head,
            f"  {'column':<{width}}  {'kind':<12}  {'values':>8}  {'missing':>8}"
            f"  {'distinct':>8}  reason",
        ]
        for c in self.columns:
            distinct = f"{c.num_distinct:,}" + ("+" if c.num_distinct >= _DISTINCT_CAP else "")
            lines.append(
                f"  {c.name:<{width}}  {c.kind:<12}  {c.num_values:>8,}  {c.num_missing:>8,}"
                f"  {distinct:>8}  {c.reason}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: path, schema, sample_rows, skipped_rows, columns."""
        return {
            "path": self.path,
            "schema": self.schema.to_dict(),
            "sample_rows": self.sample_rows,
            "skipped_rows": self.skipped_rows,
            "columns": [c.__dict__.copy() for c in self.columns],
        }


def print_schema_inference(inference: SchemaInference, file: IO[str] | None = None) -> None:
    """Print `SchemaInference.format` (to stdout by default)."""
    print(inference.format(), file=file or sys.stdout)


class _ColumnStats:
    def __init__(self, separator: str | None) -> None:
        self.separator = separator
        self.values = self.missing = self.with_separator = 0
        self.numeric = self.integer = True
        self.leading_zero = False
        self.max_digits = 0
        self.example: str | None = None
        self.distinct: set[str] = set()

    def add(self, value: str | list[str] | None) -> None:
        if value is None or value == "" or value == []:
            self.missing += 1
            return
        self.values += 1
        if isinstance(value, list):  # a Parquet list column
            self.with_separator += 1
            return
        if len(self.distinct) < _DISTINCT_CAP:
            self.distinct.add(value)
        if self.separator is not None and self.separator in value:
            self.with_separator += 1
        if self.numeric:
            try:
                number = float(value)
            except ValueError:
                self.numeric, self.integer, self.example = False, False, value
                return
            if number != number or number in (float("inf"), float("-inf")):
                self.numeric, self.integer, self.example = False, False, value
                return
            if self.integer:
                text = value.lstrip("+-")
                self.integer = text.isascii() and text.isdigit()
                if self.integer:
                    self.max_digits = max(self.max_digits, len(text))
                    if len(text) > 1 and text[0] == "0":
                        self.leading_zero = True

    def classify(self, name: str, min_distinct: int) -> tuple[ColumnKind, str]:
        distinct = len(self.distinct)
        if self.with_separator:
            return "multi_valued", f"{self.with_separator:,} values hold the separator"
        if not self.values:
            return "categorical", "no non-empty value in the sample"
        if not self.numeric:
            return "categorical", f"non-numeric values (e.g. {self.example!r})"
        if self.leading_zero:
            return "categorical", "integer codes with leading zeros"
        if self.integer and self.max_digits >= 10:
            return "categorical", f"integer codes of up to {self.max_digits} digits (hashed ids)"
        if self.integer and name.lower().endswith("id"):
            return "categorical", "integer ids (the name ends in 'id')"
        if distinct < min_distinct:
            return "categorical", f"numeric, but only {distinct} distinct values (< {min_distinct})"
        return (
            "numeric",
            f"numeric, {distinct:,}{'+' if distinct >= _DISTINCT_CAP else ''} distinct",
        )


def _iter_sample_lines(path: Path, skip: int, max_rows: int) -> Any:
    """Decoded, non-blank lines after the first ``skip`` lines; undecodable ones give None."""
    taken = 0
    with open(path, "rb") as handle:
        for lineno, raw in enumerate(handle, 1):
            if lineno <= skip:
                continue
            raw = raw.rstrip(b"\r\n")
            if lineno == 1 and raw.startswith(UTF8_BOM):
                raw = raw[3:]
            if not raw:
                continue
            if taken >= max_rows:
                return
            taken += 1
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                yield None


def infer_schema(
    path: str | os.PathLike[str],
    format: Literal["criteo", "table", "cvr"] = "table",
    *,
    label: str = "label",
    categorical: tuple[str, ...] | list[str] | None = None,
    numeric: tuple[str, ...] | list[str] | None = None,
    multi_valued: tuple[str, ...] | list[str] | None = None,
    type_column: str | None = None,
    ignore: tuple[str, ...] | list[str] = (),
    delimiter: str | None = None,
    multi_separator: str = "|",
    na_values: tuple[str, ...] | list[str] = (),
    sample_rows: int = 100_000,
    min_distinct: int = 20,
) -> SchemaInference:
    """Infer the schema of a CTR file from its first ``sample_rows`` rows (rules above).

    Args:
        path: The file.
        format: "criteo", "table" (CSV, TSV or Parquet) or "cvr".
        label: The label column of a table.
        categorical: Columns declared categorical (cvr: field names ``f<k>``).
        numeric: Columns declared numeric.
        multi_valued: Columns declared multi-valued.
        type_column: A table column holding each row's type.
        ignore: Table columns to leave out.
        delimiter: Table delimiter; None: tab for ``.tsv``/``.tab`` files, else a comma.
        multi_separator: Separator of the values in a multi-valued table cell.
        na_values: Table cell texts that mean missing.
        sample_rows: Rows to examine.
        min_distinct: Fewest distinct values of a numeric column (rule 7).

    Returns:
        The schema and a report per column.

    Raises:
        CTRDataError: a declared column that is not in the file, or a table without a label.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    declared: dict[str, ColumnKind] = {}
    for names, kind in (
        (categorical, "categorical"),
        (numeric, "numeric"),
        (multi_valued, "multi_valued"),
    ):
        for name in names or ():
            if name in declared:
                raise CTRDataError(f"{name}: declared both {declared[name]} and {kind}")
            declared[name] = kind  # type: ignore[assignment]
    if format == "criteo":
        schema = criteo_schema()
        reports = [ColumnReport("label", "label", "the criteo format")]
        reports += [ColumnReport(n, "numeric", "the criteo format") for n in schema.numeric]
        reports += [ColumnReport(n, "categorical", "the criteo format") for n in schema.categorical]
        return SchemaInference(str(path), schema, tuple(reports), 0)
    if format == "cvr":
        return _infer_cvr(path, declared, sample_rows)
    if format != "table":
        raise ValueError(f"format: expected 'criteo', 'table' or 'cvr', got {format!r}")
    if delimiter is None:
        delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    skipped = 0
    if is_parquet(path):
        from perceptrons.ctr.io.parquet import parquet_sample

        names, columns = parquet_sample(path, sample_rows)
        rows = len(columns[0]) if columns else 0
    else:
        names = read_table_header(path, delimiter)
        columns = [[] for _ in names]
        rows = 0
        for text in _iter_sample_lines(path, 1, sample_rows):
            try:
                parts = None if text is None else split_line(text, delimiter)
            except BadField:
                parts = None
            if parts is None or len(parts) != len(names):
                skipped += 1
                continue
            rows += 1
            for j, value in enumerate(parts):
                columns[j].append(None if value in na_values else value)
    known = set(names)
    for name in [label, type_column, *declared, *ignore]:
        if name is not None and name not in known:
            raise CTRDataError(
                f"{path}: column {name!r} is not in the file (columns: {', '.join(names)})"
            )
    reports: list[ColumnReport] = []
    kinds: dict[str, list[str]] = {"categorical": [], "numeric": [], "multi_valued": []}
    for name, values in zip(names, columns, strict=True):
        stats = _ColumnStats(multi_separator)
        for value in values:
            stats.add(value)
        counts = (stats.values, stats.missing, len(stats.distinct))
        if name == label:
            kind, reason = "label", "declared label"
        elif name == type_column:
            kind, reason = "type", "declared type column"
        elif name in ignore:
            kind, reason = "ignored", "declared ignored"
        elif name in declared:
            kind, reason = declared[name], "declared"
        else:
            kind, reason = stats.classify(name, min_distinct)
        reports.append(ColumnReport(name, kind, reason, *counts))
        if kind in kinds:
            kinds[kind].append(name)
    schema = CTRSchema(
        format="table",
        label=label,
        categorical=tuple(kinds["categorical"]),
        numeric=tuple(kinds["numeric"]),
        multi_valued=tuple(kinds["multi_valued"]),
        type_column=type_column,
        delimiter=delimiter,
        multi_separator=multi_separator,
        na_values=tuple(na_values),
    )
    return SchemaInference(str(path), schema, tuple(reports), rows, skipped)


def _infer_cvr(path: Path, declared: dict[str, ColumnKind], sample_rows: int) -> SchemaInference:
    """CVR fields seen in the sample; multi-valued where a row carries several ids."""
    counts: dict[int, list[int]] = {}  # field -> [rows with it, max ids in a row, total ids]
    rows = skipped = 0
    for text in _iter_sample_lines(path, 0, sample_rows):
        parts = None if text is None else text.split("\t")
        if parts is None or len(parts) != 5:
            skipped += 1
            continue
        per_row: dict[int, int] = {}
        try:
            for token in parts[4].split():
                _, _, fieldid = token.partition(":")
                per_row[int(fieldid)] = per_row.get(int(fieldid), 0) + 1
        except ValueError:
            skipped += 1
            continue
        rows += 1
        for field, k in per_row.items():
            entry = counts.setdefault(field, [0, 0, 0])
            entry[0] += 1
            entry[1] = max(entry[1], k)
            entry[2] += k
    for name in declared:
        if not (name.startswith("f") and name[1:].isdigit()):
            raise CTRDataError(f"{name}: cvr columns are named f<fieldid>")
        counts.setdefault(int(name[1:]), [0, 0, 0])
    reports, single, multi = [], [], []
    for field in sorted(counts):
        name = f"f{field}"
        present, most, _ = counts[field]
        if name in declared:
            kind, reason = declared[name], "declared"
        elif most > 1:
            kind, reason = "multi_valued", f"up to {most} ids in one row"
        else:
            kind, reason = "categorical", "at most one id per row"
        reports.append(ColumnReport(name, kind, reason, present, rows - present))
        (multi if kind == "multi_valued" else single).append(name)
    if not reports:
        raise CTRDataError(f"{path}: no featid:fieldid pairs in the first {sample_rows:,} rows")
    schema = CTRSchema(
        format="cvr",
        label="label",
        categorical=tuple(single),
        multi_valued=tuple(multi),
        delimiter="\t",
    )
    return SchemaInference(str(path), schema, tuple(reports), rows, skipped)
