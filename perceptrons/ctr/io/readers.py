"""Streaming readers of CTR files: Criteo TSV, CSV/TSV/Parquet tables, CVR challenge records.

Every reader yields `RawChunk` objects of at most ``chunk_rows`` rows, so memory is bounded by
the chunk size whatever the file size. A row that does not match its format raises
`MalformedRowError` naming file, line and column, or, with ``skip_bad_rows=True``, is skipped
and counted in `ReadStats`.

Example::

    stats = ReadStats()
    for chunk in iter_chunks("train.txt", criteo_schema(), chunk_rows=65_536, stats=stats):
        ...                                   # chunk.labels: (rows,), chunk.numeric["I1"]: (rows,)
    print(stats.summary())

**How Criteo and table files are read.** The file is cut into blocks of whole lines (128
bytes per row of a chunk, 16 KiB to 8 MiB) read into one reused buffer, and each block is
parsed by ``pyarrow.csv.read_csv`` with explicit column types: strings for every column but
the numeric ones (ids are never parsed as numbers; float64 for numeric columns), quoting off
for Criteo files, empty lines kept as rows so that row ``i`` of a block is its line ``i``.
String columns stay pyarrow arrays in the chunk (`Columns`), so no Python object is made per
value; a background thread parses the next block while the caller uses the current chunk.
The blocks are then re-cut into chunks of exactly ``chunk_rows`` rows.

**Errors stay the Python parser's.** A block is handed back to the line-by-line Python parser
(`python_rows`, the reader of cvr files) when pyarrow would not read it exactly as that parser
does, or when anything in it is malformed: a row with the wrong number of columns (pyarrow's
``invalid_row_handler`` flags it), invalid UTF-8 or a value that is not a number (pyarrow
refuses the block), a label other than "0"/"1", an infinite number, a type that is not an
integer, a lone ``\r`` (pyarrow ends a row there), a quoted cell that Python's csv module
rejects or that spans lines (checked per quoted line with a regular expression), a UTF-8 BOM
at a block's start. The Python parser then reports the first malformed row with its file,
line and column, or skips and counts each one, exactly as before; only that block is read at
Python speed. Blank lines are found from the rows whose cells are all empty and counted in
``stats.blank_lines``. The tests compare both readers on every fixture and on random files.

Parquet files are read batch by batch with ``pyarrow.parquet``; cvr files line by line in
Python (their ``featid:fieldid`` lists are parsed per row).
"""

from __future__ import annotations

import io
import os
import queue
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from perceptrons.ctr.io.schema import (
    Columns,
    CTRSchema,
    MalformedRowError,
    RawChunk,
    ReadStats,
    empty_like_schema,
)
from perceptrons.ctr.io.text import (
    UTF8_BOM,
    CriteoParser,
    LineParser,
    TableParser,
    make_parser,
    python_chunks,
    python_rows,
    read_table_header,
)

__all__ = ["is_parquet", "iter_chunks", "read_file", "read_table_header", "require_pyarrow"]


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
            "reading CTR files needs pyarrow (a dependency of perceptrons): "
            "pip install 'pyarrow>=14'"
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
        ImportError: pyarrow is not installed.
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
    if schema.format == "cvr":
        return python_chunks(path, schema, chunk_rows, skip_bad_rows, require_label, stats)
    parser = make_parser(path, schema, require_label)  # a table's header is read now
    require_pyarrow()
    return _arrow_chunks(path, parser, chunk_rows, skip_bad_rows, stats)


# ---------------------------------------------------------------------- the pyarrow reader
# Bytes handed to pyarrow at a time: 128 per row of a chunk (a Criteo row has ~210), within
# these bounds, so that memory stays O(chunk_rows) and small chunks stay small.
_MIN_BLOCK_BYTES = 16 << 10
_MAX_BLOCK_BYTES = 8 << 20
_BYTES_PER_ROW = 128
_READ_AHEAD = True  # parse the next block in a background thread


def _block_bytes(chunk_rows: int) -> int:
    return min(max(chunk_rows * _BYTES_PER_ROW, _MIN_BLOCK_BYTES), _MAX_BLOCK_BYTES)


def _quoted_line_pattern(delimiter: str) -> re.Pattern[bytes]:
    """A line that Python's csv module (strict, double quotes) and pyarrow split alike.

    Cells are either quoted (``"..."`` with ``""`` for a quote, nothing after the closing
    quote) or do not start with a quote; the line may end with ``\\r``.
    """
    d = re.escape(delimiter.encode())
    cell = rb'(?:"(?:[^"\r]|"")*+"|(?:[^"' + d + rb"\r][^" + d + rb"\r]*)?)"
    return re.compile(rb"(?:" + cell + d + rb")*+" + cell + rb"\r?")


