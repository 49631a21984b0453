"""Adam's in-place update: the fast CPU face (Numba, one fused parallel pass over p, g, m, v).

Same signature and equation as `adam_ref.adam_update` (the definition):
    m ← β1 m + (1 − β1) g;   v ← β2 v + (1 − β2) g²;   p ← p − step · m / (√v + ε̂)
p, g, m, v: C-contiguous arrays of one shape and one dtype (float32 or float64), updated in place.
The scalars are rounded to that dtype first (1 − β computed in double), as NumPy does with the
reference's Python floats, so float32 parameters get float32 arithmetic.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .cpu.kernel_cache import njit


@njit(cache=True, inline="always")
def adam_element(p, g, m, v, e, step, beta1, one_m_beta1, beta2, one_m_beta2, eps_hat):
    """Element e of the update, on 1-D arrays (also run by the LC weight gradient's fused
    Adam, `cpu/lc`, on each location's gradient while it is in the cache)."""
    ge = g[e]
    me = beta1 * m[e] + one_m_beta1 * ge
    ve = beta2 * v[e] + one_m_beta2 * (ge * ge)
    m[e] = me
    v[e] = ve
    p[e] -= step * me / (math.sqrt(ve) + eps_hat)


@njit(parallel=True, cache=True)
def _adam(p, g, m, v, step, beta1, one_m_beta1, beta2, one_m_beta2, eps_hat):
    for e in numba.prange(p.size):
        adam_element(p, g, m, v, e, step, beta1, one_m_beta1, beta2, one_m_beta2, eps_hat)


def scalars(dtype, step, beta1, beta2, eps_hat):
    """(step, β1, 1 − β1, β2, 1 − β2, ε̂) in `dtype`, as `adam_element` takes them."""
    s = np.dtype(dtype).type
    return (s(step), s(beta1), s(1.0 - float(beta1)), s(beta2), s(1.0 - float(beta2)),
            s(eps_hat))


def check(op, p, named):
    """One-line errors for what the fused passes need: one dtype (float32 or float64) and
    shape as p, C-contiguous (updated in place)."""
    for name, a in named:
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{op}: {name} must be a numpy.ndarray, not {type(a).__name__}")
        if a.dtype != p.dtype or a.shape != p.shape:
            raise ValueError(f"{op}: {name} is {a.dtype}{a.shape}, p is {p.dtype}{p.shape}")
        if not a.flags.c_contiguous:
            raise ValueError(f"{op}: {name} must be C-contiguous (it is updated in place)")
    if p.dtype not in (np.float32, np.float64):
        raise TypeError(f"{op}: p must be float32 or float64, got {p.dtype}")


def adam_update(p, g, m, v, step, beta1, beta2, eps_hat):
    check("adam_update", p, (("p", p), ("g", g), ("m", m), ("v", v)))
    _adam(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1),
          *scalars(p.dtype, step, beta1, beta2, eps_hat))
