"""Target-propagation elementwise ops: the fast CPU face.

Same functions and signatures as `targets_ref` (the definition), for arrays of any shape (batch
first) and one float dtype (float32 or float64; mixed inputs are promoted like NumPy would);
results have that dtype.

`tanh_regression` is one fused parallel Numba pass over `targets_math`'s element function (shared
with the CUDA face), 2-8× the reference on CIFAR-LC and ImageNet-LC layer 1 over the runs in
docs/performance.md; its loss is summed in float64 (the reference sums in the input dtype).
`difference_target` of float32 is one fused parallel pass too, its two tanh `tanh_math.tanh32`
(within 4e-7 of tanh): 7-16× the reference on CIFAR-LC and ImageNet-LC layer 1
(`benchmarks/bench_elementwise.py`). In float64 (the oracles' dtype, not the training one) it
stays NumPy in place.
"""

from __future__ import annotations

import numba
import numpy as np

from .cpu.flat import flat_operands
from .cpu.kernel_cache import njit
from .tanh_math import tanh32
from .targets_math import tanh_regression_elem


@njit(parallel=True, cache=True)
def _tanh_regression(h, t, two_over_n, grad):
    loss = 0.0
    for e in numba.prange(h.size):
        sq, grad[e] = tanh_regression_elem(h[e], t[e], two_over_n)
        loss += sq
    return loss


@njit(parallel=True, cache=True)
def _difference_target32(h, a_rec, a_hat_rec, out):
    for e in numba.prange(h.size):
        out[e] = h[e] - tanh32(a_rec[e]) + tanh32(a_hat_rec[e])


def difference_target(h, a_rec, a_hat_rec):
    (h1, r1, hr1), out = flat_operands((h, a_rec, a_hat_rec), "difference_target")
    flat = out.ravel(order="K")                                        # a view of out
    if out.dtype == np.float32:
        _difference_target32(h1, r1, hr1, flat)
        return out
    np.tanh(hr1, out=flat)                                             # g(ĥ_{l+1})
    flat -= np.tanh(r1)                                                #  − g(h_{l+1})
    flat += h1                                                         #  + h_l
    return out


def tanh_regression(h, t):
    (h1, t1), grad = flat_operands((h, t), "tanh_regression")
    n = h.shape[0]
    loss = _tanh_regression(h1, t1, grad.dtype.type(2.0 / n), grad.ravel(order="K"))
    return float(loss) / n, grad
