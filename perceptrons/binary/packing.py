"""Bit-packing of ±1 signs and {0, 1} masks into 64-bit words.

Format: the last dimension ``K`` of a tensor is packed into ``W = ceil(K / 64)`` signed 64-bit
words (``torch.int64``); entry ``t`` of a row is bit ``t % 64`` (bit 0 = least significant) of
word ``t // 64``. A set bit means ``+1`` for signs (`pack_signs`: ``x >= 0``, so 0 packs as
``+1`` like `perceptrons.layers.binary.sign_pm1`) and ``1`` for masks (`pack_mask`). The
``64 W - K`` padding bits of the last word are always written as 0; the kernels of
`perceptrons.binary.kernels` clear them again before use, so words from elsewhere with stray
padding bits still give exact products.

The words are stored as ``int64`` because that is what torch and safetensors hold natively;
the kernels reinterpret them as unsigned where it matters (popcounts).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "WORD_BITS",
    "check_packed",
    "last_word_mask",
    "num_words",
    "pack_mask",
    "pack_signs",
    "unpack_signs",
]

WORD_BITS = 64
"""Bits per packed word."""


def num_words(k: int) -> int:
    """``ceil(k / 64)``: words per packed row of ``k`` entries (``k >= 1``)."""
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k: expected an int >= 1 (entries per packed row), got {k!r}")
    return -(-k // WORD_BITS)


def last_word_mask(k: int) -> int:
    """The valid bits of the last word of a ``k``-entry row, as a signed 64-bit int (``-1``,
    all bits, when ``k`` is a multiple of 64)."""
    used = k - WORD_BITS * (num_words(k) - 1)
    mask = (1 << used) - 1  # 1..64 low bits
    return mask - (1 << 64) if mask >= 1 << 63 else mask


def _pack_bits(bits: np.ndarray) -> Tensor:
    """``(..., K)`` bool -> ``(..., ceil(K/64))`` int64 words, padding bits 0."""
    k = bits.shape[-1]
    width = num_words(k) * WORD_BITS
    if width != k:
        padded = np.zeros((*bits.shape[:-1], width), dtype=bool)
        padded[..., :k] = bits
        bits = padded
    octets = np.packbits(bits, axis=-1, bitorder="little")  # (..., 8 W) uint8, contiguous
    words = octets.view("<i8").astype(np.int64, copy=False)  # little-endian words, native order
    return torch.from_numpy(np.ascontiguousarray(words))


def _check_real(x: object, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a tensor of shape (..., K), got {type(x).__name__}")
    if x.dim() < 1 or x.shape[-1] < 1:
        raise ValueError(f"{name}: expected shape (..., K) with K >= 1, got {tuple(x.shape)}")
    return x


def pack_signs(x: Tensor) -> Tensor:
    """Pack the signs of ``x`` along its last dimension: bit set where ``x >= 0``.

    Args:
        x: ``(..., K)`` real tensor (floating or integer; not bool, not complex), any device.
            NaN packs as ``-1`` (as ``sign_pm1`` maps it).

    Returns:
        ``(..., ceil(K / 64))`` ``torch.int64`` words on ``x``'s device; padding bits are 0.

    Raises:
        TypeError: not a tensor, or a bool / complex tensor (use `pack_mask` for masks).
        ValueError: a 0-dimensional tensor or ``K = 0``.
    """
    x = _check_real(x, "x")
    if x.dtype == torch.bool or x.is_complex():
        raise TypeError(
            f"x: expected a real (floating or integer) tensor of shape (..., K), got dtype "
            f"{x.dtype}; pack {{0, 1}} masks with pack_mask"
        )
    bits = (x.detach() >= 0).cpu().numpy()
    return _pack_bits(bits).to(x.device)


def pack_mask(mask: Tensor) -> Tensor:
    """Pack a {0, 1} mask along its last dimension: bit set where ``mask != 0``.

    Args:
        mask: ``(..., K)`` bool or numeric tensor (e.g. a binarised attention map).

    Returns:
        ``(..., ceil(K / 64))`` ``torch.int64`` words on ``mask``'s device; padding bits 0.
    """
    mask = _check_real(mask, "mask")
    bits = (mask.detach() != 0).cpu().numpy()
    return _pack_bits(bits).to(mask.device)


def check_packed(packed: object, name: str, k: int, rows: str = "n") -> Tensor:
    """Check that ``packed`` holds int64 words of ``k``-entry rows; return it.

    Args:
        packed: The value to check: ``(..., rows, ceil(k / 64))`` int64 expected.
        name: Argument name used in messages.
        k: Entries per packed row.
        rows: Name of the row dimension in messages; ``""``: no row dimension required
            (``(..., W)``).

    Raises:
        TypeError: not a tensor, or not ``torch.int64``.
        ValueError: fewer dimensions than required, or a last dimension other than
            ``ceil(k / 64)``.
    """
    words = num_words(k)
    dims = f"..., {rows}, {words}" if rows else f"..., {words}"
    expected = f"({dims}) int64 words for k={k}"
    if not isinstance(packed, Tensor):
        raise TypeError(f"{name}: expected shape {expected}, got {type(packed).__name__}")
    got = f"{tuple(packed.shape)} {str(packed.dtype).removeprefix('torch.')}"
    if packed.dtype != torch.int64:
        raise TypeError(f"{name}: expected shape {expected}, got {got}")
    if packed.dim() < (2 if rows else 1) or packed.shape[-1] != words:
        raise ValueError(f"{name}: expected shape {expected}, got {got}")
    return packed


def unpack_signs(packed: Tensor, k: int, *, dtype: torch.dtype = torch.float32) -> Tensor:
    """Inverse of `pack_signs`: ``(..., ceil(k / 64))`` int64 words -> ``(..., k)`` ±1.

    Args:
        packed: Words as `pack_signs` writes them (padding bits are ignored).
        k: Entries per row (the ``K`` that was packed).
        dtype: Floating dtype of the result.

    Returns:
        ``(..., k)`` tensor of ``dtype`` in {-1, +1} on ``packed``'s device.
    """
    packed = check_packed(packed, "packed", k, rows="")
    words = packed.detach().cpu().numpy().astype("<i8", copy=False)
    octets = np.ascontiguousarray(words).view(np.uint8)  # (..., 8 W)
    bits = np.unpackbits(octets, axis=-1, count=k, bitorder="little")  # (..., k) uint8
    signs = torch.from_numpy(bits).to(dtype) * 2 - 1
    return signs.to(packed.device)
