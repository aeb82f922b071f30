"""Per-field statistics and id maps of the CTR encoder (`perceptrons.ctr.io.encoding`).

Vectorised over pyarrow / numpy arrays of one chunk (no Python loop over rows): value counts
merged across chunks, a vocabulary with a ``min_count`` threshold (rarer values map to
``OOV_ID``), stable CRC-32 hashing into buckets (`crc32_strings`, `hash_id`: the same ids on
every platform and run), and the streaming moments / reservoir of numeric fields.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from perceptrons.ctr.features import (
    MISSING_ID,
    NUM_SPECIAL_IDS,
    OOV_ID,
)
from perceptrons.ctr.io.schema import (
    combine_strings,
    to_arrow_strings,
)

__all__ = [
    "HashedField",
    "Moments",
    "NumericStats",
    "Reservoir",
    "ValueCounts",
    "Vocabulary",
    "crc32_strings",
    "hash_id",
    "log_transform",
]


# ---------------------------------------------------------------------- per-field encoders
def _crc_table() -> np.ndarray:
    """The 256 entries of the reflected CRC-32 table (polynomial 0xEDB88320, as zlib's)."""
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(0xEDB88320), table >> 1)
    return table.astype(np.uint32)


_CRC_TABLE = _crc_table()


def _string_buffers(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """(offsets (n + 1,) int64 into data, data (bytes,) uint8) of a pyarrow string array."""
    n = len(values)
    width = 8 if values.type.id == _large_string_id() else 4
    _, offsets_buffer, data_buffer = values.buffers()
    offsets = np.frombuffer(
        offsets_buffer,
        dtype=np.int64 if width == 8 else np.int32,
        count=n + 1,
        offset=values.offset * width,
    )
    data = np.zeros(0, np.uint8) if data_buffer is None else np.frombuffer(data_buffer, np.uint8)
    return offsets.astype(np.int64), data


def _large_string_id() -> int:
    import pyarrow as pa

    return pa.large_string().id


def crc32_strings(values: Any, seed: int) -> np.ndarray:
    """(n,) uint32: ``zlib.crc32(v.encode("utf-8"), seed)`` of every value of a string array.

    Vectorised over the values: one numpy step per byte position (values sorted by length, so
    step ``j`` updates the prefix of values longer than ``j``). Nulls get the CRC of "".
    """
    values = combine_strings(values)
    n = len(values)
    crc = np.full(n, ~np.uint32(seed & 0xFFFFFFFF), dtype=np.uint32)
    if n == 0:
        return crc
    offsets, data = _string_buffers(values)
    lengths = np.diff(offsets)
    table = _CRC_TABLE
    if (lengths == lengths[0]).all():  # one width, e.g. Criteo's 8 hexadecimal digits
        width = int(lengths[0])
        matrix = data[offsets[0] : offsets[0] + n * width].reshape(n, width)
        for j in range(width):
            crc = table[(crc ^ matrix[:, j]) & 0xFF] ^ (crc >> 8)
    else:
        order = np.argsort(-lengths, kind="stable")
        starts, longest = offsets[:-1][order], lengths[order]
        sorted_crc = crc[order]
        negated = -longest  # ascending, for searchsorted
        for j in range(int(longest[0])):
            k = int(np.searchsorted(negated, -j, side="left"))  # values longer than j
            head = sorted_crc[:k]
            sorted_crc[:k] = table[(head ^ data[starts[:k] + j]) & 0xFF] ^ (head >> 8)
        crc[order] = sorted_crc
    return crc ^ np.uint32(0xFFFFFFFF)


def hash_id(field: str, value: str, buckets: int) -> int:
    """The id of ``value`` in a hashed ``field``: ``3 + crc32(value, crc32(field)) % buckets``.

    Stable across processes, platforms and Python versions (zlib's CRC-32 of the UTF-8 bytes).
    """
    return (
        NUM_SPECIAL_IDS
        + zlib.crc32(value.encode("utf-8"), zlib.crc32(field.encode("utf-8"))) % buckets
    )


def _null_mask(values: Any) -> np.ndarray:
    """(n,) bool: the nulls of a pyarrow array."""
    if not values.null_count:
        return np.zeros(len(values), dtype=bool)
    return np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def _indices(values: Any) -> np.ndarray:
    """A pyarrow integer array as int64 numpy, nulls as -1."""
    return np.asarray(values.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)


class Vocabulary:
    """Values kept in training -> ids ``NUM_SPECIAL_IDS + rank``; others OOV, nulls MISSING."""

    kind = "vocab"

    def __init__(self, values: Any) -> None:
        self._list: list[str] | None = values if isinstance(values, list) else None
        self._arrow = None if isinstance(values, list) else combine_strings(values)
        self._lookup: Any = None
        self.size = len(values)

    @property
    def values(self) -> list[str]:
        """The vocabulary, most frequent first."""
        if self._list is None:
            self._list = self._arrow.to_pylist()
        return self._list

    @property
    def arrow(self) -> Any:
        if self._arrow is None:
            self._arrow = combine_strings(self._list)
        return self._arrow

    @property
    def lookup(self) -> Any:
        """``[null, *vocabulary]`` as a pyarrow array (the value set of `encode`)."""
        if self._lookup is None:
            import pyarrow as pa

            self._lookup = pa.concat_arrays([pa.nulls(1, pa.string()), self.arrow])
        return self._lookup

    @property
    def cardinality(self) -> int:
        return NUM_SPECIAL_IDS + self.size

    def encode(self, values: Any, out: np.ndarray | None = None) -> np.ndarray:
        """(n,) int64 ids of a string column (written into ``out`` when given)."""
        pc = _compute()
        values = to_arrow_strings(values)
        n = len(values)
        ids = np.empty(n, dtype=np.int64) if out is None else out
        if self.size == 0 or n == 0 or n == values.null_count:
            ids[...] = OOV_ID
        elif self.size <= 4 * n:
            # One hash table of [null, *vocabulary] per call, O(vocabulary + rows): a null
            # (missing) value finds index 0, vocabulary value i index i + 1, an unknown one
            # nothing (null, filled with -1); adding MISSING_ID maps them to MISSING_ID,
            # NUM_SPECIAL_IDS + i and OOV_ID.
            index = pc.index_in(values, value_set=self.lookup, skip_nulls=False)
            index = index.fill_null(OOV_ID - MISSING_ID)
            np.add(index.to_numpy(), MISSING_ID, out=ids)
            return ids
        else:
            # a vocabulary much larger than the chunk: hash the chunk's distinct values and
            # probe the vocabulary into them (probing is cheaper than building)
            encoded = combine_strings(values).dictionary_encode()
            position = _indices(pc.index_in(self.arrow, value_set=encoded.dictionary))
            found = np.flatnonzero(position >= 0)
            of_distinct = np.full(len(encoded.dictionary), OOV_ID, dtype=np.int64)
            of_distinct[position[found]] = found + NUM_SPECIAL_IDS
            ids[...] = of_distinct[np.maximum(_indices(encoded.indices), 0)]
        if values.null_count:
            ids[_null_mask(values)] = MISSING_ID
        return ids

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "vocab", "values": self.values}


