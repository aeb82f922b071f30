"""Feature encoding fitted on training data, saved as JSON with the model (never pickled).

`CTREncoder` turns `RawChunk` rows into a `CTRBatch` of tensors:

* categorical and multi-valued fields: a **vocabulary** (values seen at least ``min_count``
  times in training, most frequent first, ties by value) or the **hashing trick**
  (``NUM_SPECIAL_IDS + crc32(value, seed=crc32(field)) mod hash_buckets``: stable across
  processes and platforms, unlike Python's salted ``hash``). Values outside the vocabulary map
  to ``OOV_ID`` and empty fields to ``MISSING_ID``, so **unseen categories never fail**;
* numeric fields: ``standardize`` (``(x - mean) / std``), ``log_standardize`` (the same after
  ``sign(x) log(1 + |x|)``, for heavy-tailed counts such as Criteo's), both with missing -> 0;
  or ``quantile``: the value's bucket between training quantiles ``q_1 < ... < q_{B-1}``
  (bucket ``i`` holds ``q_i < x <= q_{i+1}``) becomes a categorical field (missing ->
  ``MISSING_ID``), appended after the categorical fields.

Fitting streams: `CTREncoder.fit` takes an iterable of chunks (one pass). Memory is the
vocabularies (O(distinct values); hashing needs none), the numeric moments, and a bounded
reservoir sample per quantile field. Numeric moments are combined chunk by chunk (Chan et al.),
so the result does not depend on the chunk size.

Example::

    encoder, stats = fit_encoder("train.txt", criteo_schema(), EncoderConfig(min_count=10))
    encoder.save("model/encoder.json")
    for batch in iter_encoded("test.txt", CTREncoder.load("model/encoder.json")):
        ...                                       # batch.categorical: (rows, 26) int64
"""

from __future__ import annotations

import math
import os
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from perceptrons.config import Config, require
from perceptrons.ctr.features import (
    MISSING_ID,
    NUM_SPECIAL_IDS,
    OOV_ID,
    PAD_ID,
    CTRBatch,
    CTRFeatures,
)
from perceptrons.ctr.io.readers import iter_chunks
from perceptrons.ctr.io.schema import CTRSchema, RawChunk, ReadStats
from perceptrons.io import load_json, save_json

__all__ = [
    "CTREncoder",
    "EncoderConfig",
    "encode_file",
    "fit_encoder",
    "hash_id",
    "iter_encoded",
]

_FORMAT = "perceptrons.ctr.encoder"
_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class EncoderConfig(Config):
    """How the fields of a CTR schema are encoded.

    Attributes:
        categorical_encoding: "vocab" (vocabulary + OOV id) or "hash" (hashing trick) for every
            categorical and multi-valued field.
        hash_fields: Fields hashed even when ``categorical_encoding`` is "vocab" (e.g. ids with
            millions of values).
        min_count: Vocabulary fields keep values seen at least this often in training; rarer ones
            map to the OOV id (FuxiCTR's ``min_categr_count``; the reczoo CVR baseline used 10).
        hash_buckets: Buckets per hashed field (cardinality = 3 + hash_buckets).
        numeric_encoding: "standardize", "log_standardize" or "quantile".
        num_quantile_buckets: Buckets of a quantile-encoded numeric field (at most; tied
            quantiles merge).
        quantile_sample_size: Values per numeric field kept (uniformly at random) to estimate
            the quantiles.
        max_multi_length: Keep at most this many ids of a multi-valued field per row (the
            first ones); None keeps all.
        seed: Seed of the quantile reservoir sample.
    """

    categorical_encoding: Literal["vocab", "hash"] = "vocab"
    hash_fields: tuple[str, ...] = ()
    min_count: int = 1
    hash_buckets: int = 2**18
    numeric_encoding: Literal["standardize", "log_standardize", "quantile"] = "standardize"
    num_quantile_buckets: int = 16
    quantile_sample_size: int = 100_000
    max_multi_length: int | None = None
    seed: int = 0

    def validate(self) -> None:
        require(self.min_count >= 1, "min_count", "must be >= 1", self.min_count)
        require(self.hash_buckets >= 1, "hash_buckets", "must be >= 1", self.hash_buckets)
        require(
            self.num_quantile_buckets >= 2,
            "num_quantile_buckets",
            "must be >= 2",
            self.num_quantile_buckets,
        )
        require(
            self.quantile_sample_size >= 1,
            "quantile_sample_size",
            "must be >= 1",
            self.quantile_sample_size,
        )
        require(
            self.max_multi_length is None or self.max_multi_length >= 1,
            "max_multi_length",
            "must be >= 1 or None",
            self.max_multi_length,
        )


