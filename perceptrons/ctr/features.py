"""The CTR field spec (`CTRFeatures`), encoded rows as tensors (`CTRBatch`), model inputs
(`CTRInput`) and the id convention of every CTR field.

`CTRFeatures` is the one description of CTR fields (names, cardinalities, number of types) in
the package: the encoders and the synthetic generator return it as ``feature_spec``, and a
model config takes it unchanged (``features=encoder.feature_spec``). `as_ctr_input` accepts a
``CTRBatch``, its ``to_tensors()`` dict (what a `TensorLoader` yields) or a `CTRInput`.

Dimension legend: ``rows`` rows; ``C`` categorical fields; ``N`` numeric fields; ``M``
multi-valued fields; ``L_j`` the padded length of multi-valued field ``j``.

Id convention of every categorical and multi-valued field (shared with the embedding layers):

* ``PAD_ID = 0`` pads multi-valued id lists (never produced for a present value);
* ``OOV_ID = 1``: a value not in the vocabulary (unseen in training, or rarer than
  ``min_count``);
* ``MISSING_ID = 2``: an empty field (a multi-valued field without values is the one-element
  list ``[MISSING_ID]``, so every row has at least one id and mean pooling is defined);
* ids ``>= NUM_SPECIAL_IDS`` (= 3) are values; a field's ids lie in ``[0, cardinality)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor

from perceptrons.config import Config, require

__all__ = [
    "MISSING_ID",
    "NUM_SPECIAL_IDS",
    "OOV_ID",
    "PAD_ID",
    "CTRBatch",
    "CTRFeatures",
    "CTRInput",
    "as_ctr_input",
]

PAD_ID = 0
OOV_ID = 1
MISSING_ID = 2
NUM_SPECIAL_IDS = 3


@dataclass(frozen=True, eq=False)
class CTRBatch:
    """Encoded rows, ready for a CTR model.

    Attributes:
        categorical: (rows, C) int64 ids (see the module's id convention).
        numeric: (rows, N) float32 normalised values (missing -> 0).
        multi_ids: M tensors of shape (rows, L_j) int64, padded with ``PAD_ID``.
        multi_lengths: (rows, M) int64 number of ids of each row (>= 1).
        labels: (rows,) float32 in {0, 1}; NaN where unknown.
        types: (rows,) int64 row types, -1 where unknown. Models that must not see types at
            test time simply do not read them; they stay here for per-type metrics.
    """

    categorical: Tensor
    numeric: Tensor
    multi_ids: tuple[Tensor, ...]
    multi_lengths: Tensor
    labels: Tensor
    types: Tensor

    @property
    def num_rows(self) -> int:
        """Number of rows."""
        return int(self.labels.shape[0])

    def __len__(self) -> int:
        return self.num_rows

    def to_tensors(self) -> dict[str, Tensor]:
        """A flat ``name -> (rows, ...)`` dict (for `TensorLoader` or safetensors).

        Keys: ``categorical``, ``numeric``, ``multi_lengths``, ``labels``, ``types`` and
        ``multi_ids.{j}`` for each multi-valued field ``j``.
        """
        out = {
            "categorical": self.categorical,
            "numeric": self.numeric,
            "multi_lengths": self.multi_lengths,
            "labels": self.labels,
            "types": self.types,
        }
        for j, ids in enumerate(self.multi_ids):
            out[f"multi_ids.{j}"] = ids
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, Tensor]) -> CTRBatch:
        """Inverse of `to_tensors` (e.g. a batch of a `TensorLoader` over that dict)."""
        num_multi = sum(1 for k in tensors if k.startswith("multi_ids."))
        missing = {"categorical", "numeric", "multi_lengths", "labels", "types"} - set(tensors)
        if missing:
            raise ValueError(f"tensors: missing keys {sorted(missing)}")
        return cls(
            categorical=tensors["categorical"],
            numeric=tensors["numeric"],
            multi_ids=tuple(tensors[f"multi_ids.{j}"] for j in range(num_multi)),
            multi_lengths=tensors["multi_lengths"],
            labels=tensors["labels"],
            types=tensors["types"],
        )

    def index(self, rows: Tensor | slice) -> CTRBatch:
        """The rows selected by ``rows`` (an index tensor, a boolean mask or a slice).

        Multi-valued id lists are trimmed to the longest list among the selected rows.
        """
        lengths = self.multi_lengths[rows]
        multi = []
        for j, ids in enumerate(self.multi_ids):
            width = int(lengths[:, j].max()) if lengths.shape[0] else 1
            multi.append(ids[rows][:, :width])
        return CTRBatch(
            categorical=self.categorical[rows],
            numeric=self.numeric[rows],
            multi_ids=tuple(multi),
            multi_lengths=lengths,
            labels=self.labels[rows],
            types=self.types[rows],
        )

    @staticmethod
    def cat(batches: list[CTRBatch]) -> CTRBatch:
        """Rows of ``batches`` one after the other; id lists re-padded to a common length."""
        if not batches:
            raise ValueError("batches: expected at least one batch, got none")
        if len(batches) == 1:
            return batches[0]
        multi = []
        for j in range(len(batches[0].multi_ids)):
            width = max(b.multi_ids[j].shape[1] for b in batches)
            parts = [
                torch.nn.functional.pad(b.multi_ids[j], (0, width - b.multi_ids[j].shape[1]))
                for b in batches
            ]
            multi.append(torch.cat(parts))
        return CTRBatch(
            categorical=torch.cat([b.categorical for b in batches]),
            numeric=torch.cat([b.numeric for b in batches]),
            multi_ids=tuple(multi),
            multi_lengths=torch.cat([b.multi_lengths for b in batches]),
            labels=torch.cat([b.labels for b in batches]),
            types=torch.cat([b.types for b in batches]),
        )

    def to(self, device: torch.device | str) -> CTRBatch:
        """The batch on ``device``."""
        return CTRBatch(
            categorical=self.categorical.to(device),
            numeric=self.numeric.to(device),
            multi_ids=tuple(t.to(device) for t in self.multi_ids),
            multi_lengths=self.multi_lengths.to(device),
            labels=self.labels.to(device),
            types=self.types.to(device),
        )


@dataclass(frozen=True, kw_only=True)
class CTRFeatures(Config):
    """Field names and id ranges of encoded CTR data: what the data yields, what a model embeds.

    The defaults are a tiny 5-field example with every kind of field, so that a model config
    built with no arguments works; specs of real data (``CTREncoder.feature_spec``,
    ``SyntheticCTRData.feature_spec``) set every field and never rely on them.

    Attributes:
        categorical_fields: Names of the C columns of the categorical input
            (``CTRBatch.categorical``).
        categorical_cardinalities: Ids of categorical field ``i`` lie in ``[0, card_i)``.
        numeric_fields: Names of the N columns of the numeric input (``CTRBatch.numeric``).
        multi_valued_fields: Names of the M multi-valued fields (``CTRBatch.multi_ids``).
        multi_valued_cardinalities: Ids of multi-valued field ``j`` lie in ``[0, card_j)``.
        num_types: Number of row types (0: the data has no types).
    """

    categorical_fields: tuple[str, ...] = ("user", "item", "context")
    categorical_cardinalities: tuple[int, ...] = (10, 8, 5)
    numeric_fields: tuple[str, ...] = ("price",)
    multi_valued_fields: tuple[str, ...] = ("tags",)
    multi_valued_cardinalities: tuple[int, ...] = (7,)
    num_types: int = 3

    def validate(self) -> None:
        require(
            len(self.categorical_fields) == len(self.categorical_cardinalities),
            "categorical_cardinalities",
            "needs one entry per categorical field",
            self.categorical_cardinalities,
        )
        require(
            len(self.multi_valued_fields) == len(self.multi_valued_cardinalities),
            "multi_valued_cardinalities",
            "needs one entry per multi-valued field",
            self.multi_valued_cardinalities,
        )
        for name in ("categorical_cardinalities", "multi_valued_cardinalities"):
            for c in getattr(self, name):
                require(c >= NUM_SPECIAL_IDS, name, "each must be >= 3 (the special ids)", c)
        require(self.num_types >= 0, "num_types", "must be >= 0", self.num_types)
        require(self.num_fields >= 1, "categorical_fields", "needs at least one field in all")

    @property
    def num_categorical(self) -> int:
        """C."""
        return len(self.categorical_fields)

    @property
    def num_numeric(self) -> int:
        """N."""
        return len(self.numeric_fields)

    @property
    def num_multi(self) -> int:
        """M."""
        return len(self.multi_valued_fields)

    @property
    def num_sparse(self) -> int:
        """Id (table-lookup) fields C + M: categorical plus multi-valued, numeric excluded."""
        return self.num_categorical + self.num_multi

    @property
    def num_fields(self) -> int:
        """Embedded fields F = C + M + N (numeric fields included; `num_sparse` excludes them)."""
        return self.num_sparse + self.num_numeric

    @property
    def field_names(self) -> tuple[str, ...]:
        """Names of the F embedded fields, in embedding order."""
        return self.categorical_fields + self.multi_valued_fields + self.numeric_fields

    def layout(self) -> str:
        """The expected input, for error messages."""
        return (
            f"CTR rows of shape (batch, fields) with fields = {self.num_fields}: categorical "
            f"(batch, {self.num_categorical}) int64, numeric (batch, {self.num_numeric}) float, "
            f"multi_ids {self.num_multi} x (batch, *) int64, multi_lengths "
            f"(batch, {self.num_multi}) int64"
        )


class CTRInput(NamedTuple):
    """Model inputs of encoded CTR rows (the feature part of ``CTRBatch``).

    Attributes:
        categorical: (b, C) int64 ids.
        numeric: (b, N) floating values.
        multi_ids: M tensors (b, L_j) int64, padded with ``PAD_ID = 0``.
        multi_lengths: (b, M) int64 number of ids per row.
    """

    categorical: Tensor
    numeric: Tensor
    multi_ids: tuple[Tensor, ...]
    multi_lengths: Tensor


def _fail(features: CTRFeatures, what: str, exc: type[Exception] = ValueError) -> Exception:
    return exc(f"{what}; expected {features.layout()}")


def as_ctr_input(inputs: Any, features: CTRFeatures) -> CTRInput:
    """Validate ``inputs`` and return them as a `CTRInput`.

    Args:
        inputs: A `CTRInput` (or 4-tuple in its order), a ``CTRBatch`` (attributes of the same
            names) or a ``CTRBatch.to_tensors()`` mapping (keys ``categorical``, ``numeric``,
            ``multi_lengths``, ``multi_ids.{j}``; extra keys such as ``labels`` are ignored).
        features: The fields the inputs must match.

    Returns:
        The validated `CTRInput` (tensors unchanged).

    Raises:
        TypeError: not one of the accepted containers, a non-tensor, or a wrong dtype.
        ValueError: a wrong rank or size, different row counts, ids outside
            ``[0, cardinality)`` or non-finite numeric values. Every message contains
            ``(batch, fields)`` and the expected layout.
    """
    if isinstance(inputs, Mapping):
        missing = [k for k in ("categorical", "numeric", "multi_lengths") if k not in inputs]
        missing += [
            f"multi_ids.{j}" for j in range(features.num_multi) if f"multi_ids.{j}" not in inputs
        ]
        if missing:
            raise _fail(features, f"inputs: missing keys {missing}")
        parts: tuple[Any, ...] = (
            inputs["categorical"],
            inputs["numeric"],
            tuple(inputs[f"multi_ids.{j}"] for j in range(features.num_multi)),
            inputs["multi_lengths"],
        )
    elif isinstance(inputs, tuple) and not hasattr(inputs, "_fields") and len(inputs) == 4:
        parts = inputs
    elif all(hasattr(inputs, k) for k in CTRInput._fields):
        parts = tuple(getattr(inputs, k) for k in CTRInput._fields)
    else:
        raise _fail(features, f"inputs: got {type(inputs).__name__}", TypeError)
    categorical, numeric, multi_ids, multi_lengths = parts
    if not isinstance(multi_ids, tuple | list) or len(multi_ids) != features.num_multi:
        raise _fail(
            features,
            f"multi_ids: expected a tuple of {features.num_multi} tensors, got "
            f"{type(multi_ids).__name__}"
            + (f" of length {len(multi_ids)}" if isinstance(multi_ids, tuple | list) else ""),
            TypeError,
        )
    named = [("categorical", categorical, features.num_categorical, False)]
    named.append(("numeric", numeric, features.num_numeric, True))
    named.append(("multi_lengths", multi_lengths, features.num_multi, False))
    named += [(f"multi_ids[{j}]", t, None, False) for j, t in enumerate(multi_ids)]
    rows = None
    for name, t, width, floating in named:
        if not isinstance(t, Tensor):
            raise _fail(features, f"{name}: got {type(t).__name__}, not a tensor", TypeError)
        if floating and not t.is_floating_point():
            raise _fail(features, f"{name}: got dtype {t.dtype}", TypeError)
        if not floating and t.dtype != torch.int64:
            raise _fail(features, f"{name}: got dtype {t.dtype}", TypeError)
        if t.dim() != 2 or (width is not None and t.shape[1] != width):
            raise _fail(features, f"{name}: got shape {tuple(t.shape)}")
        if rows is None:
            rows = t.shape[0]
        elif t.shape[0] != rows:
            raise _fail(features, f"{name}: got {t.shape[0]} rows, categorical has {rows}")
    if numeric.numel() and not bool(torch.isfinite(numeric).all()):
        raise _fail(features, "numeric: non-finite values")
    columns = [
        (f"categorical[:, {i}]", categorical[:, i], c)
        for i, c in enumerate(features.categorical_cardinalities)
    ]
    columns += [
        (f"multi_ids[{j}]", t, c)
        for j, (t, c) in enumerate(zip(multi_ids, features.multi_valued_cardinalities, strict=True))
    ]
    for name, ids, card in columns:
        if ids.numel() and not bool(((ids >= 0) & (ids < card)).all()):
            raise _fail(
                features,
                f"{name}: ids must lie in [0, {card}), got min {int(ids.min())}, "
                f"max {int(ids.max())}",
            )
    return CTRInput(categorical, numeric, tuple(multi_ids), multi_lengths)