class HashedField:
    kind = "hash"

    def __init__(self, field: str, buckets: int) -> None:
        self.buckets = buckets
        self.seed = zlib.crc32(field.encode("utf-8"))

    @property
    def cardinality(self) -> int:
        return NUM_SPECIAL_IDS + self.buckets

    def encode(self, values: Any, out: np.ndarray | None = None) -> np.ndarray:
        """(n,) int64 ids of a string column (written into ``out`` when given)."""
        values = combine_strings(values)
        ids = np.empty(len(values), dtype=np.int64) if out is None else out
        crc = crc32_strings(values, self.seed)
        np.add(crc.astype(np.int64) % self.buckets, NUM_SPECIAL_IDS, out=ids)
        if values.null_count:
            ids[_null_mask(values)] = MISSING_ID
        return ids

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "hash", "buckets": self.buckets}


if NUM_SPECIAL_IDS != MISSING_ID + 1:  # `Vocabulary.encode` relies on it
    raise ImportError("perceptrons.ctr: expected NUM_SPECIAL_IDS == MISSING_ID + 1")

_MAX_PENDING = 8  # chunks of counts waiting to be merged, at most
_MIN_MERGE = 1 << 16  # pending distinct values that trigger a merge, at least


class ValueCounts:
    """Value counts of one field over a stream of chunks, kept in pyarrow arrays.

    Each chunk is counted with ``value_counts``; the counts wait in a list and are merged into
    the running table (a hash aggregation) once they outnumber it twice (and at least
    `_MIN_MERGE`), or once `_MAX_PENDING` chunks wait. With chunks of many rows a value is
    thus merged O(1) times on average; memory is the distinct values plus the pending counts
    (at most twice as many, or `_MAX_PENDING` chunks).
    """

    def __init__(self) -> None:
        self.values: Any = None  # pyarrow string array of distinct values
        self.counts: Any = None  # pyarrow int64 array, their counts
        self.pending: list[tuple[Any, Any]] = []
        self.pending_size = 0
        self.pending_chunks = 0  # chunks counted in `pending` (a concatenation holds several)
        self.total = 0  # values seen (nulls included)
        self.missing = 0  # nulls

    @property
    def size(self) -> int:
        return 0 if self.values is None else len(self.values)

    def update(self, values: Any) -> None:
        values = to_arrow_strings(values)
        self.total += len(values)
        self.missing += values.null_count
        if len(values) == values.null_count:
            return
        counted = _compute().value_counts(values)
        distinct, counts = counted.field(0), counted.field(1)
        if values.null_count:
            valid = distinct.is_valid()
            distinct, counts = distinct.filter(valid), counts.filter(valid)
        self.pending.append((distinct, counts))
        self.pending_size += len(distinct)
        self.pending_chunks += 1
        if self.pending_size >= max(2 * self.size, _MIN_MERGE) or len(self.pending) >= _MAX_PENDING:
            self._merge()

    @staticmethod
    def _concat(parts: list[tuple[Any, Any]]) -> tuple[Any, Any]:
        import pyarrow as pa

        return (
            pa.concat_arrays([v for v, _ in parts]),
            pa.concat_arrays([c for _, c in parts]),
        )

    def _merge(self) -> None:
        import pyarrow as pa

        parts = self.pending if self.values is None else [(self.values, self.counts), *self.pending]
        counted = self.pending_chunks + (self.values is not None)
        self.pending, self.pending_size, self.pending_chunks = [], 0, 0
        if not parts:
            return
        values, counts = self._concat(parts)
        if counted > 1:  # a value may appear in several parts
            table = pa.table({"v": values, "c": counts})
            merged = table.group_by("v", use_threads=False).aggregate([("c", "sum")])
            values = merged.column("v").combine_chunks()
            counts = merged.column("c_sum").combine_chunks()
        self.values, self.counts = values, counts

    def vocabulary(self, min_count: int) -> tuple[Any, int]:
        """(values counted >= min_count times, most frequent first, ties by value; the number
        of counted values left out, i.e. OOV in the fitting data)."""
        import pyarrow as pa

        pc = _compute()
        self._merge()
        if self.values is None:
            return pa.array([], type=pa.string()), 0
        table = pa.table({"v": self.values, "c": self.counts})
        kept = table.filter(pc.greater_equal(table.column("c"), min_count))
        # UTF-8 byte order is code point order: the order of Python's sort of the strings
        kept = kept.sort_by([("c", "descending"), ("v", "ascending")])
        left_out = int(pc.sum(self.counts).as_py() or 0) - int(
            pc.sum(kept.column("c")).as_py() or 0
        )
        return kept.column("v").combine_chunks(), left_out


