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

No step loops over rows in Python: values are counted per chunk with pyarrow
(``value_counts``, merged by a hash aggregation whenever the pending counts outgrow the running
table, so each distinct value of a chunk is merged O(1) times on average), vocabulary ids are
looked up with ``pyarrow.compute.index_in``, and hashed ids come from a table-driven CRC-32 in
numpy that equals `zlib.crc32` (one numpy step per byte position of the values, not per value).
`CTREncoder.summary` lists each field's vocabulary size and OOV share in the fitting data.

Example::

    encoder, stats = fit_encoder("train.txt", criteo_schema(), EncoderConfig(min_count=10))
    encoder.save("model/encoder.json")
    for batch in iter_encoded("test.txt", CTREncoder.load("model/encoder.json")):
        ...                                       # batch.categorical: (rows, 26) int64
"""

from __future__ import annotations

import gzip
import json
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from perceptrons.config import Config, require
from perceptrons.ctr.features import (
    MISSING_ID,
    PAD_ID,
    CTRBatch,
    CTRFeatures,
)
from perceptrons.ctr.io.fields import (
    HashedField,
    Moments,
    NumericStats,
    Reservoir,
    ValueCounts,
    Vocabulary,
    hash_id,
    log_transform,
)
from perceptrons.ctr.io.readers import iter_chunks
from perceptrons.ctr.io.schema import (
    CTRSchema,
    RawChunk,
    ReadStats,
    raw_column,
)
from perceptrons.io import atomic_write, json_ready, load_json, save_json

__all__ = [
    "CRITEO_MIN_COUNT",
    "CTREncoder",
    "EncoderConfig",
    "encode_file",
    "fit_encoder",
    "hash_id",
    "iter_encoded",
]

_FORMAT = "perceptrons.ctr.encoder"
_VERSION = 1

# Default ``min_count`` of Criteo files: FuxiCTR's ``min_categr_count`` in the Criteo_x4_001
# protocol of its BARS benchmark (github.com/reczoo/BARS, docs/CTR/leaderboard/criteo_x4.md:
# "Rare features filtering: min_categr_count=10"; Criteo_x4_002 uses 2, Criteo_x1 uses 1).
CRITEO_MIN_COUNT = 10


def default_min_count(schema: CTRSchema) -> int:
    """``min_count`` when the config leaves it None: 10 for Criteo files, 1 for the others."""
    return CRITEO_MIN_COUNT if schema.format == "criteo" else 1


# Default numeric encoding of Criteo files: its 13 integer columns are heavy-tailed counts
# (mostly small, a long tail, often missing); CTR practice buckets them rather than scaling the
# raw values: the Kaggle-winning field-aware FM solution (Juan et al. 2016, "Field-aware
# Factorization Machines for CTR Prediction", RecSys) and FuxiCTR's Criteo preprocessing
# (``convert_to_bucket``) map a count x > 2 to floor(log(x)^2). Quantile buckets (with missing
# values in a bucket of their own) are that idea without a hand-set transform.
CRITEO_NUMERIC_ENCODING = "quantile"


def default_numeric_encoding(schema: CTRSchema) -> str:
    """``numeric_encoding`` when the config leaves it None: "quantile" for Criteo files
    (`CRITEO_NUMERIC_ENCODING`), "standardize" for the others."""
    return CRITEO_NUMERIC_ENCODING if schema.format == "criteo" else "standardize"


@dataclass(frozen=True, kw_only=True)
class EncoderConfig(Config):
    """How the fields of a CTR schema are encoded.

    Attributes:
        categorical_encoding: "vocab" (vocabulary + OOV id) or "hash" (hashing trick) for every
            categorical and multi-valued field.
        hash_fields: Fields hashed even when ``categorical_encoding`` is "vocab" (e.g. ids with
            millions of values).
        min_count: Vocabulary fields keep values seen at least this often in training; rarer ones
            map to the OOV id (FuxiCTR's ``min_categr_count``). None (the default): 10 for Criteo
            files (`CRITEO_MIN_COUNT`: FuxiCTR's value for Criteo in the Criteo_x4_001 protocol
            of its BARS benchmark, github.com/reczoo/BARS docs/CTR/leaderboard/criteo_x4.md), so
            that ids seen once or a few times share the OOV row instead of each getting an
            embedding row; 1 for tables and cvr files (every value kept; the reczoo CVR baseline
            used 10). The encoder records the value it used in its saved config.
        hash_buckets: Buckets per hashed field (cardinality = 3 + hash_buckets).
        numeric_encoding: "standardize", "log_standardize" or "quantile"; None (the default):
            "quantile" for Criteo files (`CRITEO_NUMERIC_ENCODING`: counts are bucketed, as CTR
            practice does), "standardize" for tables and cvr files. The encoder records the
            value it used in its saved config.
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
    min_count: int | None = None
    hash_buckets: int = 2**18
    numeric_encoding: Literal["standardize", "log_standardize", "quantile"] | None = None
    num_quantile_buckets: int = 16
    quantile_sample_size: int = 100_000
    max_multi_length: int | None = None
    seed: int = 0

    def validate(self) -> None:
        require(
            self.min_count is None or self.min_count >= 1,
            "min_count",
            "must be >= 1 or None",
            self.min_count,
        )
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
        config = EncoderConfig() if config is None else config
        if config.min_count is None:
            config = config.replace(min_count=default_min_count(schema))
        if config.numeric_encoding is None:
            config = config.replace(numeric_encoding=default_numeric_encoding(schema))
        self.config = config
        unknown = sorted(
            set(self.config.hash_fields) - set(schema.categorical + schema.multi_valued)
        )
        if unknown:
            raise ValueError(
                f"hash_fields: {unknown[0]!r} is not a categorical or multi-valued field"
            )
        self._categorical: dict[str, Vocabulary | HashedField] = {}
        self._multi: dict[str, Vocabulary | HashedField] = {}
        self._numeric: dict[str, NumericStats] = {}
        self.num_types = 0
        self.num_rows_fitted = 0
        self.fitted = False
        # field -> {"values": counted (rows, or ids of a multi-valued field), "missing": empty
        # rows, "oov": values below min_count}, from fit (summary); {} for old saved encoders
        self.fit_stats: dict[str, dict[str, int]] = {}

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
        min_count = int(config.min_count)  # type: ignore[arg-type]  # resolved in __init__
        counters = {
            name: ValueCounts()
            for name in (*schema.categorical, *schema.multi_valued)
            if not self._hashed(name)
        }
        moments = {name: Moments() for name in schema.numeric}
        rng = np.random.default_rng(config.seed)
        reservoirs = {name: Reservoir(config.quantile_sample_size, rng) for name in schema.numeric}
        quantile = config.numeric_encoding == "quantile"
        log = config.numeric_encoding == "log_standardize"
        fit_stats = {
            name: {"values": 0, "missing": 0, "oov": 0}
            for name in (*schema.categorical, *schema.multi_valued, *schema.numeric)
        }
        rows, max_type = 0, -1
        for chunk in chunks:
            self._check_columns(chunk)
            rows += chunk.num_rows
            if chunk.num_rows:
                max_type = max(max_type, int(chunk.types.max()))
            for name in schema.categorical:
                values = raw_column(chunk.categorical, name)
                if name in counters:
                    counters[name].update(values)
                else:
                    fit_stats[name]["values"] += len(values)
                    fit_stats[name]["missing"] += _count_missing(values)
            for name in schema.multi_valued:
                values, offsets = raw_column(chunk.multi_valued, name)
                if name in counters:
                    counters[name].update(values)
                else:
                    fit_stats[name]["values"] += len(values)
                fit_stats[name]["missing"] += int((np.diff(offsets) == 0).sum())
            for name in schema.numeric:
                x = chunk.numeric[name]
                fit_stats[name]["values"] += x.shape[0]
                fit_stats[name]["missing"] += int(np.isnan(x).sum())
                if quantile:
                    reservoirs[name].update(x)
                else:
                    moments[name].update(log_transform(x) if log else x)
        for name in (*schema.categorical, *schema.multi_valued):
            table = self._categorical if name in schema.categorical else self._multi
            if self._hashed(name):
                table[name] = HashedField(name, config.hash_buckets)
            else:
                counter = counters[name]
                values, left_out = counter.vocabulary(min_count)
                table[name] = Vocabulary(values)
                fit_stats[name]["values"] += counter.total
                fit_stats[name]["oov"] = left_out
                if name in schema.categorical:
                    fit_stats[name]["missing"] = counter.missing
        for name in schema.numeric:
            if quantile:
                sample = np.sort(reservoirs[name].values)
                if sample.size:
                    levels = np.arange(1, config.num_quantile_buckets) / config.num_quantile_buckets
                    bounds = np.unique(np.quantile(sample, levels, method="lower"))
                else:
                    bounds = np.zeros(0)
                self._numeric[name] = NumericStats("quantile", {"boundaries": bounds.tolist()})
            else:
                m = moments[name]
                std = math.sqrt(m.m2 / m.count) if m.count else 1.0
                params = {"mean": m.mean if m.count else 0.0, "std": std if std > 0 else 1.0}
                self._numeric[name] = NumericStats(config.numeric_encoding, params)
        if schema.format == "cvr":
            self.num_types = 3
        elif schema.type_column is not None:
            self.num_types = max(max_type + 1, 1)
        self.num_rows_fitted = rows
        self.fit_stats = fit_stats
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
        n, schema, quantile = chunk.num_rows, self.schema, self.quantile_fields
        # each field writes a contiguous row of a (C, rows) array, transposed once at the end
        # (much cheaper than writing the strided columns of a (rows, C) array)
        categorical = np.empty((len(schema.categorical) + len(quantile), n), dtype=np.int64)
        for j, name in enumerate(schema.categorical):
            self._categorical[name].encode(raw_column(chunk.categorical, name), out=categorical[j])
        for j, name in enumerate(quantile, len(schema.categorical)):
            self._numeric[name].encode(chunk.numeric[name], out=categorical[j])
        numeric = np.empty((0 if quantile else len(schema.numeric), n), dtype=np.float32)
        for j, name in enumerate(() if quantile else schema.numeric):
            self._numeric[name].encode(chunk.numeric[name], out=numeric[j])
        categorical = np.ascontiguousarray(categorical.T)
        numeric = np.ascontiguousarray(numeric.T)
        multi_ids, lengths = [], []
        for name in schema.multi_valued:
            values, offsets = raw_column(chunk.multi_valued, name)
            ids, length = _pad_lists(
                self._multi[name].encode(values),
                np.asarray(offsets, dtype=np.int64),
                self.config.max_multi_length,
            )
            multi_ids.append(torch.from_numpy(ids))
            lengths.append(length)
        types = chunk.types.astype(np.int64, copy=True)
        if self.num_types:
            types[types >= self.num_types] = -1  # a type unseen in training is unknown
        return CTRBatch(
            categorical=torch.from_numpy(categorical),
            numeric=torch.from_numpy(numeric),
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
            "fit_stats": self.fit_stats,
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
                    table[name] = Vocabulary([str(v) for v in entry["values"]])
                else:
                    table[name] = HashedField(name, int(entry["buckets"]))
        for name in schema.numeric:
            entry = dict(data["numeric"][name])
            encoder._numeric[name] = NumericStats(entry.pop("kind"), entry)
        encoder.num_types = int(data["num_types"])
        encoder.num_rows_fitted = int(data["num_rows_fitted"])
        encoder.fit_stats = {
            str(name): {str(k): int(v) for k, v in entry.items()}
            for name, entry in data.get("fit_stats", {}).items()
        }
        encoder.fitted = True
        return encoder

    def summary(self) -> list[str]:
        """One line per field (after a header): name, kind, ids, what the ids are, and the
        OOV and missing shares in the fitting data, e.g.
        ``C3   vocab  157,342  157,339 values seen >= 10 times  OOV 4.1%  missing 3.3%``.

        The OOV share is the share of the field's values in the fitting data that map to the
        OOV id (below ``min_count``); hashed and numeric fields have none ("-"); "?" where the
        encoder was saved without these counts.
        """
        self._require_fitted()
        rows = [("field", "kind", "ids", "values", "OOV", "missing")]
        schema, min_count = self.schema, self.config.min_count
        for name in (*schema.categorical, *schema.multi_valued, *schema.numeric):
            stats = self.fit_stats.get(name)
            if name in schema.numeric:
                field = self._numeric[name]
                ids = f"{field.cardinality:,}" if field.kind == "quantile" else "-"
                detail = (
                    f"{len(field.params['boundaries']) + 1} buckets"
                    if field.kind == "quantile"
                    else f"mean {field.params['mean']:.4g}, std {field.params['std']:.4g}"
                )
                kind, oov = field.kind, "-"
            else:
                encoder = self._categorical.get(name) or self._multi[name]
                kind = encoder.kind + ("" if name in schema.categorical else " (multi)")
                ids = f"{encoder.cardinality:,}"
                if isinstance(encoder, HashedField):
                    detail, oov = f"{encoder.buckets:,} buckets", "-"
                else:
                    detail = f"{encoder.size:,} values seen >= {min_count} times"
                    oov = "?"
                    if stats:  # categorical: values = rows, nulls included
                        present = stats["values"] - (
                            stats["missing"] if name in schema.categorical else 0
                        )
                        oov = _percent(stats["oov"], present)
            if not stats:
                missing = "?"
            elif name in schema.multi_valued:  # rows without ids
                missing = _percent(stats["missing"], self.num_rows_fitted)
            else:
                missing = _percent(stats["missing"], stats["values"])
            rows.append((name, kind, ids, detail, oov, missing))
        widths = [max(len(row[j]) for row in rows) for j in range(len(rows[0]))]
        right = {2, 4, 5}
        return [
            "  ".join(
                cell.rjust(widths[j]) if j in right else cell.ljust(widths[j])
                for j, cell in enumerate(row)
            ).rstrip()
            for row in rows
        ]

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write `to_dict` as a JSON file (atomically); gzip-compressed when ``path`` ends in
        ``.gz`` (vocabularies of hashed ids shrink about 2.5x; the bytes do not depend on when
        the file was written)."""
        if not str(path).endswith(".gz"):
            save_json(path, self.to_dict(), indent=None)
            return
        text = json.dumps(json_ready(self.to_dict()), allow_nan=False, separators=(",", ":"))
        with atomic_write(path, "wb") as handle:
            handle.write(gzip.compress(text.encode(), compresslevel=6, mtime=0))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CTREncoder:
        """Read an encoder written by `save` (``.gz``: gzip-compressed JSON)."""
        if not str(path).endswith(".gz"):
            return cls.from_dict(load_json(path))
        try:
            data = json.loads(gzip.decompress(Path(path).read_bytes()))
        except (OSError, EOFError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: not a gzip-compressed JSON encoder ({err})") from None
        return cls.from_dict(data)

    def __repr__(self) -> str:
        state = f"fitted on {self.num_rows_fitted:,} rows" if self.fitted else "not fitted"
        return f"CTREncoder(format={self.schema.format!r}, {state})"


def _percent(part: int, total: int) -> str:
    return f"{100.0 * part / total:.1f}%" if total > 0 else "-"


def _count_missing(values: Any) -> int:
    """Nulls of a pyarrow string array, or None entries of an object array."""
    if isinstance(values, np.ndarray):
        return int(np.equal(values, None).sum())
    return int(values.null_count)


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