def hash_id(field: str, value: str, buckets: int) -> int:
    """The id of ``value`` in a hashed ``field``: ``3 + crc32(value, crc32(field)) % buckets``.

    Stable across processes, platforms and Python versions (zlib's CRC-32 of the UTF-8 bytes).
    """
    return (
        NUM_SPECIAL_IDS
        + zlib.crc32(value.encode("utf-8"), zlib.crc32(field.encode("utf-8"))) % buckets
    )


# ---------------------------------------------------------------------- per-field encoders
class _Vocab:
    kind = "vocab"

    def __init__(self, values: list[str]) -> None:
        self.values = values
        self.lookup: dict[str | None, int] = {v: i + NUM_SPECIAL_IDS for i, v in enumerate(values)}
        self.lookup[None] = MISSING_ID

    @property
    def cardinality(self) -> int:
        return NUM_SPECIAL_IDS + len(self.values)

    def encode(self, values: np.ndarray) -> np.ndarray:
        get = self.lookup.get
        return np.fromiter((get(v, OOV_ID) for v in values), dtype=np.int64, count=len(values))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "vocab", "values": self.values}


class _Hash:
    kind = "hash"

    def __init__(self, field: str, buckets: int) -> None:
        self.buckets = buckets
        self.seed = zlib.crc32(field.encode("utf-8"))

    @property
    def cardinality(self) -> int:
        return NUM_SPECIAL_IDS + self.buckets

    def encode(self, values: np.ndarray) -> np.ndarray:
        crc, seed, buckets = zlib.crc32, self.seed, self.buckets
        return np.fromiter(
            (
                MISSING_ID
                if v is None
                else NUM_SPECIAL_IDS + crc(v.encode("utf-8"), seed) % buckets
                for v in values
            ),
            dtype=np.int64,
            count=len(values),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "hash", "buckets": self.buckets}


