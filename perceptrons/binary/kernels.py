"""Exact binary matrix products on packed words: XNOR-popcount and AND-popcount GEMMs.

For rows packed by `perceptrons.binary.pack_signs` / `perceptrons.binary.pack_mask` (``W =
ceil(k / 64)`` int64 words per ``k``-entry row):

* `binary_matmul` (±1 x ±1): ``sign(A) @ sign(B)ᵀ = k - 2 popcount(a XOR b)`` per pair of
  rows (two equal signs give a 0 bit of the XOR and +1 in the dot product, two different
  signs a 1 bit and -1), the binary inner product of XNOR-Net (Rastegari et al. 2016,
  arXiv:1603.05279) as binary inference engines such as Larq Compute Engine compute it
  (https://docs.larq.dev/compute-engine/);
* `binary_mask_matmul` ({0, 1} x ±1, the attention product ``B @ v``): ``sum_{t: B_t = 1}
  v_t = 2 popcount(B AND v₊) - popcount(B) = popcount(B) - 2 popcount(B AND v₋)``, with ``v₊``
  the bits of the +1 entries (what `pack_signs` stores) and ``v₋`` their complement.

Both results are exact ``int32`` integers for every ``k`` (not only multiples of 64): the
padding bits of the last word are cleared before the product (a copy is made only when an
input has stray padding bits), so they add nothing to a popcount. Popcounts are accumulated in
*signed* integers before ``k - 2 s`` is formed: numpy's ``bitwise_count`` returns ``uint8``
(and counts the absolute value of a signed input, so the words are viewed as ``uint64``
first); ``k - 2 * counts.sum()`` on unsigned counts would wrap around to huge positive values
whenever the dot product is negative.

Backends (``backend=``):

* ``"numba"``: blocked, multi-threaded kernels (`perceptrons.binary.numba_kernels`), the
  optional extra ``pip install 'perceptrons[fast]'``. The first call in a process compiles
  them (a few seconds; `warm_up` does it ahead of time); nothing is cached on disk. Threads:
  ``threads=`` or, by default, ``torch.get_num_threads()`` (capped by numba's
  ``NUMBA_NUM_THREADS``, and lowered for small products: one thread per `PARALLEL_WORK`
  word operations); numba's own thread setting is restored afterwards.
* ``"numpy"``: ``np.bitwise_count`` (numpy >= 2) on blocks of at most `NUMPY_BLOCK` words of
  temporaries (a few MiB), single-threaded; several times slower than numba.
* ``"auto"`` (default): numba if it can be imported, else numpy.

The kernels run on the CPU: inputs on another device are copied to it and the result is moved
back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Literal, TypeAlias

import numpy as np
import torch
from torch import Tensor

from perceptrons.binary.packing import check_packed, last_word_mask, num_words

__all__ = [
    "BACKENDS",
    "NUMPY_BLOCK",
    "PARALLEL_WORK",
    "BackendName",
    "binary_mask_matmul",
    "binary_matmul",
    "numba_available",
    "resolve_backend",
    "warm_up",
]

BackendName: TypeAlias = Literal["auto", "numba", "numpy"]
BACKENDS = ("auto", "numba", "numpy")
NUMPY_BLOCK = 1 << 18
"""Entries of the ``(rows, m)`` temporaries of the numpy backend per block (2 MiB of words)."""

PARALLEL_WORK = 1 << 18
"""Word operations per extra numba thread: smaller products run on fewer threads, since
starting a parallel region costs more than they do."""

_NUMBA: dict[str, object] = {}


def _numba_module():
    """`perceptrons.binary.numba_kernels` (imports numba), or None when numba is missing."""
    if "module" not in _NUMBA:
        try:
            from perceptrons.binary import numba_kernels
        except ImportError:
            _NUMBA["module"] = None
        else:
            _NUMBA["module"] = numba_kernels
    return _NUMBA["module"]


def numba_available() -> bool:
    """Whether the numba backend can be used (numba imports)."""
    return _numba_module() is not None


def resolve_backend(backend: str = "auto") -> Literal["numba", "numpy"]:
    """``"auto"`` -> ``"numba"`` when numba imports, else ``"numpy"``; an explicit name is
    checked.

    Raises:
        ValueError: an unknown name.
        ImportError: ``"numba"`` without numba installed (with the install command).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend: must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        return "numba" if numba_available() else "numpy"
    if backend == "numba" and not numba_available():
        raise ImportError(
            "backend='numba' needs numba: pip install 'perceptrons[fast]' (or 'numba>=0.60')"
        )
    return backend  # type: ignore[return-value]


