"""Locally-connected 2-D layer: the fast CPU face (same functions and dtypes as `lc_ref`).

Letters as in `lc_ref`: N batch, C input channels, H×W input, O output channels, P×Q output,
kh×kw kernel, K = C·kh·kw, (sh, sw) stride, pads = (top, bottom, left, right), Hp×Wp padded input.

Every output location (p, q) is one small matrix product with its own weights W[p, q] (O, K):

    forward          yᵀ[:, p, q] (O, N) = W[p, q] (O, K) @ patchᵀ(p, q) (K, N)
    backward_input   patchᵀ-grad (K, N) = W[p, q]ᵀ (K, O) @ dyᵀ[:, p, q] (O, N), scatter-added
    backward_weight  dW[p, q] (O, K)    = dyᵀ[:, p, q] (O, N) @ patch(p, q) (N, K)

How it is made fast (measured in `benchmarks/bench_lc.py`, figures in docs/performance.md):
  * the input is re-laid once per call as xᵀ (C, Hp, Wp, N), batch innermost and zero-padded, so
    a patch row (c, i) of location (p, q) is ONE contiguous run xᵀ[c, p·sh+i, q·sw : q·sw+kw, :]
    of kw·N numbers: gathering patchᵀ (K, N) is C·kh memcpy's, never an element-wise gather;
  * patches are gathered a segment of one output row at a time into a reused per-thread buffer
    (at most Q·K·N numbers: never the whole patch array), and each segment is one batched BLAS
    call (`np.matmul` over the Q locations, which calls sgemm/dgemm per location);
  * the weights are used in their public layout (a reshape view, no copy); dy and y travel as
    yᵀ (O, P, Q, N), whose (O, N) slice at (p, q) BLAS reads/writes in place (leading dim P·Q·N);
  * the two layout changes (x → xᵀ, yᵀ ↔ y) are blocked Numba transposes, parallel over cores;
  * threads: the output locations are split evenly between one Python worker thread per core,
    each running BLAS single-threaded (OpenBLAS `openblas_set_num_threads_local`) — numba's
    parallel loops and the BLAS workers never run at the same time, so nothing oversubscribes.
    When NumPy's BLAS is not OpenBLAS the rows run on the calling thread with BLAS's own threads.
Dtypes float32 and float64 (x and W alike) take this path; anything else falls back to `lc_ref`.
"""

from __future__ import annotations

import ctypes
import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from . import lc_ref

_FAST_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_TILE = 32        # transpose tile edge


# ----------------------------------------------------------------------------- Numba kernels

@numba.njit(parallel=True, cache=True)
def _to_chwn_padded(x, top, left, Hp, Wp):
    """x (N, C, H, W), any strides -> xᵀ (C, Hp, Wp, N), zero border."""
    N, C, H, W = x.shape
    xt = np.empty((C, Hp, Wp, N), dtype=x.dtype)
    for r in numba.prange(C * Hp):
        c, hp = r // Hp, r % Hp
        h = hp - top
        if h < 0 or h >= H:
            xt[c, hp] = 0
            continue
        for wp in range(0, left):
            xt[c, hp, wp] = 0
        for wp in range(left + W, Wp):
            xt[c, hp, wp] = 0
        for w0 in range(0, W, _TILE):
            w1 = min(w0 + _TILE, W)
            for n0 in range(0, N, _TILE):
                n1 = min(n0 + _TILE, N)
                for w in range(w0, w1):
                    for n in range(n0, n1):
                        xt[c, hp, left + w, n] = x[n, c, h, w]
    return xt