def _log_transform(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


class _Moments:
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


class _Reservoir:
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


class _Numeric:
    def __init__(self, kind: str, params: dict[str, Any]) -> None:
        self.kind = kind
        self.params = params
        if kind == "quantile":
            self.boundaries = np.asarray(params["boundaries"], dtype=np.float64)

    @property
    def cardinality(self) -> int:  # quantile fields only
        return NUM_SPECIAL_IDS + len(self.params["boundaries"]) + 1

    def encode(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "quantile":
            ids = NUM_SPECIAL_IDS + np.searchsorted(self.boundaries, x, side="left")
            return np.where(np.isnan(x), MISSING_ID, ids).astype(np.int64)
        if self.kind == "log_standardize":
            x = _log_transform(x)
        z = (x - self.params["mean"]) / self.params["std"]
        return np.nan_to_num(z, nan=0.0).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.params}


# ---------------------------------------------------------------------- the encoder
class CTREncoder:
    """Encodes the rows of a schema's files; fitted once on training data, then saved.

    Args:
        schema: The columns (from `criteo_schema`, `cvr_schema` or `infer_schema`).
        config: How to encode them.

    Example::

        encoder = CTREncoder(schema, EncoderConfig(min_count=2)).fit(iter_chunks(path, schema))
        batch = encoder.transform(chunk)          # CTRBatch
        CTREncoder.from_dict(encoder.to_dict())   # an identical encoder
    """

    def __init__(self, schema: CTRSchema, config: EncoderConfig | None = None) -> None:
        if not isinstance(schema, CTRSchema):
            raise TypeError(f"schema: expected a CTRSchema, got {type(schema).__name__}")
        self.schema = schema
        self.config = EncoderConfig() if config is None else config
        unknown = sorted(
            set(self.config.hash_fields) - set(schema.categorical + schema.multi_valued)
        )
        if unknown:
            raise ValueError(
                f"hash_fields: {unknown[0]!r} is not a categorical or multi-valued field"
            )
        self._categorical: dict[str, _Vocab | _Hash] = {}
        self._multi: dict[str, _Vocab | _Hash] = {}
        self._numeric: dict[str, _Numeric] = {}
        self.num_types = 0
        self.num_rows_fitted = 0
        self.fitted = False

    def _hashed(self, name: str) -> bool:
        return self.config.categorical_encoding == "hash" or name in self.config.hash_fields

    # ------------------------------------------------------------------ fitting
    def fit(self, chunks: Iterable[RawChunk]) -> CTREncoder:
        """Fit vocabularies, numeric statistics and the number of types in one pass.

        Args:
            chunks: Training rows, e.g. ``iter_chunks(path, schema)``.

        Returns:
            ``self``, fitted.

        Raises:
            ValueError: a chunk without a column of the schema.
        """
        schema, config = self.schema, self.config
        counters = {
            name: Counter()
            for name in (*schema.categorical, *schema.multi_valued)
            if not self._hashed(name)
        }
        moments = {name: _Moments() for name in schema.numeric}
        rng = np.random.default_rng(config.seed)
        reservoirs = {name: _Reservoir(config.quantile_sample_size, rng) for name in schema.numeric}
        quantile = config.numeric_encoding == "quantile"
        log = config.numeric_encoding == "log_standardize"
        rows, max_type = 0, -1
        for chunk in chunks:
            self._check_columns(chunk)
            rows += chunk.num_rows
            if chunk.num_rows:
                max_type = max(max_type, int(chunk.types.max()))
            for name, counter in counters.items():
                if name in chunk.categorical:
                    counter.update(chunk.categorical[name])
                else:
                    counter.update(chunk.multi_valued[name][0])
            for name in schema.numeric:
                x = chunk.numeric[name]
                if quantile:
                    reservoirs[name].update(x)
                else:
                    moments[name].update(_log_transform(x) if log else x)
        for name in (*schema.categorical, *schema.multi_valued):
            table = self._categorical if name in schema.categorical else self._multi
            if self._hashed(name):
                table[name] = _Hash(name, config.hash_buckets)
            else:
                counter = counters[name]
                counter.pop(None, None)
                kept = [(c, v) for v, c in counter.items() if c >= config.min_count]
                kept.sort(key=lambda cv: (-cv[0], cv[1]))
                table[name] = _Vocab([v for _, v in kept])
        for name in schema.numeric:
            if quantile:
                sample = np.sort(reservoirs[name].values)
                if sample.size:
                    levels = np.arange(1, config.num_quantile_buckets) / config.num_quantile_buckets
                    bounds = np.unique(np.quantile(sample, levels, method="lower"))
                else:
                    bounds = np.zeros(0)
                self._numeric[name] = _Numeric("quantile", {"boundaries": bounds.tolist()})
            else:
                m = moments[name]
                std = math.sqrt(m.m2 / m.count) if m.count else 1.0
                params = {"mean": m.mean if m.count else 0.0, "std": std if std > 0 else 1.0}
                self._numeric[name] = _Numeric(config.numeric_encoding, params)
        if schema.format == "cvr":
            self.num_types = 3
        elif schema.type_column is not None:
            self.num_types = max(max_type + 1, 1)
        self.num_rows_fitted = rows
        self.fitted = True
        return self

    def _check_columns(self, chunk: RawChunk) -> None:
        if not isinstance(chunk, RawChunk):
            raise TypeError(f"chunk: expected a RawChunk, got {type(chunk).__name__}")
        schema = self.schema
        for names, have in (
            (schema.categorical, chunk.categorical),
            (schema.numeric, chunk.numeric),
            (schema.multi_valued, chunk.multi_valued),
        ):
            for name in names:
                if name not in have:
                    raise ValueError(f"chunk: has no column {name!r} of the encoder's schema")

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError("CTREncoder: call fit (or load a fitted encoder) first")

    # ------------------------------------------------------------------ transforming
    @property
    def quantile_fields(self) -> tuple[str, ...]:
        """Numeric fields encoded as quantile buckets (categorical columns after the others)."""
        if self.config.numeric_encoding == "quantile":
            return self.schema.numeric
        return ()

    @property
    def feature_spec(self) -> CTRFeatures:
        """Field names and cardinalities of the encoded batches (a model's ``features``)."""
        self._require_fitted()
        schema, quantile = self.schema, self.quantile_fields
        return CTRFeatures(
            categorical_fields=(*schema.categorical, *quantile),
            categorical_cardinalities=tuple(
                [self._categorical[k].cardinality for k in schema.categorical]
                + [self._numeric[k].cardinality for k in quantile]
            ),
            numeric_fields=() if quantile else schema.numeric,
            multi_valued_fields=schema.multi_valued,
            multi_valued_cardinalities=tuple(
                self._multi[k].cardinality for k in schema.multi_valued
            ),
            num_types=self.num_types,
        )

    def transform(self, chunk: RawChunk) -> CTRBatch:
        """Encode rows; values unseen in training map to ``OOV_ID`` (never an error).

        Args:
            chunk: Rows read with this encoder's schema (``encoder.schema``).

        Returns:
            A `CTRBatch`: categorical (rows, C), numeric (rows, N), multi_ids M x (rows, L_j),
            multi_lengths (rows, M), labels (rows,), types (rows,); C, N, M as `feature_spec`.
        """
        self._require_fitted()
        self._check_columns(chunk)
        n, schema = chunk.num_rows, self.schema
        cats = [self._categorical[k].encode(chunk.categorical[k]) for k in schema.categorical]
        cats += [self._numeric[k].encode(chunk.numeric[k]) for k in self.quantile_fields]
        nums = (
            []
            if self.quantile_fields
            else [self._numeric[k].encode(chunk.numeric[k]) for k in schema.numeric]
        )
        multi_ids, lengths = [], []
        for name in schema.multi_valued:
            values, offsets = chunk.multi_valued[name]
            ids, length = _pad_lists(
                self._multi[name].encode(values), offsets, self.config.max_multi_length
            )
            multi_ids.append(torch.from_numpy(ids))
            lengths.append(length)
        types = chunk.types.astype(np.int64, copy=True)
        if self.num_types:
            types[types >= self.num_types] = -1  # a type unseen in training is unknown
        return CTRBatch(
            categorical=torch.from_numpy(_stack(cats, n, np.int64)),
            numeric=torch.from_numpy(_stack(nums, n, np.float32)),
            multi_ids=tuple(multi_ids),
            multi_lengths=torch.from_numpy(_stack(lengths, n, np.int64)),
            labels=torch.from_numpy(chunk.labels.astype(np.float32, copy=True)),
            types=torch.from_numpy(types),
        )

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """The fitted state as plain JSON (schema, config, vocabularies, statistics)."""
        self._require_fitted()
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "schema": self.schema.to_dict(),
            "config": self.config.to_dict(),
            "num_types": self.num_types,
            "num_rows_fitted": self.num_rows_fitted,
            "categorical": {k: v.to_dict() for k, v in self._categorical.items()},
            "multi_valued": {k: v.to_dict() for k, v in self._multi.items()},
            "numeric": {k: v.to_dict() for k, v in self._numeric.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CTREncoder:
        """Rebuild the encoder of `to_dict` exactly.

        Raises:
            ValueError: not an encoder dictionary, an unknown version, or missing fields.
        """
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f"not a CTR encoder (expected format {_FORMAT!r})")
        if data.get("version") != _VERSION:
            raise ValueError(f"CTR encoder version {data.get('version')!r} is not {_VERSION}")
        encoder = cls(CTRSchema.from_dict(data["schema"]), EncoderConfig.from_dict(data["config"]))
        schema = encoder.schema
        for attr, names in (
            ("categorical", schema.categorical),
            ("multi_valued", schema.multi_valued),
        ):
            table = encoder._categorical if attr == "categorical" else encoder._multi
            for name in names:
                entry = data[attr].get(name)
                if entry is None:
                    raise ValueError(f"{attr}.{name}: missing from the encoder dictionary")
                if entry["kind"] == "vocab":
                    table[name] = _Vocab([str(v) for v in entry["values"]])
                else:
                    table[name] = _Hash(name, int(entry["buckets"]))
        for name in schema.numeric:
            entry = dict(data["numeric"][name])
            encoder._numeric[name] = _Numeric(entry.pop("kind"), entry)
        encoder.num_types = int(data["num_types"])
        encoder.num_rows_fitted = int(data["num_rows_fitted"])
        encoder.fitted = True
        return encoder

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write `to_dict` as a JSON file (atomically)."""
        save_json(path, self.to_dict(), indent=None)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CTREncoder:
        """Read an encoder written by `save`."""
        return cls.from_dict(load_json(path))

    def __repr__(self) -> str:
        state = f"fitted on {self.num_rows_fitted:,} rows" if self.fitted else "not fitted"
        return f"CTREncoder(format={self.schema.format!r}, {state})"


def _stack(columns: list[np.ndarray], rows: int, dtype: Any) -> np.ndarray:
    if not columns:
        return np.zeros((rows, 0), dtype=dtype)
    return np.ascontiguousarray(np.stack(columns, axis=1).astype(dtype, copy=False))


def _pad_lists(
    ids: np.ndarray, offsets: np.ndarray, max_length: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Flat ids + offsets -> (rows, L) padded ids and (rows,) lengths; empty -> [MISSING_ID]."""
    rows = offsets.shape[0] - 1
    lengths = np.diff(offsets)
    position = np.arange(ids.shape[0]) - np.repeat(offsets[:-1], lengths)
    row = np.repeat(np.arange(rows), lengths)
    if max_length is not None:
        keep = position < max_length
        position, row, ids = position[keep], row[keep], ids[keep]
        lengths = np.minimum(lengths, max_length)
    empty = lengths == 0
    lengths = np.where(empty, 1, lengths)
    width = int(lengths.max()) if rows else 1
    out = np.full((rows, width), PAD_ID, dtype=np.int64)
    out[empty, 0] = MISSING_ID
    out[row, position] = ids
    return out, lengths.astype(np.int64)


# ---------------------------------------------------------------------- file helpers
def fit_encoder(
    path: str | os.PathLike[str],
    schema: CTRSchema,
    config: EncoderConfig | None = None,
    *,
    chunk_rows: int = 65_536,
    skip_bad_rows: bool = False,
) -> tuple[CTREncoder, ReadStats]:
    """Fit a `CTREncoder` on a training file, streaming it chunk by chunk.

    Returns:
        The fitted encoder and the read statistics (skipped rows among them).
    """
    stats = ReadStats()
    chunks = iter_chunks(
        path, schema, chunk_rows=chunk_rows, skip_bad_rows=skip_bad_rows, stats=stats
    )
    return CTREncoder(schema, config).fit(chunks), stats


def iter_encoded(
    path: str | os.PathLike[str],
    encoder: CTREncoder,
    *,
    chunk_rows: int = 65_536,
    skip_bad_rows: bool = False,
    require_label: bool = True,
    stats: ReadStats | None = None,
) -> Iterator[CTRBatch]:
    """Stream a file as encoded batches of at most ``chunk_rows`` rows (see `iter_chunks`)."""
    for chunk in iter_chunks(
        path,
        encoder.schema,
        chunk_rows=chunk_rows,
        skip_bad_rows=skip_bad_rows,
        require_label=require_label,
        stats=stats,
    ):
        yield encoder.transform(chunk)


def encode_file(
    path: str | os.PathLike[str],
    encoder: CTREncoder,
    *,
    chunk_rows: int = 65_536,
    skip_bad_rows: bool = False,
    require_label: bool = True,
) -> tuple[CTRBatch, ReadStats]:
    """All rows of a file, encoded into one `CTRBatch` (in file order), and the read stats.

    Raises:
        ValueError: the file has no rows (after skipping malformed ones).
    """
    stats = ReadStats()
    batches = list(
        iter_encoded(
            path,
            encoder,
            chunk_rows=chunk_rows,
            skip_bad_rows=skip_bad_rows,
            require_label=require_label,
            stats=stats,
        )
    )
    if not batches:
        raise ValueError(f"{path}: no rows to encode ({stats.summary()})")
    return CTRBatch.cat(batches), stats
