"""Operands of the fast CPU faces' elementwise ops as 1-D views in one memory order.

An elementwise op does not care about axes, only that its operands line up number for number.
Viewing each as the 1-D run of its memory keeps the LC faces' batch-last activations uncopied.
Where one operand is batch-first and the first is batch-last (the TP rules met one at a dense
layer's inverse, DFA's stored feedback is one), OpenBLAS's ?omatcopy transposes it: 0.74 ms for
CIFAR-LC's (128, 256·8·8) float32 activations, against 7.3 for NumPy's transposing copy.
"""

from __future__ import annotations

import numpy as np

from . import cblas
from .cblas import ROW_MAJOR, TRANS
from .kernel_cache import njit


@njit(cache=True)
def _transpose(omatcopy, a, at):
    """at (F, N) = aᵀ for C-contiguous a (N, F) and at."""
    N, F = a.shape
    cblas.omatcopy(omatcopy, ROW_MAJOR, TRANS, N, F, cblas.unit(a)[0], a, F, at, N)


def _copy_into(copy, a):
    """copy[...] = a, by ?omatcopy when a is C-contiguous and copy batch-last, of one dtype."""
    blas = cblas.openblas()
    at = copy.transpose(*range(1, copy.ndim), 0) if copy.ndim > 1 else copy
    if (blas is not None and copy.ndim > 1 and copy.size and at.flags.c_contiguous
            and a.flags.c_contiguous and a.dtype == copy.dtype and a.dtype in blas.omatcopy):
        n = a.shape[0]
        _transpose(blas.omatcopy[a.dtype], a.reshape(n, -1), at.reshape(-1, n))
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
