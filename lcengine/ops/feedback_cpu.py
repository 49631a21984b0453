"""DFA's seeded random feedback e Bᵀ, fast CPU face (see `feedback_ref` for the definition).

A large B (the ImageNet net's layers) is never stored: each thread makes _ROWS rows of it at a
time in a buffer that stays in the cache (`_fill_rows`, `feedback_matrix`'s numbers exactly, in
a loop LLVM vectorises) and multiplies them in with OpenBLAS's sgemm, called from the thread
(`cblas`, single-threaded inside the op like the LC ops: `cpu/lc._parallel`), into e Bᵀ's
batch-last memory (M, N), the order the LC layers keep activations in. ImageNet-LC layer 1
at batch 32: 170 ms against 415 for hashing and multiplying number by number in one loop, which
is what runs without the SciPy OpenBLAS build (`_random_feedback_unblocked`). A small B (MNIST,
CIFAR: at most `CACHE_ENTRIES` numbers) is built once per (seed, shape, scale, dtype) — B is a
pure function of those — and multiplied with NumPy's BLAS, ~10× faster than re-hashing it every
minibatch.
"""

from __future__ import annotations

from functools import lru_cache, partial

import numba
import numpy as np

from .cpu import cblas
from .cpu.cblas import NO_TRANS, ROW_MAJOR, TRANS
from .cpu.kernel_cache import njit
from .cpu.lc import _parallel
from .feedback_ref import feedback_matrix, splitmix64

CACHE_ENTRIES = 1 << 22                     # 16 MiB of float32 per cached matrix
_ROWS = 128                                 # rows of B per product: 500 KB of float32 at K = 1000

_splitmix64 = njit(inline="always")(splitmix64)     # the reference's, on one number


@njit(inline="always")
def _uniform_pm1(seed, index):
    """2u − 1 for u = the top 24 bits / 2²⁴, through int32 (exact: 24 bits), which vectorises
    where a uint64 → float64 conversion would not."""
    bits = np.int32(_splitmix64(index ^ seed) >> np.uint64(40))
    return 2.0 * (np.float64(bits) * (1.0 / 16777216.0)) - 1.0


@njit(cache=True)
def _fill_rows(B, seed, m0, n_classes, scale):
    """B (R, K) = rows m0 … m0 + R − 1 of the feedback matrix, as `feedback_matrix` makes them."""
    flat = B.reshape(-1)
    base = np.uint64(m0) * np.uint64(n_classes)
    for i in range(flat.size):
        flat[i] = scale * _uniform_pm1(seed, base + np.uint64(i))


@njit(parallel=True, cache=True)
def _random_feedback(gemm, e, seed, n_units, scale, out_t, parts):
    """out_t (M, N) = B eᵀ, B made _ROWS rows at a time."""
    n_batch, n_classes = e.shape
    one, zero = cblas.unit(e)
    for t in numba.prange(parts):
        B = np.empty((_ROWS, n_classes), dtype=e.dtype)
        m1 = n_units * (t + 1) // parts
        for m0 in range(n_units * t // parts, m1, _ROWS):
            rows = min(_ROWS, m1 - m0)
            _fill_rows(B[:rows], seed, m0, n_classes, scale)
            # out_t[m0:m0 + rows] (rows, N) = B[:rows] (rows, K) @ eᵀ (K, N)
            cblas.gemm(gemm, ROW_MAJOR, NO_TRANS, TRANS, rows, n_batch, n_classes, one, B,
                       n_classes, e, n_classes, zero, out_t[m0:], n_batch)


@njit(parallel=True, cache=True)
def _random_feedback_unblocked(e, seed, n_units, scale, out_t):
    """out_t (M, N) = B eᵀ, one number of B at a time."""
    n_batch, n_classes = e.shape
    e_t = np.ascontiguousarray(e.T)                                          # (K, N)
    for m in numba.prange(n_units):
        acc = np.zeros(n_batch, dtype=np.float64)
        base = np.uint64(m) * np.uint64(n_classes)
        for k in range(n_classes):
            b = scale * _uniform_pm1(seed, base + np.uint64(k))
            for n in range(n_batch):
                acc[n] += b * e_t[k, n]
        for n in range(n_batch):
            out_t[m, n] = acc[n]


@lru_cache(maxsize=32)
def _stored_matrix(seed, n_units, n_classes, scale, dtype):
    B_t = np.ascontiguousarray(feedback_matrix(seed, np.arange(n_units), n_classes, scale, dtype).T)
    B_t.flags.writeable = False
    return B_t                                                              # (K, M)


def random_feedback(e, seed, n_units, scale):
    if n_units * e.shape[1] <= CACHE_ENTRIES:
        return e @ _stored_matrix(int(seed), int(n_units), e.shape[1], float(scale),
                                  np.dtype(e.dtype))
    return _hashed_feedback(np.ascontiguousarray(e), np.uint64(seed), int(n_units), float(scale))


@partial(_parallel, needs_simd=False)
def _hashed_feedback(blas, parts, e, seed, n_units, scale):
    """e Bᵀ (N, M) as a view of batch-last memory (M, N): reshaped to a layer's shape it is in the
    order the LC ops keep activations in, and the rule's ⊙ σ'(a) reads it uncopied."""
    out_t = np.empty((n_units, e.shape[0]), dtype=e.dtype)
    if blas is None or e.dtype not in blas.gemm:
        _random_feedback_unblocked(e, seed, n_units, scale, out_t)
    else:
        _random_feedback(blas.gemm[e.dtype], e, seed, n_units, scale, out_t, min(parts, n_units))
    return out_t.T
