"""Locally-connected layer: the CUDA face (typed launchers for `kernels/lc.cu`).

Same functions and signatures as `lc_ref` (the definition; letters and layouts there):
x (N, C, H, W), W (P, Q, O, C, kh, kw), y (N, O, P, Q); float32 or float64, C-contiguous CuPy
arrays, every array of one call in one dtype. Each direction is one launch of a per-location tiled
GEMM (see the header of kernels/lc.cu): grid (column tiles, row tiles, P·Q), 256 threads.
A bad argument raises a one-line TypeError/ValueError naming the op and the argument.
"""

from __future__ import annotations

import cupy
import numpy as np

from .adam_cuda import adam_update
from .cuda_common import DTYPE_SUFFIX, check_array, int_tuple, kernel_function, window_args

KERNEL_FILE = "lc.cu"
TILE, THREADS = 64, 256                    # must match TILE and THREADS in kernels/lc.cu
MAX_LOCATIONS = 65535                      # gridDim.z: one block column per output location


def _tiles(n: int) -> int:
    return (n + TILE - 1) // TILE


def _geometry(op, C, H, W, O, P, Q, kh, kw, stride, pads):
    """The kernels' int32 geometry arguments after N, once every window is checked to fit."""
    sh, sw, top, left = window_args(op, H, W, P, Q, kh, kw, stride, pads)
    if P * Q > MAX_LOCATIONS:
        raise ValueError(f"{op}: {P}×{Q} = {P * Q} output locations; the kernels launch one grid "
                         f"layer per location, at most {MAX_LOCATIONS}")
    return tuple(np.int32(v) for v in (C, H, W, O, P, Q, kh, kw, sh, sw, top, left))


def _launch(name, dtype, grid, args, geometry, N):
    kernel = kernel_function(KERNEL_FILE, f"{name}_{DTYPE_SUFFIX[dtype]}")
    kernel(grid, (THREADS,), args + (np.int32(N),) + geometry)


def lc_forward(x, W, stride, pads):
    op = "lc_forward"
    check_array(op, "x", x, 4)
    check_array(op, "W", W, 6, x.dtype)
    N, C, H, Wd = x.shape
    P, Q, O, Cw, kh, kw = W.shape
    if Cw != C:
        raise ValueError(f"{op}: W has {Cw} input channels (W.shape[3]) but x has {C}")
    geometry = _geometry(op, C, H, Wd, O, P, Q, kh, kw, stride, pads)
    if N * O * P * Q == 0 or C * kh * kw == 0:
        return cupy.zeros((N, O, P, Q), dtype=x.dtype)
    y = cupy.empty((N, O, P, Q), dtype=x.dtype)
    _launch(op, x.dtype, (_tiles(O), _tiles(N), P * Q), (x, W, y), geometry, N)
    return y


def lc_backward_input(dy, W, in_hw, stride, pads):
    op = "lc_backward_input"
    check_array(op, "dy", dy, 4)
    check_array(op, "W", W, 6, dy.dtype)
    P, Q, O, C, kh, kw = W.shape
    N = dy.shape[0]
    if dy.shape[1:] != (O, P, Q):
        raise ValueError(f"{op}: dy has shape {dy.shape}, expected (N, {O}, {P}, {Q}) from W")
    H, Wd = int_tuple(op, "in_hw", in_hw, 2, 1)
    geometry = _geometry(op, C, H, Wd, O, P, Q, kh, kw, stride, pads)
    dx = cupy.zeros((N, C, H, Wd), dtype=dy.dtype)        # the kernel scatter-adds into it
    if N * C * P * Q * O * kh * kw == 0:
        return dx
    _launch(op, dy.dtype, (_tiles(C * kh * kw), _tiles(N), P * Q), (dy, W, dx), geometry, N)
    return dx


def lc_backward_weight(x, dy, kernel, stride, pads):
    op = "lc_backward_weight"
    check_array(op, "x", x, 4)
    check_array(op, "dy", dy, 4, x.dtype)
    N, C, H, Wd = x.shape
    Ndy, O, P, Q = dy.shape
    if Ndy != N:
        raise ValueError(f"{op}: dy has batch {Ndy} but x has {N}")
    kh, kw = int_tuple(op, "kernel", kernel, 2, 1)
    geometry = _geometry(op, C, H, Wd, O, P, Q, kh, kw, stride, pads)
    if N * O * P * Q * C == 0:
        return cupy.zeros((P, Q, O, C, kh, kw), dtype=x.dtype)
    dW = cupy.empty((P, Q, O, C, kh, kw), dtype=x.dtype)
    _launch(op, x.dtype, (_tiles(C * kh * kw), _tiles(O), P * Q), (x, dy, dW), geometry, N)
    return dW


def lc_backward_weight_adam(x, dy, kernel, stride, pads, W, m, v, step, beta1, beta2, eps_hat):
    """The composition `lc_ref` defines, of this face's weight gradient and Adam's kernel (not
    fused on the GPU yet: its memory is fast enough that no one has measured the need)."""
    adam_update(W, lc_backward_weight(x, dy, kernel, stride, pads), m, v, step, beta1, beta2,
                eps_hat)
