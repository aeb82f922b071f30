"""Encoded CTR rows as tensors (`CTRBatch`) and the id convention of every CTR field.

The fields of encoded rows (names, cardinalities, number of types) are described by
``perceptrons.layers.ctr.CTRFeatures``, the one CTR field spec of the package: the encoders and
the synthetic generator return it as ``feature_spec``, and a model config takes it unchanged
(``features=encoder.feature_spec``). It is defined next to the embedding layer because the data
may import the layers, not the other way round; every spec built here sets all its fields (its
defaults are a model-side example).

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

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["MISSING_ID", "NUM_SPECIAL_IDS", "OOV_ID", "PAD_ID", "CTRBatch"]

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
