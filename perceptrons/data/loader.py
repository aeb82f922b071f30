"""In-memory mini-batch loader with an exactly restorable position.

Shapes: ``n`` samples; every tensor given to `TensorLoader` has shape ``(n, ...)`` and every
batch of it has shape ``(b, ...)`` with ``b <= batch_size``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

__all__ = ["TensorLoader"]

_MASK64 = (1 << 64) - 1


def _mix64(value: int) -> int:
    """SplitMix64 finaliser: a fixed, well-mixed 64-bit hash of ``value``."""
    z = (value + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of the permutation of ``epoch``: a hash of ``(seed, epoch)`` in ``[0, 2**64)``."""
    return _mix64(_mix64(seed & _MASK64) ^ (epoch & _MASK64))


class TensorLoader:
    """Mini-batches of in-memory tensors, indexed by whole index tensors (no per-sample loop).

    Each epoch uses a fresh permutation drawn from a `torch.Generator` seeded with a hash of
    ``(seed, epoch)``, so the loader's position (`state_dict`) is all it takes to continue
    exactly where it stopped. Iterating continues from the current position to the end of the
    current epoch; the next ``iter`` starts the following epoch. Several live iterators share
    (and advance) the same position.

    Example::

        loader = TensorLoader((x, y), batch_size=32)   # x: (n, d), y: (n,)
        for xb, yb in loader:                          # xb: (b, d), yb: (b,)
            ...

    Args:
        tensors: One tensor, a tuple (or list) of tensors, or a dict of tensors, all of shape
            ``(n, ...)`` with the same ``n``. Batches have the same structure.
        batch_size: Samples per batch (the last batch of an epoch may be smaller).
        shuffle: Draw a new permutation every epoch; otherwise batches are contiguous slices
            (views, no copy) in the original order.
        drop_last: Drop the last, smaller batch of each epoch.
        seed: Seed of the per-epoch permutations.

    Raises:
        ValueError: tensors with different first dimensions (the message lists the shapes),
            no samples, or ``batch_size < 1``.
        TypeError: something that is not a tensor, tuple/list or dict of tensors.
    """

    def __init__(
        self,
        tensors: Tensor | tuple[Tensor, ...] | list[Tensor] | dict[str, Tensor],
        batch_size: int,
        *,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
    ) -> None:
        if isinstance(tensors, Tensor):
            items = [("tensors", tensors)]
        elif isinstance(tensors, tuple | list):
            items = [(f"tensors[{i}]", t) for i, t in enumerate(tensors)]
        elif isinstance(tensors, dict):
            items = [(f"tensors[{k!r}]", t) for k, t in tensors.items()]
        else:
            raise TypeError(
                "tensors: expected a tensor, a tuple/list or a dict of tensors, got "
                f"{type(tensors).__name__}"
            )
        if not items:
            raise ValueError("tensors: expected at least one tensor, got none")
        for name, t in items:
            if not isinstance(t, Tensor):
                raise TypeError(f"{name}: expected a tensor, got {type(t).__name__}")
            if t.dim() == 0:
                raise ValueError(f"{name}: expected shape (n, ...), got a 0-dim tensor")
        sizes = {t.shape[0] for _, t in items}
        if len(sizes) != 1:
            shapes = ", ".join(f"{name}: {tuple(t.shape)}" for name, t in items)
            raise ValueError(f"tensors: expected a common first dimension n, got {shapes}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size: must be an int >= 1, got {batch_size!r}")
        num_samples = items[0][1].shape[0]
        if num_samples < 1:
            raise ValueError("tensors: expected at least one sample (n >= 1), got n = 0")
        self.tensors = tensors
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.num_samples = num_samples
        self._epoch = 0
        self._batch = 0

    def __len__(self) -> int:
        """Number of batches per epoch."""
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    # ------------------------------------------------------------------ position
    def state_dict(self) -> dict[str, int]:
        """Position of the next batch: ``{"epoch": e, "batch": i}`` (plain JSON)."""
        return {"epoch": self._epoch, "batch": self._batch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Move to the position returned by `state_dict`.

        Raises:
            ValueError: missing keys or a position outside ``0 <= batch <= len(self)``.
        """
        if not isinstance(state, dict) or set(state) != {"epoch", "batch"}:
            raise ValueError(f"state: expected keys 'epoch' and 'batch', got {state!r}")
        epoch, batch = state["epoch"], state["batch"]
        if not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"state['epoch']: must be an int >= 0, got {epoch!r}")
        if not isinstance(batch, int) or not 0 <= batch <= len(self):
            raise ValueError(f"state['batch']: must be an int in [0, {len(self)}], got {batch!r}")
        self._epoch, self._batch = epoch, batch
        if batch == len(self):
            self._epoch, self._batch = epoch + 1, 0

    # ------------------------------------------------------------------ iteration
    def order(self, epoch: int) -> Tensor | None:
        """Sample order of ``epoch``: a permutation of shape ``(n,)``, or None without shuffling."""
        if not self.shuffle:
            return None
        generator = torch.Generator()
        generator.manual_seed(epoch_seed(self.seed, epoch))
        return torch.randperm(self.num_samples, generator=generator)

    def _take(self, index: Tensor | slice) -> Any:
        tensors = self.tensors
        if isinstance(tensors, Tensor):
            return tensors[index]
        if isinstance(tensors, tuple | list):
            return type(tensors)(t[index] for t in tensors)
        return {k: t[index] for k, t in tensors.items()}

    def __iter__(self) -> Iterator[Any]:
        """Batches from the current position to the end of the current epoch."""
        epoch, start = self._epoch, self._batch
        num_batches = len(self)
        order = self.order(epoch) if start < num_batches else None
        for b in range(start, num_batches):
            lo = b * self.batch_size
            hi = min(lo + self.batch_size, self.num_samples)
            batch = self._take(slice(lo, hi) if order is None else order[lo:hi])
            # Advance before yielding: while the consumer holds batch b, state_dict() already
            # names the next one, which is what a checkpoint taken after this step must store.
            if b + 1 == num_batches:
                self._epoch, self._batch = epoch + 1, 0
            else:
                self._epoch, self._batch = epoch, b + 1
            yield batch

    def __repr__(self) -> str:
        return (
            f"TensorLoader(num_samples={self.num_samples}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last}, seed={self.seed})"
        )