def _to_words(
    a: Tensor, b: Tensor, k: int, names: tuple[str, str]
) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Validated ``(B, n, W)`` and ``(B, m, W)`` C-contiguous int64 arrays with clear padding
    bits, and the result shape ``(*lead, n, m)``."""
    check_packed(a, names[0], k, rows="n")
    check_packed(b, names[1], k, rows="m")
    n, m, words = a.shape[-2], b.shape[-2], a.shape[-1]
    x = a.detach().cpu().numpy()
    y = b.detach().cpu().numpy()
    if b.dim() == 2:  # one right-hand matrix: fold a's leading dimensions into its rows
        lead = tuple(a.shape[:-2])
        x = x.reshape(1, -1, words)
        y = y.reshape(1, m, words)
    else:
        try:
            lead = tuple(torch.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
        except RuntimeError:
            raise ValueError(
                f"{names[0]}, {names[1]}: leading dimensions {tuple(a.shape[:-2])} and "
                f"{tuple(b.shape[:-2])} do not broadcast"
            ) from None
        x = np.broadcast_to(x, (*lead, n, words)).reshape(-1, n, words)
        y = np.broadcast_to(y, (*lead, m, words)).reshape(-1, m, words)
    mask = last_word_mask(k)
    x, y = (_clear_padding(t, mask) for t in (x, y))
    return x, y, (*lead, n, m)


def _clear_padding(words: np.ndarray, mask: int) -> np.ndarray:
    # C-contiguous and writable (a broadcast view is read-only): one array type, so numba
    # compiles each kernel once
    if not (words.flags.c_contiguous and words.flags.writeable and words.dtype == np.int64):
        words = np.array(words, dtype=np.int64, order="C")
    if mask != -1 and words.size and np.any(words[..., -1] & ~np.int64(mask)):
        words = words.copy()
        words[..., -1] &= np.int64(mask)
    return words


def _numpy_gemm(
    a: np.ndarray,
    b: np.ndarray,
    base: np.ndarray,
    coef: int,
    op: Callable[..., np.ndarray],
    out: np.ndarray,
) -> None:
    """``out = base + coef * sum_w popcount(op(a, b))`` blockwise (see `_numba` for shapes)."""
    batches, n, words = a.shape
    m = b.shape[1]
    # words first, so that every slice below is contiguous; viewed as unsigned because
    # bitwise_count of a signed int counts the bits of |x|
    au = np.ascontiguousarray(a.view(np.uint64).transpose(0, 2, 1))  # (B, W, n)
    bu = np.ascontiguousarray(b.view(np.uint64).transpose(0, 2, 1))  # (B, W, m)
    if n * m <= NUMPY_BLOCK:
        batch_step, row_step = max(1, NUMPY_BLOCK // max(n * m, 1)), n
    else:
        batch_step, row_step = 1, max(1, NUMPY_BLOCK // m)
    for z0 in range(0, batches, batch_step):
        z1 = min(z0 + batch_step, batches)
        for r0 in range(0, n, row_step):
            r1 = min(r0 + row_step, n)
            acc = np.zeros((z1 - z0, r1 - r0, m), np.int32)  # signed: no unsigned wrap
            tmp = np.empty_like(acc, dtype=np.uint64)
            for w in range(words):
                op(au[z0:z1, w, r0:r1, None], bu[z0:z1, w, None, :], out=tmp)
                acc += np.bitwise_count(tmp)
            acc *= coef
            acc += base[z0:z1, r0:r1, None].astype(np.int32)
            out[z0:z1, r0:r1] = acc


def _threads(threads: int | None) -> int:
    if threads is None:
        return torch.get_num_threads()
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads: expected an int >= 1 or None, got {threads!r}")
    return threads


def _numba(
    kernel: str,
    a: np.ndarray,
    b: np.ndarray,
    base: np.ndarray,
    coef: int,
    out: np.ndarray,
    threads: int | None,
) -> None:
    """Run ``kernel`` of `perceptrons.binary.numba_kernels` on ``a (B, n, W)``, ``b (B, m,
    W)``, ``base (B, n)`` into ``out (B, n, m)``."""
    import numba

    module = _numba_module()
    work = a.shape[0] * a.shape[1] * b.shape[1] * a.shape[2]  # word operations
    wanted = min(_threads(threads), numba.config.NUMBA_NUM_THREADS)
    wanted = max(1, min(wanted, work // PARALLEL_WORK))  # waking threads costs ~ms
    previous = numba.get_num_threads()
    numba.set_num_threads(wanted)
    try:
        getattr(module, kernel)(a, b, base, np.int64(coef), out)
    finally:
        with contextlib.suppress(ValueError):
            numba.set_num_threads(previous)


def _gemm(
    kind: Literal["xor", "and"],
    a: Tensor,
    b: Tensor,
    k: int,
    names: tuple[str, str],
    backend: str,
    threads: int | None,
) -> Tensor:
    name = resolve_backend(backend)
    num_words(k)
    _threads(threads)
    x, y, shape = _to_words(a, b, k, names)
    out = np.empty((x.shape[0], x.shape[1], y.shape[1]), np.int32)
    if kind == "xor":
        base, coef = np.full(x.shape[:2], k, np.int64), -2
    else:
        base, coef = -np.bitwise_count(x.view(np.uint64)).sum(-1, dtype=np.int64), 2
    if out.size:
        if name == "numba":
            _numba(f"{kind}_gemm", x, y, base, coef, out, threads)
        else:  # single-threaded: ``threads`` does not apply
            op = np.bitwise_xor if kind == "xor" else np.bitwise_and
            _numpy_gemm(x, y, base, coef, op, out)
    return torch.from_numpy(out).reshape(shape).to(a.device)


def binary_matmul(
    a_packed: Tensor,
    b_packed: Tensor,
    k: int,
    *,
    backend: BackendName = "auto",
    threads: int | None = None,
) -> Tensor:
    """``sign(A) @ sign(B)ᵀ`` from packed signs, exactly (XNOR-popcount).

    Args:
        a_packed: ``(..., n, ceil(k / 64))`` int64 words of ``A (..., n, k)``
            (`perceptrons.binary.pack_signs`).
        b_packed: ``(m, ceil(k / 64))`` (shared by every leading index of ``a_packed``) or
            ``(..., m, ceil(k / 64))`` (leading dimensions broadcast with ``a_packed``'s).
        k: Entries per row (the inner dimension), ``>= 1``.
        backend: ``"auto"``, ``"numba"`` or ``"numpy"`` (module docstring).
        threads: Threads of the numba backend (default ``torch.get_num_threads()``).

    Returns:
        ``(..., n, m)`` int32 on ``a_packed``'s device: entry ``(i, j)`` is ``k - 2
        popcount(a_i XOR b_j)`` = ``sum_t sign(A_it) sign(B_jt)``, in ``[-k, k]``.

    Raises:
        TypeError: a non-tensor or non-int64 input.
        ValueError: a last dimension other than ``ceil(k / 64)``, too few dimensions,
            leading dimensions that do not broadcast, or a bad ``k`` / ``threads``.
    """
    return _gemm("xor", a_packed, b_packed, k, ("a_packed", "b_packed"), backend, threads)


def binary_mask_matmul(
    mask_packed: Tensor,
    signs_packed: Tensor,
    k: int,
    *,
    backend: BackendName = "auto",
    threads: int | None = None,
) -> Tensor:
    """``M @ sign(S)ᵀ`` for a {0, 1} mask ``M`` and signs ``S``, exactly (AND-popcount).

    Entry ``(i, j)`` is ``sum_{t: M_it = 1} sign(S_jt) = 2 popcount(m_i AND s_j) -
    popcount(m_i)``. For binary attention ``out = B @ v`` with ``B (n, n_k)`` and ``v (n_k,
    d)``: ``binary_mask_matmul(pack_mask(B), pack_signs(v.mT), n_k)`` -> ``(n, d)``.

    Args:
        mask_packed: ``(..., n, ceil(k / 64))`` int64 words of ``M (..., n, k)``
            (`perceptrons.binary.pack_mask`).
        signs_packed: ``(m, ceil(k / 64))`` or ``(..., m, ceil(k / 64))`` int64 words of
            ``S`` (`perceptrons.binary.pack_signs`; leading dimensions broadcast).
        k: Entries per row (the inner dimension), ``>= 1``.
        backend: ``"auto"``, ``"numba"`` or ``"numpy"``.
        threads: Threads of the numba backend (default ``torch.get_num_threads()``).

    Returns:
        ``(..., n, m)`` int32 on ``mask_packed``'s device, in ``[-k, k]``.

    Raises:
        TypeError, ValueError: as `binary_matmul`.
    """
    names = ("mask_packed", "signs_packed")
    return _gemm("and", mask_packed, signs_packed, k, names, backend, threads)


def warm_up(backend: BackendName = "auto") -> str:
    """Compile the kernels of ``backend`` now (numba: a few seconds, once per process)
    instead of on the first real call; returns the resolved backend name."""
    name = resolve_backend(backend)
    a = torch.zeros(5, 2, dtype=torch.int64)
    binary_matmul(a, a, 100, backend=name)
    binary_mask_matmul(a, a, 100, backend=name)
    return name
