"""2-D convolution: the fast CPU face (same functions and dtypes as `conv_ref`, the definition).

Letters as in `conv_ref`: N batch, C input channels, H×W input, O output channels, P×Q output,
kh×kw kernel, R = C·kh·kw (one patch), (sh, sw) stride, pads = (top, bottom, left, right).

GEMM on a bounded im2col. For a chunk of n examples the patches are copied once into
cols (R, n·P·Q), row (c, i, j), column (n, p, q) — zeros where a window leaves the input, so no
padded copy of x is made — and each direction is then ONE sgemm/dgemm with K as the (O, R) matrix:

    forward          yᵀ (O, n·P·Q)  = K (O, R) @ cols (R, n·P·Q),            then y = (yᵀ)ᵀ per n
    backward_input   dcols (R, n·P·Q) = Kᵀ (R, O) @ dyᵀ (O, n·P·Q),          then col2im (+=)
    backward_weight  dKᵀ (R, O)     += cols (R, n·P·Q) @ dyᵀᵀ (n·P·Q, O)

The chunk n is the most examples whose cols fit in the layer's own input + output size for the
whole batch (at least one example), so the patch matrix never exceeds about the memory the layer
already holds. im2col / col2im are serial Numba loops (`nogil`, contiguous runs along q, the valid
q range computed once per (j) so the inner loop has no branch); the GEMMs run on NumPy's BLAS with
whatever threads the caller allows (the trainer limits them with threadpoolctl) — this module
starts no threads of its own. Measured in benchmarks/bench_conv.py, figures in docs/performance.md.
Dtypes float32 and float64 (all arrays alike) take this path; anything else falls back to conv_ref.
"""

from __future__ import annotations

import numpy as np

from . import conv_ref
from .cpu.kernel_cache import njit
from .geometry import padded_output_size

_FAST_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


