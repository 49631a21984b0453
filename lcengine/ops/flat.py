"""Operands of the fast CPU faces' elementwise ops as 1-D views in one memory order.

An elementwise op does not care about axes, only that its operands line up number for number.
Viewing each as the 1-D run of its memory keeps the LC faces' batch-last activations uncopied.
"""

from __future__ import annotations

import numpy as np


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
            copy[...] = a
            a = copy
        flats.append(a.ravel(order="K"))                   # a view: a is compact in its order
    return flats, result