def _compute() -> Any:
    import pyarrow.compute as pc

    return pc


def log_transform(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


class Moments:
    """Count, mean and sum of squared deviations, merged chunk by chunk (Chan et al. 1979)."""

    def __init__(self) -> None:
        self.count, self.mean, self.m2 = 0, 0.0, 0.0

    def update(self, x: np.ndarray) -> None:
        x = x[~np.isnan(x)]
        n = x.size
        if n == 0:
            return
        mean = float(x.mean())
        m2 = float(((x - mean) ** 2).sum())
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.count * n / total
        self.count = total


class Reservoir:
    """A uniform sample of at most ``size`` values: the ones with the smallest random keys."""

    def __init__(self, size: int, rng: np.random.Generator) -> None:
        self.size, self.rng = size, rng
        self.keys = np.zeros(0)
        self.values = np.zeros(0)

    def update(self, x: np.ndarray) -> None:
        x = x[~np.isnan(x)]
        keys = np.concatenate([self.keys, self.rng.random(x.size)])
        values = np.concatenate([self.values, x])
        if keys.size > self.size:
            keep = np.argpartition(keys, self.size - 1)[: self.size]
            keys, values = keys[keep], values[keep]
        self.keys, self.values = keys, values


class NumericStats:
    def __init__(self, kind: str, params: dict[str, Any]) -> None:
        self.kind = kind
        self.params = params
        if kind == "quantile":
            self.boundaries = np.asarray(params["boundaries"], dtype=np.float64)

    @property
    def cardinality(self) -> int:  # quantile fields only
        return NUM_SPECIAL_IDS + len(self.params["boundaries"]) + 1

    def encode(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Quantile fields: (n,) int64 ids; the others: (n,) float32 (into ``out`` if given)."""
        if self.kind == "quantile":
            ids = NUM_SPECIAL_IDS + np.searchsorted(self.boundaries, x, side="left")
            ids = np.where(np.isnan(x), MISSING_ID, ids)
            dtype: Any = np.int64
        else:
            if self.kind == "log_standardize":
                x = log_transform(x)
            ids = np.subtract(x, self.params["mean"])
            ids /= self.params["std"]
            np.nan_to_num(ids, copy=False, nan=0.0)
            dtype = np.float32
        if out is None:
            return ids.astype(dtype)
        out[...] = ids
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.params}