@numba.njit(parallel=True, cache=True)
def _transpose2d(a, out):
    """out (S, R) = a (R, S)ᵀ, tiled; a may have any strides."""
    R, S = a.shape
    nr = (R + _TILE - 1) // _TILE
    ns = (S + _TILE - 1) // _TILE
    for t in numba.prange(nr * ns):
        r0 = (t // ns) * _TILE
        s0 = (t % ns) * _TILE
        r1 = min(r0 + _TILE, R)
        s1 = min(s0 + _TILE, S)
        for s in range(s0, s1):
            for r in range(r0, r1):
                out[s, r] = a[r, s]


@numba.njit(parallel=True, cache=True)
def _crop_to_nchw(parts, offsets, top, left, H, W):
    """dx (N, C, H, W) = Σ_parts part[c, top + h - offset, left + w, n] (rows a part covers)."""
    C, _, _, N = parts[0].shape
    dx = np.zeros((N, C, H, W), dtype=parts[0].dtype)
    for r in numba.prange(C * H):
        c, h = r // H, r % H
        for k in range(len(parts)):
            part = parts[k]
            hb = top + h - offsets[k]
            if hb < 0 or hb >= part.shape[1]:
                continue
            for w0 in range(0, W, _TILE):
                w1 = min(w0 + _TILE, W)
                for n0 in range(0, N, _TILE):
                    n1 = min(n0 + _TILE, N)
                    for n in range(n0, n1):
                        for w in range(w0, w1):
                            dx[n, c, h, w] += part[c, hb, left + w, n]
    return dx


@numba.njit(nogil=True, cache=True)
def _gather_row(xt, buf, p, q0, q1, kh, kw, sh, sw):
    """buf[q - q0, c, i, j, :] = xᵀ[c, p·sh + i, q·sw + j, :] — C·kh contiguous runs per location."""
    C = xt.shape[0]
    for q in range(q0, q1):
        for c in range(C):
            for i in range(kh):
                src = xt[c, p * sh + i, q * sw:q * sw + kw]
                dst = buf[q - q0, c, i]
                for j in range(kw):
                    for n in range(src.shape[1]):
                        dst[j, n] = src[j, n]


@numba.njit(nogil=True, cache=True)
def _scatter_add_row(buf, dxt, p, q0, q1, kh, kw, sh, sw, h_offset):
    """dxᵀ[c, p·sh + i - h_offset, q·sw + j, :] += buf[q - q0, c, i, j, :]."""
    C = dxt.shape[0]
    for q in range(q0, q1):
        for c in range(C):
            for i in range(kh):
                dst = dxt[c, p * sh + i - h_offset, q * sw:q * sw + kw]
                src = buf[q - q0, c, i]
                for j in range(kw):
                    for n in range(src.shape[1]):
                        dst[j, n] += src[j, n]


# ----------------------------------------------------------------------------- threads

def _openblas_local_threads():
    """OpenBLAS's per-thread thread-count setter of the library NumPy loaded, or None."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            fn = ctypes.CDLL(path).openblas_set_num_threads_local
        except (OSError, AttributeError):
            continue
        fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
        return fn
    return None


_POOL = None
_WORKERS = 1


def _pool():
    """(executor or None, worker count): one BLAS-single-threaded worker per core."""
    global _POOL, _WORKERS
    if _POOL is None:
        setter = _openblas_local_threads()
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        if setter is None or cores < 2:
            _POOL, _WORKERS = False, 1
        else:
            _POOL = ThreadPoolExecutor(cores, thread_name_prefix="lc_cpu",
                                       initializer=setter, initargs=(1,))
            _WORKERS = cores
    return (_POOL or None), _WORKERS


def _segments(P, Q, parts):
    """Split the P·Q locations into `parts` even ranges, each a list of (p, q0, q1) row pieces."""
    total = P * Q
    out = []
    for k in range(parts):
        a, b = total * k // parts, total * (k + 1) // parts
        segs = []
        while a < b:
            p, q0 = divmod(a, Q)
            q1 = min(Q, q0 + (b - a))
            segs.append((p, q0, q1))
            a += q1 - q0
        out.append(segs)
    return [s for s in out if s]


def _run(work, P, Q):
    """Run work(segments) for every part of the locations, on the pool when there is one."""
    pool, workers = _pool()
    parts = _segments(P, Q, workers)
    if pool is None or len(parts) == 1:
        return [work(s) for s in parts]
    return list(pool.map(work, parts))


# ----------------------------------------------------------------------------- the three ops

def _fast(*arrays):
    dt = arrays[0].dtype
    return dt in _FAST_DTYPES and all(a.dtype == dt for a in arrays)


def _weights_view(W):
    P, Q, O, C, kh, kw = W.shape
    return np.ascontiguousarray(W).reshape(P, Q, O, C * kh * kw)   # a view for the layer's W


def _dy_t(dy):
    """dy (N, O, P, Q) -> dyᵀ (O, P, Q, N)."""
    N, O, P, Q = dy.shape
    dyt = np.empty((O, P, Q, N), dtype=dy.dtype)
    _transpose2d(dy.reshape(N, O * P * Q), dyt.reshape(O * P * Q, N))
    return dyt


def lc_forward(x, W, stride, pads):
    if not (isinstance(x, np.ndarray) and _fast(x, W)):
        return lc_ref.lc_forward(x, W, stride, pads)
    N, C, H, Wd = x.shape
    P, Q, O, Cw, kh, kw = W.shape
    if Cw != C:
        raise ValueError(f"lc_forward: x has {C} channels but W expects {Cw}")
    sh, sw = stride
    top, bottom, left, right = pads
    K = C * kh * kw
    xt = _to_chwn_padded(x, top, left, H + top + bottom, Wd + left + right)
    Wr = _weights_view(W)
    yt = np.empty((O, P, Q, N), dtype=x.dtype)                        # yᵀ

    def work(segs):
        buf = np.empty((Q, C, kh, kw, N), dtype=x.dtype)
        for p, q0, q1 in segs:
            _gather_row(xt, buf, p, q0, q1, kh, kw, sh, sw)
            np.matmul(Wr[p, q0:q1], buf[:q1 - q0].reshape(q1 - q0, K, N),
                      out=yt[:, p, q0:q1].transpose(1, 0, 2))      # (q, O, N)

    _run(work, P, Q)
    y = np.empty((N, O, P, Q), dtype=x.dtype)
    _transpose2d(yt.reshape(O * P * Q, N), y.reshape(N, O * P * Q))
    return y


def lc_backward_input(dy, W, in_hw, stride, pads):
    if not (isinstance(dy, np.ndarray) and _fast(dy, W)):
        return lc_ref.lc_backward_input(dy, W, in_hw, stride, pads)
    N, O, P, Q = dy.shape
    _, _, Ow, C, kh, kw = W.shape
    if Ow != O:
        raise ValueError(f"lc_backward_input: dy has {O} channels but W produces {Ow}")
    sh, sw = stride
    top, bottom, left, right = pads
    H, Wd = in_hw
    Wp = Wd + left + right
    K = C * kh * kw
    Wr = _weights_view(W)
    dyt = _dy_t(dy)

    def work(segs):
        p_first, p_last = segs[0][0], segs[-1][0]
        h0 = p_first * sh                                              # rows this part touches
        dxt = np.zeros((C, (p_last - p_first) * sh + kh, Wp, N), dtype=dy.dtype)
        buf = np.empty((Q, C, kh, kw, N), dtype=dy.dtype)
        for p, q0, q1 in segs:
            np.matmul(Wr[p, q0:q1].transpose(0, 2, 1), dyt[:, p, q0:q1].transpose(1, 0, 2),
                      out=buf[:q1 - q0].reshape(q1 - q0, K, N))       # (q, K, N)
            _scatter_add_row(buf, dxt, p, q0, q1, kh, kw, sh, sw, h0)
        return dxt, h0

    done = _run(work, P, Q)
    parts = numba.typed.List([d for d, _ in done])
    offsets = np.array([h0 for _, h0 in done], dtype=np.int64)
    return _crop_to_nchw(parts, offsets, top, left, H, Wd)


def lc_backward_weight(x, dy, kernel, stride, pads):
    if not (isinstance(x, np.ndarray) and _fast(x, dy)):
        return lc_ref.lc_backward_weight(x, dy, kernel, stride, pads)
    N, C, H, Wd = x.shape
    _, O, P, Q = dy.shape
    kh, kw = kernel
    sh, sw = stride
    top, bottom, left, right = pads
    K = C * kh * kw
    xt = _to_chwn_padded(x, top, left, H + top + bottom, Wd + left + right)
    dyt = _dy_t(dy)
    dW = np.empty((P, Q, O, C, kh, kw), dtype=x.dtype)
    dWr = dW.reshape(P, Q, O, K)

    def work(segs):
        buf = np.empty((Q, C, kh, kw, N), dtype=x.dtype)
        for p, q0, q1 in segs:
            _gather_row(xt, buf, p, q0, q1, kh, kw, sh, sw)
            np.matmul(dyt[:, p, q0:q1].transpose(1, 0, 2),
                      buf[:q1 - q0].reshape(q1 - q0, K, N).transpose(0, 2, 1),
                      out=dWr[p, q0:q1])                               # (q, O, K)

    _run(work, P, Q)
    return dW
