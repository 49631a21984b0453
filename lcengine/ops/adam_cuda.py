"""Adam's in-place update: the CUDA face (a typed launcher for `kernels/adam.cu`).

Same signature as `adam_ref.adam_update` (the definition): p, g, m, v are C-contiguous CuPy arrays
of one shape and one dtype (float32 or float64); the scalars are passed in that dtype, with
1 − β1 and 1 − β2 computed in double first, as NumPy does with the reference's Python floats.
"""

from __future__ import annotations

import numpy as np

from .cuda_common import DTYPE_SUFFIX, check_array, kernel_function

KERNEL_FILE = "adam.cu"
THREADS = 256
MAX_BLOCKS = 4096                          # grid-stride loop beyond this


def adam_update(p, g, m, v, step, beta1, beta2, eps_hat):
    op = "adam_update"
    check_array(op, "p", p, getattr(p, "ndim", 1), int32_index=False)
    for name, a in (("g", g), ("m", m), ("v", v)):
        check_array(op, name, a, p.ndim, p.dtype, int32_index=False)
        if a.shape != p.shape:
            raise ValueError(f"{op}: {name} has shape {a.shape}, p has {p.shape}")
    n = p.size
    if n == 0:
        return
    scalar = p.dtype.type
    blocks = min((n + THREADS - 1) // THREADS, MAX_BLOCKS)
    kernel = kernel_function(KERNEL_FILE, f"adam_update_{DTYPE_SUFFIX[p.dtype]}")
    kernel((blocks,), (THREADS,), (p, g, m, v, np.int64(n), scalar(step), scalar(beta1),
                                   scalar(1.0 - float(beta1)), scalar(beta2),
                                   scalar(1.0 - float(beta2)), scalar(eps_hat)))
