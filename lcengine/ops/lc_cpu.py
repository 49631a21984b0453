"""Locally-connected 2-D layer: the fast CPU face (same functions and dtypes as `lc_ref`).

The ops are `cpu/lc.py`'s: one Numba parallel region per op over the output locations, each
location's product on OpenBLAS's ?gemm or `cpu/simd.py`'s kernels; the plain batched-`np.matmul`
path where the CPU subsystem's probes (`cpu/probes.py`) find no OpenBLAS build to call.
"""

from .cpu.lc import lc_backward_input, lc_backward_weight, lc_backward_weight_adam, lc_forward

__all__ = ["lc_forward", "lc_backward_input", "lc_backward_weight", "lc_backward_weight_adam"]
