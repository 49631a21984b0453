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
    """Contiguous 1-D views of same-shape arrays in their common float dtype."""
    shape = arrays[0].shape
    for a in arrays[1:]:
        if a.shape != shape:
            raise ValueError(f"{what}: shapes differ: {[x.shape for x in arrays]}")
    dtype = np.result_type(*arrays)
    if dtype not in (np.float32, np.float64):
        dtype = np.dtype(np.float64)
    return [np.ascontiguousarray(a, dtype=dtype).reshape(-1) for a in arrays], shape, dtype


def difference_target(h, a_rec, a_hat_rec):
    (h1, r1, hr1), shape, dtype = _flat((h, a_rec, a_hat_rec), "difference_target")
    out = np.tanh(hr1)                                                  # g(ĥ_{l+1})
    out -= np.tanh(r1)                                                  #  − g(h_{l+1})
    out += h1                                                           #  + h_l
    return out.reshape(shape)


def tanh_regression(h, t):
    (h1, t1), shape, dtype = _flat((h, t), "tanh_regression")
    n = shape[0]
    grad = np.empty(h1.size, dtype=dtype)
    loss = _tanh_regression(h1, t1, dtype.type(2.0 / n), grad)
    return float(loss) / n, grad.reshape(shape)
