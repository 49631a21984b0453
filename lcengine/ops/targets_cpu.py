"""Target-propagation elementwise ops: the fast CPU face.

Same functions and signatures as `targets_ref` (the definition), for arrays of any shape (batch
first) and one float dtype (float32 or float64; mixed inputs are promoted like NumPy would);
results have that dtype.

`tanh_regression` is one fused parallel Numba pass over `targets_math`'s element function (shared
with the CUDA face), 5-8× the reference on the paper's layers; its loss is accumulated in float64
(the reference sums in the input dtype). `difference_target` is NumPy in place: its two tanh per
element are scalar libm calls in Numba but SIMD in NumPy, which measured 11-16× faster than the
fused Numba loop (`benchmarks/bench_elementwise.py`).
"""

from __future__ import annotations

import numba
import numpy as np

from .targets_math import tanh_regression_elem


@numba.njit(parallel=True, cache=True)
def _tanh_regression(h, t, two_over_n, grad):
    loss = 0.0
    for e in numba.prange(h.size):
        sq, grad[e] = tanh_regression_elem(h[e], t[e], two_over_n)
        loss += sq
    return loss


def _flat(arrays, what):
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


def difference_target(h, a_rec, a_hat_rec):
    (h1, r1, hr1), out = _flat((h, a_rec, a_hat_rec), "difference_target")
    flat = out.ravel(order="K")                                        # a view of out
    np.tanh(hr1, out=flat)                                             # g(ĥ_{l+1})
    flat -= np.tanh(r1)                                                #  − g(h_{l+1})
    flat += h1                                                         #  + h_l
    return out


def tanh_regression(h, t):
    (h1, t1), grad = _flat((h, t), "tanh_regression")
    n = h.shape[0]
    loss = _tanh_regression(h1, t1, grad.dtype.type(2.0 / n), grad.ravel(order="K"))
    return float(loss) / n, grad
