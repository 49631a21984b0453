"""DFA's seeded random feedback e Bᵀ: the CUDA face (a typed launcher for
`kernels/random_feedback.cu`; the definition is `feedback_ref`)."""

from __future__ import annotations

import cupy
import numpy as np

from .cuda_common import DTYPE_SUFFIX, check_array, kernel_function

KERNEL_FILE = "random_feedback.cu"
THREADS = 128                              # along the units m
N_TILE = 16                                # examples per block row; must match the .cu file


def random_feedback(e, seed, n_units, scale):
    op = "random_feedback"
    check_array(op, "e", e, 2)
    n_batch, n_classes = e.shape
    if n_units < 1:
        raise ValueError(f"{op}: n_units must be ≥ 1, got {n_units}")
    out = cupy.empty((n_batch, int(n_units)), dtype=e.dtype)
    check_array(op, "out", out, 2)
    grid = ((int(n_units) + THREADS - 1) // THREADS, (n_batch + N_TILE - 1) // N_TILE)
    kernel = kernel_function(KERNEL_FILE, f"random_feedback_{DTYPE_SUFFIX[e.dtype]}")
    kernel(grid, (THREADS,), (e, out, np.int32(n_batch), np.int32(n_classes), np.int32(n_units),
                              np.uint64(seed), np.float64(scale)))
    return out
