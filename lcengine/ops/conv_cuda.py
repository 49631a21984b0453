"""2-D convolution: the CUDA face (cuBLAS GEMMs on a bounded im2col from `kernels/conv.cu`).

Same functions and signatures as `conv_ref` (the definition; letters and layouts there):
x (N, C, H, W), K (O, C, kh, kw), y (N, O, P, Q); float32 or float64, C-contiguous CuPy arrays,
every array of one call in one dtype. The formulation is the CPU face's (`conv_cpu`, whose
docstring has the equations): per chunk of examples, one im2col launch, one `cupy.matmul`
(cuBLAS; TF32 only if the user enabled it in CuPy), and for backward_input one col2im launch (a
deterministic gather, no atomics). The chunk rule is `conv_cpu.chunk_size`: the patch matrix
stays within the layer's own input + output size. A bad argument raises a one-line
TypeError/ValueError naming the op and the argument.
"""

from __future__ import annotations

import cupy
import numpy as np

from .conv_cpu import chunk_size
from .cuda_common import (DTYPE_SUFFIX, INT32_MAX, check_array, int_tuple, kernel_function,
                          window_args)
from .geometry import padded_output_size

KERNEL_FILE = "conv.cu"
THREADS = 256
MAX_BLOCKS = 65535                          # grid-stride loops cover the rest


def _launch(name, dtype, total, a, out, n0, nb, C, H, W, P, Q, kh, kw, sh, sw, top, left):
    kernel = kernel_function(KERNEL_FILE, f"{name}_{DTYPE_SUFFIX[dtype]}")
    blocks = max(1, min(MAX_BLOCKS, (total + THREADS - 1) // THREADS))
    kernel((blocks,), (THREADS,), (a, out) + tuple(
        np.int32(v) for v in (n0, nb, C, H, W, P, Q, kh, kw, sh, sw, top, left)))


def _chunks(op, N, C, H, W, O, P, Q, kh, kw):
    """Examples per chunk, with the patch matrix's size checked for int32 indexing."""
    nb = chunk_size(N, C, H, W, O, P, Q, C * kh * kw)
    if C * kh * kw * P * Q > INT32_MAX:
        raise ValueError(f"{op}: one example's patch matrix has {C * kh * kw * P * Q} elements; "
                         "the kernels index with int32")
    return min(nb, INT32_MAX // max(1, C * kh * kw * P * Q))


def _cols(x, n0, n, P, Q, kh, kw, sh, sw, top, left):
    """im2col of images n0..n0+n−1 of x: (C·kh·kw, n·P·Q)."""
    C, H, W = x.shape[1:]
    cols = cupy.empty((C * kh * kw, n * P * Q), dtype=x.dtype)
    _launch("conv_im2col", x.dtype, cols.size, x, cols, n0, n, C, H, W, P, Q, kh, kw, sh, sw,
            top, left)
    return cols


def _dy_t(dy, n0, n):
    """dyᵀ of images n0..n0+n−1: (O, n·P·Q)."""
    O, P, Q = dy.shape[1:]
    return cupy.ascontiguousarray(dy[n0:n0 + n].transpose(1, 0, 2, 3)).reshape(O, n * P * Q)


def conv_forward(x, K, stride, pads):
    op = "conv_forward"
    check_array(op, "x", x, 4)
    check_array(op, "K", K, 4, x.dtype)
    N, C, H, W = x.shape
    O, Ck, kh, kw = K.shape
    if Ck != C:
        raise ValueError(f"{op}: K has {Ck} input channels (K.shape[1]) but x has {C}")
    sh, sw = int_tuple(op, "stride", stride, 2, 1)
    top, bottom, left, right = int_tuple(op, "pads", pads, 4, 0)
    P = padded_output_size(H, kh, sh, top, bottom)
    Q = padded_output_size(W, kw, sw, left, right)
    if P < 1 or Q < 1:
        raise ValueError(f"{op}: a {kh}×{kw} kernel does not fit the {H}×{W} input padded by "
                         f"{(top, bottom, left, right)}")
    R = C * kh * kw
    y = cupy.empty((N, O, P, Q), dtype=x.dtype)
    if y.size == 0:
        return y
    nb = _chunks(op, N, C, H, W, O, P, Q, kh, kw)
    Km = K.reshape(O, R)
    for n0 in range(0, N, nb):
        n = min(nb, N - n0)
        cols = _cols(x, n0, n, P, Q, kh, kw, sh, sw, top, left)
        yt = cupy.matmul(Km, cols).reshape(O, n, P, Q)                    # yᵀ of the chunk
        y[n0:n0 + n] = yt.transpose(1, 0, 2, 3)
    return y


def conv_backward_input(dy, K, in_hw, stride, pads):
    op = "conv_backward_input"
    check_array(op, "dy", dy, 4)
    check_array(op, "K", K, 4, dy.dtype)
    N, O, P, Q = dy.shape
    Ok, C, kh, kw = K.shape
    if Ok != O:
        raise ValueError(f"{op}: dy has {O} channels but K produces {Ok} (K.shape[0])")
    H, W = int_tuple(op, "in_hw", in_hw, 2, 1)
    sh, sw, top, left = window_args(op, H, W, P, Q, kh, kw, stride, pads)
    R = C * kh * kw
    dx = cupy.empty((N, C, H, W), dtype=dy.dtype)      # col2im writes every element once
    if N * O * P * Q * R == 0:
        dx.fill(0)
        return dx
    nb = _chunks(op, N, C, H, W, O, P, Q, kh, kw)
    Kt = K.reshape(O, R).T
    for n0 in range(0, N, nb):
        n = min(nb, N - n0)
        cols = cupy.matmul(Kt, _dy_t(dy, n0, n))                            # (R, n·P·Q)
        _launch("conv_col2im", dy.dtype, n * C * H * W, cols, dx, n0, n, C, H, W, P, Q, kh, kw,
                sh, sw, top, left)
    return dx


def conv_backward_weight(x, dy, kernel, stride, pads):
    op = "conv_backward_weight"
    check_array(op, "x", x, 4)
    check_array(op, "dy", dy, 4, x.dtype)
    N, C, H, W = x.shape
    Nd, O, P, Q = dy.shape
    if Nd != N:
        raise ValueError(f"{op}: dy has batch {Nd} but x has {N}")
    kh, kw = int_tuple(op, "kernel", kernel, 2, 1)
    sh, sw, top, left = window_args(op, H, W, P, Q, kh, kw, stride, pads)
    R = C * kh * kw
    dK = cupy.zeros((O, R), dtype=x.dtype)
    if N * O * P * Q * R == 0:
        return dK.reshape(O, C, kh, kw)
    nb = _chunks(op, N, C, H, W, O, P, Q, kh, kw)
    for n0 in range(0, N, nb):
        n = min(nb, N - n0)
        cols = _cols(x, n0, n, P, Q, kh, kw, sh, sw, top, left)
        dK += cupy.matmul(_dy_t(dy, n0, n), cols.T)
    return dK.reshape(O, C, kh, kw)