class _ArrowBlockReader:
    """Parses a block of whole lines of a Criteo or table file with ``pyarrow.csv``.

    `parse` returns the block's rows as a `RawChunk` (string columns as pyarrow arrays), or
    None when the block holds anything pyarrow would read differently from `python_rows`, or
    anything malformed: a wrong column count, invalid UTF-8, a value that is not a number or a
    label, a lone ``\\r``, quoting the csv module rejects, a BOM. The caller then parses that
    block with the Python parser, which names the line and column of the error, so both
    readers give the same rows and the same errors.
    """

    def __init__(self, parser: LineParser) -> None:
        import pyarrow as pa
        import pyarrow.csv as pv

        self.pa, self.pv, self.parser = pa, pv, parser
        schema = parser.schema
        self.schema = schema
        self.require_label = parser.require_label
        if isinstance(parser, TableParser):
            self.names = list(parser.names)
            self.label = schema.label if parser.label_index is not None else None
            self.type_column = schema.type_column if parser.type_index is not None else None
            self.quoted: re.Pattern[bytes] | None = _quoted_line_pattern(schema.delimiter)
            null_values = ["", *schema.na_values]
        else:  # criteo: 40 columns, or 39 without the label
            self.names = list(CriteoParser.names)
            self.label, self.type_column, self.quoted = "label", None, None
            null_values = [""]
        self.delimiter = schema.delimiter
        self.options: dict[int, tuple[Any, Any, Any]] = {}
        self.null_values = null_values

    def _options(self, names: list[str]) -> tuple[Any, Any, Any]:
        pa, pv = self.pa, self.pv
        key = len(names)
        if key not in self.options:
            numeric = set(self.schema.numeric)
            types = {n: (pa.float64() if n in numeric else pa.string()) for n in names}
            self.options[key] = (
                pv.ReadOptions(column_names=names, use_threads=True, block_size=1 << 20),
                types,
                pv.ConvertOptions(
                    column_types=types,
                    null_values=self.null_values,
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=True,
                ),
            )
        return self.options[key]

    def parse(
        self, block: _Block, first_line: int, lines: int, stats: ReadStats
    ) -> RawChunk | None:
        """The ``lines`` lines of ``block`` (the first is line ``first_line``), or None."""
        if not block.end or block.startswith(UTF8_BOM):
            return None
        if block.has(b"\r") and block.count(b"\r") != block.count(b"\r\n"):
            return None  # a lone \r: pyarrow ends a row there, the Python reader does not
        quoted = self.quoted is not None and block.has(b'"')
        if quoted and not self._quotes_agree(block):
            return None
        names = self.names
        if isinstance(self.parser, CriteoParser) and not self.require_label:
            if block.first_line().count(b"\t") == 38:  # unlabelled: I1 is the first column
                names = names[1:]
        read_options, _, convert_options = self._options(names)
        invalid: list[int] = []

        def handler(row: Any) -> str:
            invalid.append(1)
            return "skip"

        parse_options = self.pv.ParseOptions(
            delimiter=self.delimiter,
            quote_char='"' if quoted else False,
            double_quote=True,
            ignore_empty_lines=False,
            invalid_row_handler=handler,
        )
        try:
            table = self.pv.read_csv(
                self.pa.py_buffer(block.view()),
                read_options=read_options,
                parse_options=parse_options,
                convert_options=convert_options,
            )
        except self.pa.lib.ArrowException:
            return None  # invalid UTF-8, a value that is not a number, ...
        if invalid or table.num_rows != lines:
            return None
        return self._to_chunk(table, block, first_line, stats)

    def _quotes_agree(self, block: _Block) -> bool:
        match = self.quoted.fullmatch  # type: ignore[union-attr]
        return all(match(line) for line in block.to_bytes().split(b"\n") if b'"' in line)

    def _blank_rows(self, table: Any, block: _Block) -> np.ndarray | None:
        """(rows,) bool: rows of empty lines (all cells null and nothing on the line)."""
        first = table.column(0)
        if not first.null_count:
            return None
        pc = _compute()
        empty = np.asarray(first.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        for j in range(1, table.num_columns):
            if not empty.any():
                return None
            column = table.column(j)
            if column.null_count:
                empty &= np.asarray(pc.is_null(column).to_numpy(zero_copy_only=False), dtype=bool)
            else:
                return None
        if not empty.any():
            return None
        data = np.frombuffer(block.view(), dtype=np.uint8)
        ends = np.flatnonzero(data == 10)
        if ends.size < table.num_rows:  # the last line has no newline
            ends = np.append(ends, data.size)
        starts = np.concatenate([[0], ends[:-1] + 1])
        lengths = ends - starts
        rows = np.flatnonzero(empty)
        # every \r is followed by \n here (see `parse`): a line of one \r is an empty line
        carriage = (lengths[rows] == 1) & (data[np.minimum(starts[rows], data.size - 1)] == 13)
        blank = np.zeros(table.num_rows, dtype=bool)
        blank[rows] = (lengths[rows] == 0) | carriage
        return blank if blank.any() else None

    def _to_chunk(
        self, table: Any, block: _Block, first_line: int, stats: ReadStats
    ) -> RawChunk | None:
        pa, pc = self.pa, _compute()
        schema = self.schema
        n = table.num_rows
        lines = np.arange(first_line, first_line + n, dtype=np.int64)
        blank = self._blank_rows(table, block)
        if blank is not None:
            keep = ~blank
            table = table.filter(pa.array(keep))
            lines = lines[keep]
            n = table.num_rows
        labels = np.full(n, np.nan, dtype=np.float32)
        if self.label is not None and self.label in table.column_names:
            column = table.column(self.label)
            ones = _bool_numpy(pc.equal(column, "1"))
            zeros = _bool_numpy(pc.equal(column, "0"))
            valid = _bool_numpy(pc.is_valid(column))
            if (valid & ~(ones | zeros)).any():
                return None  # e.g. "1.0" or "2": the Python parser reads or rejects it
            if self.require_label and not valid.all():
                return None
            labels[zeros] = 0.0
            labels[ones] = 1.0
        types = np.full(n, -1, dtype=np.int64)
        if self.type_column is not None:
            column = table.column(self.type_column)
            if column.null_count < n:
                digits = _bool_numpy(pc.match_substring_regex(column, "^[0-9]+$"))
                valid = _bool_numpy(pc.is_valid(column))
                if (valid & ~digits).any():
                    return None
                try:
                    values = pc.cast(column, pa.int64()).fill_null(-1)
                except (pa.ArrowInvalid, OverflowError):
                    return None
                types = np.asarray(values.to_numpy(), dtype=np.int64)
        numeric: dict[str, np.ndarray] = {}
        for name in schema.numeric:
            x = np.asarray(table.column(name).to_numpy(), dtype=np.float64)
            if np.isinf(x).any():
                return None
            numeric[name] = x
        categorical = {name: table.column(name) for name in schema.categorical}  # no copy
        multi = {
            name: _split_multi(table.column(name).combine_chunks(), schema.multi_separator)
            for name in schema.multi_valued
        }
        stats.blank_lines += 0 if blank is None else int(blank.sum())
        return RawChunk(
            line_numbers=lines,
            labels=labels,
            categorical=Columns(categorical),
            numeric=numeric,
            multi_valued=Columns(multi),
            types=types,
        )


def _compute() -> Any:
    import pyarrow.compute as pc

    return pc


def _bool_numpy(values: Any) -> np.ndarray:
    """A pyarrow boolean (chunked) array as numpy bool, nulls as False."""
    return np.asarray(values.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _split_multi(cells: Any, separator: str) -> tuple[Any, np.ndarray]:
    """Cells joined by ``separator`` -> (values, offsets); empty values are dropped."""
    pc = _compute()
    n = len(cells)
    lists = pc.split_pattern(cells, pattern=separator)
    flat = lists.flatten()
    parents = np.asarray(pc.list_parent_indices(lists).to_numpy(), dtype=np.int64)
    keep = np.asarray(pc.binary_length(flat).to_numpy(zero_copy_only=False)) > 0
    values = flat.filter(_arrow().array(keep)) if not keep.all() else flat
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(parents[keep], minlength=n), out=offsets[1:])
    return values, offsets


def _arrow() -> Any:
    import pyarrow as pa

    return pa


class _Block:
    """Bytes ``data[:end]`` of whole lines (the file's last line may lack its newline)."""

    __slots__ = ("data", "end")

    def __init__(self, data: bytearray, end: int) -> None:
        self.data, self.end = data, end

    def count(self, sub: bytes) -> int:
        return self.data.count(sub, 0, self.end)

    def has(self, sub: bytes) -> bool:
        return self.data.find(sub, 0, self.end) >= 0

    def startswith(self, prefix: bytes) -> bool:
        return self.data.startswith(prefix, 0, self.end)

    def lines(self) -> int:
        """Number of lines."""
        last = self.end > 0 and self.data[self.end - 1] != 10  # no newline at the end
        return self.count(b"\n") + int(last)

    def first_line(self) -> bytes:
        cut = self.data.find(b"\n", 0, self.end)
        return bytes(self.data[: self.end if cut < 0 else cut])

    def view(self) -> memoryview:
        return memoryview(self.data)[: self.end]

    def to_bytes(self) -> bytes:
        return bytes(self.view())


def _iter_blocks(path: Path, offset: int, size: int) -> Iterator[_Block]:
    """Blocks of about ``size`` bytes of whole lines from byte ``offset`` of the file.

    One buffer is read into and reused (a block is valid until the next one is asked for); a
    line longer than the buffer grows it.
    """
    buffer = bytearray(size)
    start = 0  # bytes of an incomplete line carried over at the start of the buffer
    with open(path, "rb", buffering=0) as handle:
        handle.seek(offset)
        while True:
            if start == len(buffer):
                buffer = buffer + bytearray(len(buffer))
            with memoryview(buffer) as view:
                read = handle.readinto(view[start:])
            if not read:
                if start:
                    yield _Block(buffer, start)
                return
            end = start + read
            cut = buffer.rfind(b"\n", 0, end) + 1
            if cut == 0:
                start = end
                continue
            yield _Block(buffer, cut)
            start = end - cut
            buffer[:start] = buffer[cut:end]


def _arrow_chunks(
    path: Path, parser: LineParser, chunk_rows: int, skip_bad_rows: bool, stats: ReadStats
) -> Iterator[RawChunk]:
    """`iter_chunks` of a Criteo or table file: blocks parsed by pyarrow, re-cut into chunks.

    A block that pyarrow cannot read exactly as `python_rows` would (see `_ArrowBlockReader`)
    is parsed line by line in Python instead, so the errors and their line numbers are the
    Python reader's.
    """
    display = str(path)
    reader = _ArrowBlockReader(parser)
    offset, first_line = 0, 1
    if isinstance(parser, TableParser):
        with open(path, "rb") as handle:
            offset, first_line = len(handle.readline()), 2
    else:
        with open(path, "rb") as handle:
            if handle.read(3) == UTF8_BOM:
                offset = 3  # line 1 keeps its number

    def blocks() -> Iterator[RawChunk]:
        line = first_line
        for block in _iter_blocks(path, offset, _block_bytes(chunk_rows)):
            count = block.lines()
            chunk = reader.parse(block, line, count, stats)
            if chunk is None:
                rows, numbers = [], []
                lines = io.BytesIO(block.to_bytes())
                try:
                    for row, lineno in python_rows(
                        lines, line, parser, display, skip_bad_rows, stats, strip_bom=False
                    ):
                        rows.append(row)
                        numbers.append(lineno)
                except MalformedRowError:
                    if rows:  # the rows before the error, as the Python reader gives them
                        yield parser.assemble(rows, numbers)
                    raise
                chunk = parser.assemble(rows, numbers) if rows else None
            line += count
            if chunk is not None and chunk.num_rows:
                yield chunk

    pending: list[RawChunk] = []
    count = 0
    for block in _read_ahead(blocks()) if _READ_AHEAD else blocks():
        pending.append(block)
        count += block.num_rows
        while count >= chunk_rows:
            parts, need = [], chunk_rows
            while need:
                head = pending[0]
                if head.num_rows <= need:
                    parts.append(pending.pop(0))
                    need -= head.num_rows
                else:
                    parts.append(head.slice(0, need))
                    pending[0] = head.slice(need, head.num_rows)
                    need = 0
            count -= chunk_rows
            stats.rows += chunk_rows
            yield RawChunk.concat(parts)
    if pending:
        stats.rows += count
        yield RawChunk.concat(pending)


def _read_ahead(items: Iterator[Any]) -> Iterator[Any]:
    """``items``, produced one step ahead by a background thread.

    The next block is read and parsed (pyarrow releases the GIL) while the caller works on
    the current chunk, e.g. encodes it. An exception of ``items`` is raised here, in order;
    closing this generator (or dropping it) stops the thread at its next item.
    """
    slot: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(message: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                slot.put(message, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
            put(("done", None))
        except BaseException as error:  # handed to the consumer, never lost in the thread
            put(("error", error))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=work, name="perceptrons-ctr-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = slot.get()
            if kind == "item":
                yield value
            elif kind == "done":
                return
            else:
                raise value
    finally:
        stop.set()
        while worker.is_alive():
            try:
                slot.get(timeout=0.05)
            except queue.Empty:
                pass
        worker.join()


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