@njit(nogil=True, cache=True)
def _q_range(j, left, sw, Q, W):
    """Output columns q whose input column q·sw + j − left lies in [0, W)."""
    q0 = max(0, (left - j + sw - 1) // sw)
    q1 = min(Q, (W - 1 + left - j) // sw + 1)
    return q0, max(q0, q1)


@njit(nogil=True, cache=True)
def _im2col(x, n0, cols, top, left, sh, sw):
    """cols[c, i, j, n, p, q] = x[n0 + n, c, p·sh + i − top, q·sw + j − left] (0 outside x)."""
    C, kh, kw, nb, P, Q = cols.shape
    H, W = x.shape[2], x.shape[3]
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                q0, q1 = _q_range(j, left, sw, Q, W)
                for n in range(nb):
                    for p in range(P):
                        dst = cols[c, i, j, n, p]
                        h = p * sh + i - top
                        if h < 0 or h >= H:
                            dst[:] = 0
                            continue
                        src = x[n0 + n, c, h]
                        dst[:q0] = 0
                        for q in range(q0, q1):
                            dst[q] = src[q * sw + j - left]
                        dst[q1:] = 0


@njit(nogil=True, cache=True)
def _col2im(cols, dx, n0, top, left, sh, sw):
    """dx[n0 + n, c, p·sh + i − top, q·sw + j − left] += cols[c, i, j, n, p, q] inside dx."""
    C, kh, kw, nb, P, Q = cols.shape
    H, W = dx.shape[2], dx.shape[3]
    for n in range(nb):
        for c in range(C):
            for i in range(kh):
                for j in range(kw):
                    q0, q1 = _q_range(j, left, sw, Q, W)
                    for p in range(P):
                        h = p * sh + i - top
                        if h < 0 or h >= H:
                            continue
                        src = cols[c, i, j, n, p]
                        dst = dx[n0 + n, c, h]
                        for q in range(q0, q1):
                            dst[q * sw + j - left] += src[q]


def _fast(*arrays):
    dt = arrays[0].dtype
    return (all(isinstance(a, np.ndarray) for a in arrays) and dt in _FAST_DTYPES
            and all(a.dtype == dt for a in arrays))


def chunk_size(N, C, H, W, O, P, Q, R):
    """Examples per im2col chunk: cols (R, n·P·Q) within the batch's input + output size."""
    return max(1, min(N, N * (C * H * W + O * P * Q) // max(1, R * P * Q)))


class _Chunks:
    """Reused flat buffers for one call, viewed per chunk of n examples so that the views stay
    contiguous for the last, shorter chunk: cols (C, kh, kw, n, P, Q) and a (O, n, P, Q) array."""

    def __init__(self, dtype, C, kh, kw, nb, O, P, Q):
        self.dims = (C, kh, kw, O, P, Q)
        self.cols = np.empty(C * kh * kw * nb * P * Q, dtype=dtype)
        self.outs = np.empty(O * nb * P * Q, dtype=dtype)

    def views(self, n):
        C, kh, kw, O, P, Q = self.dims
        return (self.cols[:C * kh * kw * n * P * Q].reshape(C, kh, kw, n, P, Q),
                self.outs[:O * n * P * Q].reshape(O, n, P, Q))


def conv_forward(x, K, stride, pads):
    if not _fast(x, K):
        return conv_ref.conv_forward(x, K, stride, pads)
    N, C, H, W = x.shape
    O, Ck, kh, kw = K.shape
    if Ck != C:
        raise ValueError(f"conv_forward: x has {C} channels but K expects {Ck}")
    (sh, sw), (top, bottom, left, right) = stride, pads
    P = padded_output_size(H, kh, sh, top, bottom)
    Q = padded_output_size(W, kw, sw, left, right)
    R = C * kh * kw
    x = np.ascontiguousarray(x)
    Km = np.ascontiguousarray(K).reshape(O, R)
    y = np.empty((N, O, P, Q), dtype=x.dtype)
    nb = chunk_size(N, C, H, W, O, P, Q, R)
    chunks = _Chunks(x.dtype, C, kh, kw, nb, O, P, Q)
    for n0 in range(0, N, nb):
        n = min(nb, N - n0)
        cols, yt = chunks.views(n)                                     # yt: yᵀ of the chunk
        _im2col(x, n0, cols, top, left, sh, sw)
        np.matmul(Km, cols.reshape(R, n * P * Q), out=yt.reshape(O, n * P * Q))
        y[n0:n0 + n] = yt.transpose(1, 0, 2, 3)
    return y


def conv_backward_input(dy, K, in_hw, stride, pads):
    if not _fast(dy, K):
        return conv_ref.conv_backward_input(dy, K, in_hw, stride, pads)
    N, O, P, Q = dy.shape
    Ok, C, kh, kw = K.shape
    if Ok != O:
        raise ValueError(f"conv_backward_input: dy has {O} channels but K produces {Ok}")
    (sh, sw), (top, _, left, _), (H, W) = stride, pads, in_hw
    R = C * kh * kw
    Kt = np.ascontiguousarray(K).reshape(O, R).T                       # (R, O), a view
    dx = np.zeros((N, C, H, W), dtype=dy.dtype)
    nb = chunk_size(N, C, H, W, O, P, Q, R)
    chunks = _Chunks(dy.dtype, C, kh, kw, nb, O, P, Q)
    for n0 in range(0, N, nb):
        n = min(nb, N - n0)
        cols, dyt = chunks.views(n)                                    # dyt: dyᵀ of the chunk
        dyt[...] = dy[n0:n0 + n].transpose(1, 0, 2, 3)
        np.matmul(Kt, dyt.reshape(O, n * P * Q), out=cols.reshape(R, n * P * Q))
        _col2im(cols, dx, n0, top, left, sh, sw)
    return dx


def conv_backward_weight(x, dy, kernel, stride, pads):
    if not _fast(x, dy):
        return conv_ref.conv_backward_weight(x, dy, kernel, stride, pads)
    N, C, H, W = x.shape
    Nd, O, P, Q = dy.shape
    if Nd != N:
        raise ValueError(f"conv_backward_weight: dy has batch {Nd} but x has {N}")
    (kh, kw), (sh, sw), (top, _, left, _) = kernel, stride, pads
    R = C * kh * kw
    x = np.ascontiguousarray(x)
    dK = np.zeros((O, C, kh, kw), dtype=x.dtype)
    dKt = dK.reshape(O, R).T                                           # (R, O), a view
    nb = chunk_size(N, C, H, W, O, P, Q, R)
    chunks = _Chunks(x.dtype, C, kh, kw, nb, O, P, Q)
    part = np.empty((R, O), dtype=x.dtype)
    for n0 in range(0, N, nb):
        n = min(nb, N - n0)
        cols, dyt = chunks.views(n)
        _im2col(x, n0, cols, top, left, sh, sw)
        dyt[...] = dy[n0:n0 + n].transpose(1, 0, 2, 3)
        m = n * P * Q
        np.matmul(cols.reshape(R, m), dyt.reshape(O, m).T, out=part)
        dKt += part
    return dK
