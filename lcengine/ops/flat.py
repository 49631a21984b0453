"""Operands of the fast CPU faces' elementwise ops as 1-D views in one memory order.

An elementwise op does not care about axes, only that its operands line up number for number.
Viewing each as the 1-D run of its memory keeps the LC faces' batch-last activations uncopied.
Where one operand is batch-first and the first is batch-last (the TP rules meet one at a dense
layer's inverse), it is transposed in parallel 8×8 tiles: NumPy's transposing copy took 7.3 ms
for CIFAR-LC's (128, 256·8·8) float32 activations, these tiles 1.3 (16-128 wide: 1.7-4.8).
"""

from __future__ import annotations

import numba
import numpy as np

_TILE = 8


@numba.njit(parallel=True, cache=True)
def _transpose(a, at):
    """at (F, N) = aᵀ for a (N, F), tile by tile so that both sides stay in the cache."""
    N, F = a.shape
    for fb in numba.prange((F + _TILE - 1) // _TILE):
        f0, f1 = fb * _TILE, min(F, fb * _TILE + _TILE)
        for n0 in range(0, N, _TILE):
            for n in range(n0, min(N, n0 + _TILE)):
                for f in range(f0, f1):
                    at[f, n] = a[n, f]


def _copy_into(copy, a):
    """copy[...] = a, through `_transpose` when a is C-contiguous and copy is batch-last."""
    n = a.shape[0] if a.ndim else 1
    at = copy.transpose(*range(1, copy.ndim), 0) if copy.ndim > 1 else None
    if at is not None and at.flags.c_contiguous and a.flags.c_contiguous and a.dtype == copy.dtype:
        _transpose(a.reshape(n, -1), at.reshape(-1, n))
    else:
        copy[...] = a


def flat_operands(arrays, what):
    """1-D views of same-shape arrays in their common float dtype, all in the memory order of the
    first (the LC faces' batch-last activations stay uncopied), and a result array of that
    order. An array in another order or dtype is copied into the first's order."""
    shape = arrays[0].shape
    for a in arrays[1:]:
        if a.shape != shape:
            raise ValueError(f"{what}: shapes differ: {[x.shape for x in arrays]}")
    dtype = np.result_type(*arrays)
    if dtype not in (np.float32, np.float64):
        dtype = np.dtype(np.float64)
    result = np.empty_like(arrays[0], dtype=dtype)           # the first's axis order, compact
    flats = []
    for a in arrays:
        if a.dtype != dtype or a.strides != result.strides:
            copy = np.empty_like(result)
            _copy_into(copy, a)
            a = copy
        flats.append(a.ravel(order="K"))                   # a view: a is compact in its order
    return flats, result
