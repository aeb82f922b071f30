"""Bit-packing of signs and masks: layout, padding, round trips, errors."""

from __future__ import annotations

import pytest
import torch

from perceptrons.binary import (
    last_word_mask,
    num_words,
    pack_mask,
    pack_signs,
    unpack_signs,
)
from perceptrons.layers.binary import sign_pm1

KS = (1, 63, 64, 65, 1000)


@pytest.mark.parametrize("k", KS)
def test_round_trip_and_shape(k: int) -> None:
    x = torch.randn(3, 2, k, generator=torch.Generator().manual_seed(k))
    packed = pack_signs(x)
    assert packed.dtype == torch.int64
    assert packed.shape == (3, 2, -(-k // 64))
    assert torch.equal(unpack_signs(packed, k), sign_pm1(x))
    assert unpack_signs(packed, k, dtype=torch.float64).dtype == torch.float64


@pytest.mark.parametrize("k", KS)
def test_padding_bits_are_zero(k: int) -> None:
    packed = pack_signs(torch.ones(4, k))  # every entry +1: every valid bit set
    mask = last_word_mask(k)
    assert torch.all(packed[:, :-1] == -1)  # full words: all 64 bits
    assert torch.all(packed[:, -1] == mask)  # last word: exactly the valid bits
    assert torch.all(pack_signs(-torch.ones(4, k)) == 0)


def test_bit_layout() -> None:
    """Entry t is bit t % 64 of word t // 64 (bit 0 least significant); 0 packs as +1."""
    x = -torch.ones(65)
    x[0] = 0.0
    x[63] = 2.0
    x[64] = 1.0
    assert pack_signs(x).tolist() == [1 - 2**63, 1]  # bits 0 and 63 of word 0; bit 0 of word 1


def test_zero_and_nan_follow_sign_pm1() -> None:
    x = torch.tensor([0.0, -0.0, float("nan"), -1e-30, 3.0])
    assert torch.equal(unpack_signs(pack_signs(x), 5), sign_pm1(x))


def test_integer_inputs_and_mask() -> None:
    assert torch.equal(
        unpack_signs(pack_signs(torch.tensor([-3, 0, 5])), 3),
        sign_pm1(torch.tensor([-3.0, 0.0, 5.0])),
    )
    mask = torch.tensor([[True, False, True], [False, False, False]])
    assert pack_mask(mask).tolist() == [[5], [0]]
    assert torch.equal(pack_mask(mask.float()), pack_mask(mask))


def test_last_word_mask_and_num_words() -> None:
    assert [num_words(k) for k in KS] == [1, 1, 1, 2, 16]
    assert last_word_mask(1) == 1
    assert last_word_mask(63) == 2**63 - 1
    assert last_word_mask(64) == -1
    assert last_word_mask(65) == 1
    assert last_word_mask(1000) == 2**40 - 1


def test_errors_name_the_expected_shape() -> None:
    with pytest.raises(TypeError, match="pack_mask"):
        pack_signs(torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"x: expected shape \(\.\.\., K\) with K >= 1"):
        pack_signs(torch.ones(3, 0))
    with pytest.raises(TypeError, match="x: expected a tensor"):
        pack_signs([1.0, 2.0])  # type: ignore[arg-type]
    with pytest.raises(
        ValueError,
        match=r"packed: expected shape \(\.\.\., 2\) int64 words for k=100, got \(4, 3\) int64",
    ):
        unpack_signs(torch.zeros(4, 3, dtype=torch.int64), 100)
    with pytest.raises(TypeError, match=r"got \(4, 2\) int32"):
        unpack_signs(torch.zeros(4, 2, dtype=torch.int32), 100)
    with pytest.raises(ValueError, match="k: expected an int >= 1"):
        unpack_signs(torch.zeros(4, 1, dtype=torch.int64), 0)
