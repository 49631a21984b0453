"""Activation ops: the fast CPU face. Same functions as `activation_ref` (the definition).

Each is one parallel Numba pass over the operands' memory, whatever their axis order (`flat`),
where NumPy makes one pass per operator and a temporary for each. `tanh` of float32 is
`tanh_math.tanh32`, a rational function within 4e-7 of tanh that vectorises; NumPy's float32
tanh is a scalar libm call here. float64 keeps NumPy's tanh (the oracles' dtype, not the
training one).
"""

from __future__ import annotations

import numba
import numpy as np

from .cpu.flat import flat_operands
from .cpu.kernel_cache import njit
from .tanh_math import tanh32


@njit(parallel=True, cache=True)
def _tanh32(a, h):
    for e in numba.prange(a.size):
        h[e] = tanh32(a[e])


@njit(parallel=True, cache=True)
def _tanh_backward(dh, h, da):
    for e in numba.prange(dh.size):
        da[e] = dh[e] * (1 - h[e] * h[e])


def tanh(a):
    if not (isinstance(a, np.ndarray) and a.dtype == np.float32):
        return np.tanh(a)
    (a1,), h = flat_operands((a,), "tanh")
    _tanh32(a1, h.ravel(order="K"))
    return h


def tanh_backward(dh, h):
    (dh1, h1), da = flat_operands((dh, h), "tanh_backward")
    _tanh_backward(dh1, h1, da.ravel(order="K"))
    return da
