"""Target-propagation element math, written once for every fast face (definition: `targets_ref`).

    difference_target_elem(h, a_rec, a_hat_rec)  ĥ = h − tanh(a_rec) + tanh(a_hat_rec)   (eq. 2)
    tanh_regression_elem(h, t, two_over_n)        ((h − t)², dL/da = (2/N)(h − t)(1 − h²))
                                                  for L = (1/N) Σ (h − t)², h = tanh(a)

Each is a Numba `@njit` function of scalars. The CPU face (`targets_cpu`) calls them from its
parallel loops; the CUDA face (`targets_cuda`) compiles the same Python (`.py_func`) as
`numba.cuda` device functions. Only `math` functions that both targets support are used.
"""

from __future__ import annotations

import math

from .cpu.kernel_cache import njit


@njit(cache=True)
def difference_target_elem(h, a_rec, a_hat_rec):
    return h - math.tanh(a_rec) + math.tanh(a_hat_rec)


@njit(cache=True)
def tanh_regression_elem(h, t, two_over_n):
    """The loss term (h − t)² and the gradient element (2/N)(h − t)(1 − h²)."""
    diff = h - t
    return diff * diff, two_over_n * diff * (1 - h * h)
