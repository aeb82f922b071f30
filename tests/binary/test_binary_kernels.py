"""XNOR-popcount and AND-popcount products: exact against the float reference, both backends."""

from __future__ import annotations

import pytest
import torch

from perceptrons.binary import (
    binary_mask_matmul,
    binary_matmul,
    last_word_mask,
    numba_available,
    pack_mask,
    pack_signs,
    resolve_backend,
    warm_up,
)
from perceptrons.binary import kernels as kernels_module
from perceptrons.layers.binary import sign_pm1

KS = (1, 63, 64, 65, 1000)
NO_NUMBA = "numba is not installed (pip install 'perceptrons[fast]')"
BACKENDS = [
    "numpy",
    pytest.param("numba", marks=pytest.mark.skipif(not numba_available(), reason=NO_NUMBA)),
]


def _reference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b.mT`` of exact small integers in float64, as int32."""
    return (a.double() @ b.double().mT).to(torch.int32)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("k", KS)
def test_binary_matmul_equals_float_signs(backend: str, k: int) -> None:
    g = torch.Generator().manual_seed(k)
    a, b = torch.randn(2, 9, k, generator=g), torch.randn(2, 7, k, generator=g)
    out = binary_matmul(pack_signs(a), pack_signs(b), k, backend=backend)
    assert out.dtype == torch.int32 and out.shape == (2, 9, 7)
    assert torch.equal(out, _reference(sign_pm1(a), sign_pm1(b)))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("k", KS)
def test_mask_matmul_equals_float_product(backend: str, k: int) -> None:
    g = torch.Generator().manual_seed(100 + k)
    mask = (torch.rand(3, 10, k, generator=g) < 0.3).float()
    v = torch.randn(3, 6, k, generator=g)
    out = binary_mask_matmul(pack_mask(mask), pack_signs(v), k, backend=backend)
    assert out.dtype == torch.int32 and out.shape == (3, 10, 6)
    assert torch.equal(out, _reference(mask, sign_pm1(v)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_attention_product_b_at_v(backend: str) -> None:
    """``B @ v`` (``(n, n_k) x (n_k, d)``) via the packed map and the signs of ``vᵀ``."""
    g = torch.Generator().manual_seed(3)
    b_map = (torch.rand(2, 4, 17, 17, generator=g) < 0.4).float()
    v = sign_pm1(torch.randn(2, 4, 17, 16, generator=g))
    out = binary_mask_matmul(pack_mask(b_map), pack_signs(v.mT), 17, backend=backend)
    assert torch.equal(out, (b_map @ v).to(torch.int32))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("k", [1, 64, 65, 1000])
def test_negative_products_do_not_wrap(backend: str, k: int) -> None:
    """Regression: popcounts are unsigned (numpy's uint8, or uint64 words); ``k - 2 s`` must
    be formed in signed integers, or an all-opposite product (``-k``) wraps to a huge
    positive value. All +1 words also have the sign bit set, which ``bitwise_count`` of a
    *signed* int64 would not count (it counts ``|x|``)."""
    plus, minus = pack_signs(torch.ones(5, k)), pack_signs(-torch.ones(4, k))
    out = binary_matmul(plus, minus, k, backend=backend)
    assert out.dtype == torch.int32
    assert torch.all(out == -k)
    assert torch.all(binary_matmul(plus, plus, k, backend=backend) == k)
    all_ones = pack_mask(torch.ones(3, k))
    assert torch.all(binary_mask_matmul(all_ones, minus, k, backend=backend) == -k)
    assert torch.all(binary_mask_matmul(all_ones, plus, k, backend=backend) == k)


@pytest.mark.parametrize("backend", BACKENDS)
def test_stray_padding_bits_are_ignored(backend: str) -> None:
    g = torch.Generator().manual_seed(5)
    k = 100
    a, b = torch.randn(6, k, generator=g), torch.randn(8, k, generator=g)
    pa, pb = pack_signs(a), pack_signs(b)
    dirty_a, dirty_b = pa.clone(), pb.clone()
    dirty_a[:, -1] |= ~last_word_mask(k)  # set every padding bit of a, none of b
    expected = _reference(sign_pm1(a), sign_pm1(b))
    assert torch.equal(binary_matmul(dirty_a, dirty_b, k, backend=backend), expected)
    dirty_b[:, -1] |= ~last_word_mask(k)
    assert torch.equal(binary_matmul(dirty_a, dirty_b, k, backend=backend), expected)
    mask = (torch.rand(6, k, generator=g) < 0.5).float()
    dirty_m = pack_mask(mask)
    dirty_m[:, -1] |= ~last_word_mask(k)
    expected_m = _reference(mask, sign_pm1(b))
    assert torch.equal(binary_mask_matmul(dirty_m, pb, k, backend=backend), expected_m)
    assert torch.equal(pa, pack_signs(a))  # the caller's words are not modified
    assert int(dirty_m[0, -1] & ~last_word_mask(k)) != 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_leading_dimensions(backend: str) -> None:
    g = torch.Generator().manual_seed(6)
    k = 70
    a = torch.randn(2, 3, 5, k, generator=g)
    shared = torch.randn(4, k, generator=g)
    out = binary_matmul(pack_signs(a), pack_signs(shared), k, backend=backend)
    assert torch.equal(out, _reference(sign_pm1(a), sign_pm1(shared)))
    other = torch.randn(1, 3, 4, k, generator=g)  # broadcasts over the first dimension
    out = binary_matmul(pack_signs(a), pack_signs(other), k, backend=backend)
    assert out.shape == (2, 3, 5, 4)
    assert torch.equal(out, _reference(sign_pm1(a), sign_pm1(other)))


@pytest.mark.skipif(not numba_available(), reason=NO_NUMBA)
def test_backends_agree_on_a_larger_product() -> None:
    g = torch.Generator().manual_seed(7)
    k = 777
    a, b = pack_signs(torch.randn(101, k, generator=g)), pack_signs(torch.randn(67, k, generator=g))
    fast = binary_matmul(a, b, k, backend="numba", threads=2)
    assert torch.equal(fast, binary_matmul(a, b, k, backend="numpy"))
    assert torch.equal(fast, binary_matmul(a, b, k, backend="numba", threads=1))


def test_backend_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_backend("numpy") == "numpy"
    assert resolve_backend("auto") == ("numba" if numba_available() else "numpy")
    assert warm_up("numpy") == "numpy"
    with pytest.raises(ValueError, match="backend: must be one of"):
        resolve_backend("cuda")
    monkeypatch.setitem(kernels_module._NUMBA, "module", None)  # as if numba were missing
    assert resolve_backend("auto") == "numpy"
    with pytest.raises(ImportError, match=r"perceptrons\[fast\]"):
        binary_matmul(
            torch.zeros(1, 1, dtype=torch.int64),
            torch.zeros(1, 1, dtype=torch.int64),
            3,
            backend="numba",
        )


def test_bad_shapes_and_dtypes() -> None:
    words = torch.zeros(5, 2, dtype=torch.int64)
    with pytest.raises(
        ValueError,
        match=r"a_packed: expected shape \(\.\.\., n, 2\) int64 words for k=100, got \(5, 3\) "
        r"int64",
    ):
        binary_matmul(torch.zeros(5, 3, dtype=torch.int64), words, 100)
    with pytest.raises(
        ValueError, match=r"b_packed: expected shape \(\.\.\., m, 2\) int64 words for k=100"
    ):
        binary_matmul(words, torch.zeros(2, dtype=torch.int64), 100)
    with pytest.raises(TypeError, match=r"a_packed: .* got \(5, 2\) float32"):
        binary_matmul(torch.zeros(5, 2), words, 100)
    with pytest.raises(TypeError, match="signs_packed: expected shape"):
        binary_mask_matmul(words, words.numpy(), 100)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="do not broadcast"):
        binary_matmul(
            torch.zeros(2, 5, 2, dtype=torch.int64), torch.zeros(3, 4, 2, dtype=torch.int64), 100
        )
    with pytest.raises(ValueError, match="k: expected an int >= 1"):
        binary_matmul(words, words, 0)
    with pytest.raises(ValueError, match="threads: expected an int >= 1"):
        binary_matmul(words, words, 100, threads=0)


def test_empty_rows() -> None:
    empty = torch.zeros(0, 2, dtype=torch.int64)
    out = binary_matmul(empty, torch.zeros(3, 2, dtype=torch.int64), 100)
    assert out.shape == (0, 3) and out.dtype == torch.int32
