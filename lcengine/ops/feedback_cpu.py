"""DFA's seeded random feedback e Bᵀ, fast CPU face (see `feedback_ref` for the definition).

A large B (the ImageNet net's layers) is hashed on the fly, row by row, inside a parallel Numba
loop, so it is never stored. A small one (MNIST, CIFAR: at most `CACHE_ENTRIES` numbers) is built
once per (seed, shape, scale, dtype) — B is a pure function of those — and multiplied with BLAS,
which is ~10× faster than re-hashing it every minibatch.
"""

from __future__ import annotations

from functools import lru_cache

import numba
import numpy as np

from .feedback_ref import GOLDEN, MIX1, MIX2, feedback_matrix

CACHE_ENTRIES = 1 << 22                     # 16 MiB of float32 per cached matrix

_GOLDEN, _MIX1, _MIX2 = np.uint64(GOLDEN), np.uint64(MIX1), np.uint64(MIX2)


@numba.njit(inline="always")
def _uniform_pm1(seed, index):
    z = (index ^ seed) + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z = z ^ (z >> np.uint64(31))
    return 2.0 * (np.float64(z >> np.uint64(40)) * (1.0 / 16777216.0)) - 1.0


@numba.njit(parallel=True, cache=True)
def _random_feedback(e, seed, n_units, scale, out):
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
            out[n, m] = acc[n]


@lru_cache(maxsize=32)
def _stored_matrix(seed, n_units, n_classes, scale, dtype):
    B_t = np.ascontiguousarray(feedback_matrix(seed, np.arange(n_units), n_classes, scale, dtype).T)
    B_t.flags.writeable = False
    return B_t                                                              # (K, M)


def random_feedback(e, seed, n_units, scale):
    if n_units * e.shape[1] <= CACHE_ENTRIES:
        return e @ _stored_matrix(int(seed), int(n_units), e.shape[1], float(scale), np.dtype(e.dtype))
    e = np.ascontiguousarray(e)
    out = np.empty((e.shape[0], n_units), dtype=e.dtype)
    _random_feedback(e, np.uint64(seed), int(n_units), float(scale), out)
    return out
