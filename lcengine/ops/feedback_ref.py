"""DFA's fixed random feedback, generated from a seed instead of stored: the NumPy reference.

Direct feedback alignment sends the output error e (N, K) to every hidden layer through a fixed
random matrix B (M, K), M = the layer's number of units. For the paper's ImageNet net the B's of
all layers hold ~348 M numbers — more than the forward weights, and the reason the paper could
not run DFA there. We never store B: each entry is a pure function of (seed, m, k),

    B[m, k] = scale · (2 · u(seed, m·K + k) − 1),
          u = top 24 bits of splitmix64(seed ⊕ index) / 2²⁴

so B is uniform on [−scale, scale), identical on every device and face, and a checkpoint needs
only the seed. The op is

    random_feedback(e, seed, n_units, scale) = e Bᵀ          (N, K) -> (N, M)
"""

from __future__ import annotations

import numpy as np

from .xp import array_module

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)


def splitmix64(z):
    """Sebastiano Vigna's splitmix64 finaliser on a uint64 array (wrapping arithmetic)."""
    z = z + GOLDEN
    z = (z ^ (z >> np.uint64(30))) * MIX1
    z = (z ^ (z >> np.uint64(27))) * MIX2
    return z ^ (z >> np.uint64(31))


def feedback_matrix(seed, rows, n_classes, scale, dtype):
    """B[rows, :] for the given row indices (an int array), as float `dtype`."""
    xp = array_module(rows)
    index = (rows.astype(xp.uint64)[:, None] * np.uint64(n_classes)
             + xp.arange(n_classes, dtype=xp.uint64))
    bits = splitmix64(index ^ np.uint64(seed)) >> np.uint64(40)           # 24 random bits
    u = bits.astype(np.float64) * (1.0 / (1 << 24))                         # [0, 1)
    return (scale * (2.0 * u - 1.0)).astype(dtype)                          # (rows, K)


def random_feedback(e, seed, n_units, scale, block=1 << 14):
    xp = array_module(e)
    out = xp.empty((e.shape[0], n_units), dtype=e.dtype)                    # (N, M)
    for start in range(0, n_units, block):
        rows = xp.arange(start, min(start + block, n_units))
        feedback_rows = feedback_matrix(seed, rows, e.shape[1], scale, e.dtype)
        out[:, start:start + rows.shape[0]] = e @ feedback_rows.T
    return out
