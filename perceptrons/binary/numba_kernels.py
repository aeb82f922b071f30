"""Compiled popcount GEMMs (numba; the optional extra ``perceptrons[fast]``).

Importing this module imports numba; `perceptrons.binary.kernels` does so only when the numba
backend is first used. Each kernel is compiled on its first call (``cache=False``: nothing is
written next to the package), which takes a few seconds once per process;
`perceptrons.binary.warm_up` triggers it ahead of time.

Both kernels compute, for every batch ``z``, row ``i`` of ``a`` and row ``j`` of ``b``::

    out[z, i, j] = base[z, i] + coef * sum_w popcount(op(a[z, i, w], b[z, j, w]))

with ``op`` XOR (`xor_gemm`, the XNOR-popcount inner product: ``base = k``, ``coef = -2``) or
AND (`and_gemm`, the {0, 1} x ±1 product: ``base = -popcount(a_i)``, ``coef = 2``). Shapes:
``a (B, n, W)``, ``b (B, m, W)`` C-contiguous int64 words with clear padding bits, ``base (B,
n)`` int64, ``out (B, n, m)`` int32 (written). The popcounts are LLVM's ``ctpop`` on 64-bit
words and are summed in signed 64-bit integers, so ``base + coef * s`` cannot wrap.

Work is split over threads by blocks of ``ROW_BLOCK`` rows of ``a`` (``prange``); inside a
block, ``COL_BLOCK`` rows of ``b`` at a time are swept by 4 x 4 register tiles (16 independent
accumulators, which the compiler vectorises over the words with the CPU's popcount
instructions), and leftover rows or columns by single cells.
"""

from __future__ import annotations

import numba as nb
from numba import types
from numba.extending import intrinsic

__all__ = ["COL_BLOCK", "ROW_BLOCK", "and_gemm", "xor_gemm"]

ROW_BLOCK = 32
"""Rows of ``a`` per parallel task."""
COL_BLOCK = 64
"""Rows of ``b`` swept per pass over a row block (kept in the L1/L2 cache)."""


@intrinsic
def _popcount(typingctx, x):
    """Number of set bits of a 64-bit integer (LLVM ``ctpop``), as int64."""
    if not isinstance(x, types.Integer) or x.bitwidth != 64:
        return None

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return types.int64(x), codegen


@nb.njit(cache=False)
def _xor(x, y):
    return x ^ y


@nb.njit(cache=False)
def _and(x, y):
    return x & y


def _build(op):
    """The blocked popcount GEMM for the word operation ``op`` (see the module docstring)."""

    @nb.njit(cache=False)
    def cell(a, b, z, i, j, words):
        s = 0
        for w in range(words):
            s += _popcount(op(a[z, i, w], b[z, j, w]))
        return s

    @nb.njit(parallel=True, cache=False)
    def gemm(a, b, base, coef, out):
        batches, n, words = a.shape
        m = b.shape[1]
        row_blocks = (n + ROW_BLOCK - 1) // ROW_BLOCK
        for task in nb.prange(batches * row_blocks):
            z = task // row_blocks
            r0 = (task % row_blocks) * ROW_BLOCK
            r1 = min(r0 + ROW_BLOCK, n)
            for c0 in range(0, m, COL_BLOCK):
                c1 = min(c0 + COL_BLOCK, m)
                i = r0
                while i + 4 <= r1:
                    j = c0
                    while j + 4 <= c1:
                        s00 = s01 = s02 = s03 = 0
                        s10 = s11 = s12 = s13 = 0
                        s20 = s21 = s22 = s23 = 0
                        s30 = s31 = s32 = s33 = 0
                        for w in range(words):
                            a0, a1 = a[z, i, w], a[z, i + 1, w]
                            a2, a3 = a[z, i + 2, w], a[z, i + 3, w]
                            b0, b1 = b[z, j, w], b[z, j + 1, w]
                            b2, b3 = b[z, j + 2, w], b[z, j + 3, w]
                            s00 += _popcount(op(a0, b0))
                            s01 += _popcount(op(a0, b1))
                            s02 += _popcount(op(a0, b2))
                            s03 += _popcount(op(a0, b3))
                            s10 += _popcount(op(a1, b0))
                            s11 += _popcount(op(a1, b1))
                            s12 += _popcount(op(a1, b2))
                            s13 += _popcount(op(a1, b3))
                            s20 += _popcount(op(a2, b0))
                            s21 += _popcount(op(a2, b1))
                            s22 += _popcount(op(a2, b2))
                            s23 += _popcount(op(a2, b3))
                            s30 += _popcount(op(a3, b0))
                            s31 += _popcount(op(a3, b1))
                            s32 += _popcount(op(a3, b2))
                            s33 += _popcount(op(a3, b3))
                        g0, g1, g2, g3 = base[z, i], base[z, i + 1], base[z, i + 2], base[z, i + 3]
                        out[z, i, j] = g0 + coef * s00
                        out[z, i, j + 1] = g0 + coef * s01
                        out[z, i, j + 2] = g0 + coef * s02
                        out[z, i, j + 3] = g0 + coef * s03
                        out[z, i + 1, j] = g1 + coef * s10
                        out[z, i + 1, j + 1] = g1 + coef * s11
                        out[z, i + 1, j + 2] = g1 + coef * s12
                        out[z, i + 1, j + 3] = g1 + coef * s13
                        out[z, i + 2, j] = g2 + coef * s20
                        out[z, i + 2, j + 1] = g2 + coef * s21
                        out[z, i + 2, j + 2] = g2 + coef * s22
                        out[z, i + 2, j + 3] = g2 + coef * s23
                        out[z, i + 3, j] = g3 + coef * s30
                        out[z, i + 3, j + 1] = g3 + coef * s31
                        out[z, i + 3, j + 2] = g3 + coef * s32
                        out[z, i + 3, j + 3] = g3 + coef * s33
                        j += 4
                    for jj in range(j, c1):
                        for ii in range(i, i + 4):
                            out[z, ii, jj] = base[z, ii] + coef * cell(a, b, z, ii, jj, words)
                    i += 4
                for ii in range(i, r1):
                    for jj in range(c0, c1):
                        out[z, ii, jj] = base[z, ii] + coef * cell(a, b, z, ii, jj, words)

    return gemm


xor_gemm = _build(_xor)
"""XNOR-popcount GEMM: ``out = base + coef * popcount(a XOR b)`` (see the module docstring)."""
and_gemm = _build(_and)
"""AND-popcount GEMM: ``out = base + coef * popcount(a AND b)`` (see the module docstring)."""
