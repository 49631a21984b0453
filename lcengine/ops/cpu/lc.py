"""Locally-connected 2-D layer: the fast CPU face's kernels (`lc_cpu` exports the ops).

Letters as in `lc_ref`: N batch, C input channels, H×W input, O output channels, P×Q output,
L = P·Q output locations, kh×kw kernel, K = C·kh·kw, (sh, sw) stride, pads = (top, bottom, left,
right).

Every output location l = (p, q) is one small matrix product with its own weights W[l] (O, K):

    forward          yᵀ[:, l] (O, N)  = W[l] (O, K) @ patchᵀ(l) (K, N)
    backward_input   patchᵀ-grad (K, N) = W[l]ᵀ (K, O) @ dyᵀ[:, l] (O, N), scatter-added
    backward_weight  dW[l] (O, K)     = dyᵀ[:, l] (O, N) @ patch(l) (N, K)

Memory order. The ops accept x and dy in either order: batch first, or batch last, i.e. a
(N, C, H, W) view of (C, H, W, N) memory. They return y and dx batch last, and NumPy's
elementwise ops (bias, tanh, the rules' products) keep that order, so between LC layers the
activations and their gradients stay batch-last and no layout change is left in the op (for
MNIST-LC layer 1's forward, 0.37 → 0.25 ms; docs/performance.md). Only a net's
input arrives batch-first and is transposed.

How it is made fast (measured in `benchmarks/bench_lc.py`, figures in docs/performance.md):
  * batch innermost: with xᵀ (C, H, W, N) the patch column (c, i, j) of location (p, q) is ONE
    contiguous run xᵀ[c, p·sh+i-top, q·sw+j-left, :] of N numbers (zeros outside the input):
    gathering patchᵀ (K, N) is K short copies, never an element-wise gather; its gradient is
    scatter-added the same way into dxᵀ. A batch-first x is transposed, by each thread for the
    input rows its locations touch;
  * one location's patch at a time, into a per-thread (K, N) buffer: never a patch array;
  * the weights are used in their public layout (a reshape view, no copy); y is computed as yᵀ
    (O, L, N), whose (O, N) slice at l BLAS writes in place (leading dimension L·N), and dyᵀ's
    (O, N) slice at l is read in place the same way. A batch-first dy is transposed a block of
    _BLOCK locations at a time into a per-thread (_BLOCK, O, N) buffer;
  * forward with a tiny K (≤ 16: MNIST-LC layer 1, K = 9), where each location's product is too
    thin for BLAS, uses a direct Numba kernel instead (`_direct_forward`): the sum over k
    unrolled, vectorised over the batch, the weights broadcast; same layouts;
  * where BLAS's packing of both operands costs more than it saves (each W[l] is used once per
    call, by N = 32-128 columns), the products run on register-blocked kernels that read the
    operands in place (`simd`), as `product_kernel` picks by shape: ImageNet-LC's forward (its 361
    MB of layer-3 weights then cross memory once, not three times), MNIST-LC layer 1's gradients;
  * where the weights stream from main memory (ImageNet-LC at batch 32 does 16 FLOPs per byte
    of W), each location's W[l] is brought into the cache ahead of the product that needs it:
    read in address order before BLAS's input-gradient product (`simd.warm`), prefetched during
    the previous location's forward product (`simd.gemm_nn`'s `then`), as `_cache_plan` decides;
    a weight gradient larger than the last-level cache is written past it (`simd.stream`);
  * training takes the weight gradient fused into Adam (`lc_backward_weight_adam`): each
    location's dW[l] goes from the per-thread buffer straight into the update of W[l], m[l],
    v[l], so no dW is written out and read back (ImageNet-LC layer 3: 92 against 133 ms);
  * the whole op is ONE Numba parallel region: the locations are split evenly between the
    threads (Numba's OpenMP pool), and each thread transposes what it needs, calls OpenBLAS's
    cblas ?gemm and ?omatcopy itself (`cblas`, BLAS single-threaded for the op, `_parallel`)
    and writes its share of the result. Idle threads sleep (`host_threads`), so each region
    costs a wake-up, 50-90 µs here; a Python thread pool cost as much per dispatch, and an op
    would need three or four (docs/performance.md).
That needs the SciPy OpenBLAS build under NumPy (NumPy's own wheels), which exports those
symbols, and `simd`'s kernels to compile and check out here: the probes `cblas.openblas()` and
`simd.usable()`. Where either fails (another BLAS such as Accelerate or MKL, an LLVM that
rejects the kernels), or the fast face is switched off (LCENGINE_FAST_CPU=0, `probes`), the op
runs on the calling thread, one output row at a time, as batched `np.matmul` calls (`_numpy_*`),
and BLAS threads itself: the same numbers, about half the speed.
Dtypes float32 and float64 (x and W alike) take these paths; anything else falls back to `lc_ref`.
"""

from __future__ import annotations

import contextlib
import functools
import os

import numba
import numpy as np

from .. import adam_cpu, lc_ref
from ..adam_cpu import adam_element
from . import cblas, simd, tuning
from .cblas import COL_MAJOR, NO_TRANS, ROW_MAJOR, TRANS
from .kernel_cache import njit

_FAST_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_BLOCK = 16       # locations whose dyᵀ one thread holds at a time


def _cache_plan(direction, kernel, locations, location_bytes, patch_bytes):
    """How a direction's products should move the weights (`locations` W[l] of
    `location_bytes` each) or the weight gradient through the cache (see the module docstring);
    measured on the paper's layers (docs/performance.md):
      * the input gradient on BLAS: OpenBLAS packs W[l]ᵀ in an order the hardware prefetcher
        does not follow, so W[l] read in address order first, while it fits in the L2 (512 KiB
        per core here), is then packed from there (ImageNet-LC at batch 32: layer 1 74 → 48 ms,
        layer 3 100 → 83; MNIST-LC and CIFAR-LC unchanged);
      * the forward and the input gradient on `simd`: prefetching the next location's weights
        pays only when the layer's weights are more than the last-level cache holds and two
        locations' weights and a patch fit in half the L2 (ImageNet-LC layer 1: forward 49.0 →
        43.5 ms, the input gradient's products 34-37 → 28-31); otherwise the prefetches cost
        more than they save (forward: MNIST-LC layer 2 +0.35 ms, CIFAR-LC layer 1 +0.6,
        ImageNet-LC layer 3 +7; input gradient: ImageNet-LC layer 3 +10);
      * the weight gradient: each dW[l] computed into a buffer that stays in the cache and
        streamed out (`simd.stream`) when the whole dW is more than the last-level cache holds:
        it would go out to memory anyway, and ordinary stores first read every line they write
        (whole ops, medians of 12 calls alternated with the plain stores, two to five runs:
        ImageNet-LC at batch 32 layer 3 2-6 ms faster, of 79-82, layer 1 0.6-4 of 47-54;
        CIFAR-LC layers 2-3 at batch 128 0-1.5 of 35-47)."""
    weights = locations * location_bytes
    if direction == "backward_weight":
        return weights > tuning.LAST_LEVEL_BYTES
    if kernel == "blas":
        return direction == "backward_input" and location_bytes <= tuning.L2_BYTES
    return (kernel == "simd" and weights > tuning.LAST_LEVEL_BYTES
            and 2 * location_bytes + patch_bytes <= tuning.L2_BYTES // 2)


# ----------------------------------------------------------------------------- per location

@njit(nogil=True, cache=True)
def _bounds(total, parts, t):
    """Part t of [0, total) cut into `parts` even ranges."""
    return total * t // parts, total * (t + 1) // parts


@njit(nogil=True, cache=True)
def _gather(xt, pt, p, q, top, left, sh, sw):
    """pt[c, i, j, :] = xᵀ[c, p·sh + i - top, q·sw + j - left, :] (zeros outside xᵀ). xᵀ may be
    a slab of the input's rows from row h0: then `top` is the padding plus h0."""
    C, H, W, N = xt.shape
    kh, kw = pt.shape[1], pt.shape[2]
    for c in range(C):
        for i in range(kh):
            h = p * sh + i - top
            for j in range(kw):
                w = q * sw + j - left
                dst = pt[c, i, j]
                if 0 <= h < H and 0 <= w < W:
                    src = xt[c, h, w]
                    for n in range(N):
                        dst[n] = src[n]
                else:
                    dst[:] = 0


@njit(nogil=True, cache=True)
def _scatter_add(pt, dxt, slab, h0, e0, e1, p, q, top, left, sh, sw):
    """dxᵀ[c, h, q·sw + j - left, :] += pt[c, i, j, :] with h = p·sh + i - top, for the positions
    inside dxᵀ; rows h outside [e0, e1) go to slab[c, h - h0] instead (a part's rows that
    another part also touches; slab = dxᵀ, h0 = e0 = e1 = 0 sends every row to dxᵀ)."""
    C, H, W, N = dxt.shape
    kh, kw = pt.shape[1], pt.shape[2]
    for c in range(C):
        for i in range(kh):
            h = p * sh + i - top
            if h < 0 or h >= H:
                continue
            rows = dxt[c, h] if e0 <= h < e1 else slab[c, h - h0]
            for j in range(kw):
                w = q * sw + j - left
                if w < 0 or w >= W:
                    continue
                src, dst = pt[c, i, j], rows[w]
                for n in range(N):
                    dst[n] += src[n]


# ----------------------------------------------------------------------------- small K: direct

_NC = 64             # images per chunk of the direct kernel (a compile-time constant)


@functools.lru_cache(maxsize=None)
def _direct_forward(C, kh, kw):
    """The forward for one (C, kh, kw) with K = C·kh·kw ≤ tuning.DIRECT_FORWARD_MAX_K:
    `_forward` with this kernel on each part of the locations,
    yᵀ[o, l, n] = Σ_k W[l, o, k] · patch[k, n], into yᵀ (O, L, the batch padded to whole
    chunks; `lc_forward` returns the view of the first N, and the elementwise ops after it make
    compact batch-last arrays). Per location and chunk of _NC
    images the patch is copied into a (K, _NC) buffer (zeros past the batch and outside the
    input); with K a compile-time constant (a closure variable, so one compilation per shape,
    not cached on disk) the sum over k unrolls and LLVM vectorises the loop over the chunk's
    images, each weight a broadcast scalar: no per-location GEMM call and no packing. Inner
    loops index 1-D slices from 0: with an offset index (n0 + n) Numba's negative-index
    wraparound turned the vector loads and stores into gathers and scatters (2.5× slower). It
    is not one more kernel of `_forward`: called through a wrapper that took the ?gemm pointer
    too, it ran 30-50 % slower (measured; the cause is not known)."""
    K = C * kh * kw

    @njit(nogil=True)
    def gather(xt, pt, p, q, n0, top, left, sh, sw):
        """pt[(c, i, j), n] = xᵀ[c, p·sh + i - top, q·sw + j - left, n0 + n] (0 outside)."""
        H, W, N = xt.shape[1], xt.shape[2], xt.shape[3]
        m = min(_NC, N - n0)
        for c in range(C):
            for i in range(kh):
                h = p * sh + i - top
                for j in range(kw):
                    w = q * sw + j - left
                    row = pt[(c * kh + i) * kw + j]
                    if 0 <= h < H and 0 <= w < W:
                        src = xt[c, h, w, n0:n0 + m]
                        for n in range(m):
                            row[n] = src[n]
                        row[m:] = 0
                    else:
                        row[:] = 0

    @njit(nogil=True, fastmath={"contract"})
    def forward(xt, Wr, yt, Q, top, left, sh, sw, l0, l1):
        O, N = Wr.shape[1], xt.shape[3]
        pt = np.empty((K, _NC), dtype=xt.dtype)
        for l in range(l0, l1):
            wl = Wr[l]
            for n0 in range(0, N, _NC):
                gather(xt, pt, l // Q, l % Q, n0, top, left, sh, sw)
                for o in range(O):
                    dst = yt[o, l, n0:n0 + _NC]
                    for n in range(_NC):
                        s = wl[o, 0] * pt[0, n]
                        for k in range(1, K):
                            s += wl[o, k] * pt[k, n]
                        dst[n] = s

    @njit(parallel=True)
    def op(omatcopy, src, batch_last, N, Wr, sh, sw, top, left, Q, parts):
        L, O = Wr.shape[0], Wr.shape[1]
        Np = -(-N // _NC) * _NC
        yt = np.empty((O, L, Np), dtype=src.dtype)
        one = cblas.unit(src)[0]
        for t in numba.prange(parts):
            l0, l1, h0, xt = _part_input(omatcopy, one, src, batch_last, L, Q, sh, top, kh, parts,
                                         t)
            forward(xt, Wr, yt, Q, top + h0, left, sh, sw, l0, l1)
        return yt

    return op


# ----------------------------------------------------------------------------- the whole ops
# Each op is one parallel region (a thread wake-up each, see host_threads): every part of the
# locations transposes the input rows and the dy it needs itself (if they came batch-first), and
# writes its own share of the result.

@njit(nogil=True, cache=True)
def _rows(l0, l1, Q, sh, top, kh, H):
    """The input rows [h0, h1) that the windows of locations [l0, l1) touch."""
    return max((l0 // Q) * sh - top, 0), min(((l1 - 1) // Q) * sh - top + kh, H)


@njit(nogil=True, cache=True)
def _x_rows(omatcopy, one, x, h0, h1):
    """xᵀ (C, h1 - h0, W, N) of x's rows [h0, h1): one ?omatcopy per channel."""
    N, C, H, Wd = x.shape
    xt = np.empty((C, h1 - h0, Wd, N), dtype=x.dtype)
    if h1 > h0:
        for c in range(C):
            cblas.omatcopy(omatcopy, ROW_MAJOR, TRANS, N, (h1 - h0) * Wd, one, x[0, c, h0],
                           C * H * Wd, xt[c], N)
    return xt


@njit(nogil=True, cache=True)
def _part_input(omatcopy, one, src, batch_last, L, Q, sh, top, kh, parts, t):
    """Part t's locations [l0, l1), the first input row h0 of the xᵀ it gathers from, and that
    xᵀ: the whole input if it came batch-last (src is then xᵀ itself), else the rows the part's
    windows touch, transposed from src = x."""
    l0, l1 = _bounds(L, parts, t)
    if batch_last:
        return l0, l1, 0, src
    h0, h1 = _rows(l0, l1, Q, sh, top, kh, src.shape[2])
    return l0, l1, h0, _x_rows(omatcopy, one, src, h0, h1)


@njit(nogil=True, cache=True)
def _dy_block(omatcopy, one, dsrc, batch_last, dyt, lb, nb):
    """dyᵀ of locations [lb, lb + nb) as a (nb, O, N) view: block[j] is dyᵀ[:, lb + j]. If dy
    came batch-last, dsrc is dyᵀ (O, L, N) and this is a view of it; else dsrc is dy (N, O, L),
    and the block is transposed into the per-thread buffer dyt[j, o, :] = dy[:, o, lb + j]."""
    if batch_last:
        return dsrc[:, lb:lb + nb].transpose((1, 0, 2))
    N, O, L = dsrc.shape
    for o in range(O):
        cblas.omatcopy(omatcopy, ROW_MAJOR, TRANS, N, nb, one, dsrc[0, o, lb:], O * L, dyt[0, o],
                       O * N)
    return dyt[:nb]


@njit(nogil=True, cache=True)
def _ld(a):
    """The leading dimension (row stride, in numbers) of a 2-D array with contiguous rows."""
    return a.strides[0] // a.itemsize


@njit(parallel=True, cache=True)
def _forward(gemm, own, prefetch, omatcopy, src, batch_last, N, Wr, kh, kw, sh, sw, top, left, Q,
             parts):
    """yᵀ (O, L, N): per location, gather the patch and yᵀ[:, l] = W[l] @ patchᵀ, which ?gemm
    (or `simd.gemm_nn` if `own`, prefetching W[l + 1] if `prefetch`) writes in place as the
    (O, N) slice (leading dimension L·N)."""
    C = src.shape[0] if batch_last else src.shape[1]
    L, O, K = Wr.shape
    yt = np.empty((O, L, N), dtype=src.dtype)
    one, zero = cblas.unit(src)
    for t in numba.prange(parts):
        l0, l1, h0, xt = _part_input(omatcopy, one, src, batch_last, L, Q, sh, top, kh, parts, t)
        pt = np.empty((C, kh, kw, N), dtype=src.dtype)
        patch = pt.reshape((K, N))
        for l in range(l0, l1):
            _gather(xt, pt, l // Q, l % Q, top + h0, left, sh, sw)
            if own and prefetch and l + 1 < l1:
                simd.gemm_nn(Wr[l], patch, yt[:, l], Wr[l + 1])
            elif own:
                simd.gemm_nn(Wr[l], patch, yt[:, l])
            else:
                cblas.gemm(gemm, ROW_MAJOR, NO_TRANS, NO_TRANS, O, N, K, one, Wr[l], K, pt, N,
                           zero, yt[0, l], L * N)
    return yt


@njit(nogil=True, cache=True)
def _add_to(dst, src):
    """dst += src, in a function compiled without `parallel`, where it is not a parallel region
    of its own (`cblas.unit`)."""
    dst += src


@njit(parallel=True, cache=True)
def _backward_input(gemm, own, ahead, omatcopy, dsrc, batch_last, N, Wr, C, kh, kw, H, Wd, sh,
                    sw, top, left, Q, parts):
    """dxᵀ (C, H, W, N): per location, patchᵀ-grad = W[l]ᵀ @ dyᵀ[:, l] by ?gemm (or by
    `simd.gemm_tn` if `own`), scatter-added; if `ahead` (`_cache_plan`), W[l] is first read into
    the cache in address order for ?gemm, or `gemm_tn` prefetches W[l + 1]. Each part zeroes
    and scatter-adds into the input rows only its locations touch, [e0, e1), in dxᵀ itself, and
    into a slab of its own for the few rows next to them that a neighbouring part touches too;
    after the region those rows are summed into dxᵀ, and rows no window touches zeroed. (Every
    row through a slab cost ImageNet-LC layer 1 a 19 MB copy per call.)"""
    L, O = Wr.shape[0], Wr.shape[1]
    K = C * kh * kw
    h0, h1 = np.empty(parts, dtype=np.int64), np.empty(parts, dtype=np.int64)
    for t in range(parts):
        h0[t], h1[t] = _rows(*_bounds(L, parts, t), Q, sh, top, kh, H)
    e0, e1 = h0.copy(), h1.copy()                    # the rows only part t touches: [e0, e1)
    for t in range(parts):
        if t > 0:
            e0[t] = max(h0[t], h1[t - 1])
        if t < parts - 1:
            e1[t] = max(e0[t], min(h1[t], h0[t + 1]))
    rows = 0
    for t in range(parts):
        rows = max(rows, h1[t] - h0[t])
    slabs = np.empty((parts, C, rows, Wd, N), dtype=dsrc.dtype)
    dxt = np.empty((C, H, Wd, N), dtype=dsrc.dtype)
    one, zero = cblas.unit(dsrc)
    for t in numba.prange(parts):
        l0, l1 = _bounds(L, parts, t)
        slab = slabs[t]
        dxt[:, e0[t]:e1[t]] = 0
        slab[:, :e0[t] - h0[t]] = 0
        slab[:, e1[t] - h0[t]:h1[t] - h0[t]] = 0
        pt = np.empty((C, kh, kw, N), dtype=dsrc.dtype)
        patch = pt.reshape((K, N))
        dyt = np.empty((_BLOCK, O, N), dtype=dsrc.dtype)
        for lb in range(l0, l1, _BLOCK):
            nb = min(_BLOCK, l1 - lb)
            block = _dy_block(omatcopy, one, dsrc, batch_last, dyt, lb, nb)
            for j in range(nb):
                l = lb + j
                if own and ahead and l + 1 < l1:
                    simd.gemm_tn(Wr[l], block[j], patch, Wr[l + 1])
                elif own:
                    simd.gemm_tn(Wr[l], block[j], patch)
                else:
                    if ahead:
                        simd.warm(Wr[l])
                    cblas.gemm(gemm, ROW_MAJOR, TRANS, NO_TRANS, K, N, O, one, Wr[l], K,
                               block[j], _ld(block[j]), zero, pt, N)
                _scatter_add(pt, dxt, slab, h0[t], e0[t], e1[t], l // Q, l % Q, top, left, sh,
                             sw)
    for h in range(H):
        first, touching = 0, 0
        for t in range(parts):
            if h0[t] <= h < h1[t]:
                if touching == 0:
                    first = t
                else:
                    _add_to(slabs[first, :, h - h0[first]], slabs[t, :, h - h0[t]])
                touching += 1
        if touching == 0:
            dxt[:, h] = 0
        elif touching > 1:
            dxt[:, h] = slabs[first, :, h - h0[first]]
    return dxt


#: what `_backward_weight` does with each location's dW[l]
_STORE, _STREAM, _ADAM = 0, 1, 2


@njit(parallel=True, cache=True)
def _backward_weight(gemm, own, sink, adam, W, m, v, omatcopy, src, x_batch_last, dsrc,
                     dy_batch_last, N, kh, kw, sh, sw, top, left, Q, parts):
    """dW (L, O, K): per location, dW[l] = dyᵀ[:, l] @ patch(l): by ?gemm as the column-major
    (K, O) product patchᵀ @ dy, which is the same memory (OpenBLAS ran that orientation 1.5-3×
    faster on these thin shapes), or if `own` by `simd.gemm_nt`, sums over the batch axis that
    both operands have contiguous. `sink`: _STORE writes dW[l] in place; _STREAM computes it
    into a per-thread buffer that `simd.stream` copies out past the cache (`_cache_plan`);
    _ADAM computes it into that buffer and applies Adam (`adam`: `adam_cpu.scalars`) to W[l],
    m[l], v[l] (each (L, O, K)) from it, and no dW is made (an empty one is returned)."""
    C = src.shape[0] if x_batch_last else src.shape[1]
    O, L = (dsrc.shape[0], dsrc.shape[1]) if dy_batch_last else (dsrc.shape[1], dsrc.shape[2])
    K = C * kh * kw
    dW = np.empty((0 if sink == _ADAM else L, O, K), dtype=src.dtype)
    one, zero = cblas.unit(src)
    step, beta1, one_m_beta1, beta2, one_m_beta2, eps_hat = adam
    for t in numba.prange(parts):
        l0, l1, h0, xt = _part_input(omatcopy, one, src, x_batch_last, L, Q, sh, top, kh, parts,
                                     t)
        pt = np.empty((C, kh, kw, N), dtype=src.dtype)
        patch = pt.reshape((K, N))
        dyt = np.empty((_BLOCK, O, N), dtype=src.dtype)
        hot = np.empty((0, 0) if sink == _STORE else (O, K), dtype=src.dtype)
        g = hot.reshape(-1)
        for lb in range(l0, l1, _BLOCK):
            nb = min(_BLOCK, l1 - lb)
            block = _dy_block(omatcopy, one, dsrc, dy_batch_last, dyt, lb, nb)
            for j in range(nb):
                l = lb + j
                _gather(xt, pt, l // Q, l % Q, top + h0, left, sh, sw)
                out = dW[l] if sink == _STORE else hot
                if own:
                    simd.gemm_nt(block[j], patch, out)
                else:
                    cblas.gemm(gemm, COL_MAJOR, TRANS, NO_TRANS, K, O, N, one, pt, N, block[j],
                               _ld(block[j]), zero, out, K)
                if sink == _STREAM:
                    simd.stream(hot, dW[l])
                elif sink == _ADAM:
                    Wl, ml, vl = W[l].reshape(-1), m[l].reshape(-1), v[l].reshape(-1)
                    for e in range(g.size):
                        adam_element(Wl, g, ml, vl, e, step, beta1, one_m_beta1, beta2,
                                     one_m_beta2, eps_hat)
    return dW


# ----------------------------------------------------------------------------- the public ops

_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _parts(blas_threads):
    """Parts to split an op into: the threads the caller lets BLAS and Numba have, one per core."""
    return max(1, min(blas_threads, numba.get_num_threads(), _CORES))


def _parallel(op, needs_simd=True):
    """Run `op(blas, parts, ...)` with as many parts (threads) as the caller lets BLAS and Numba
    have (`--threads`, or threadpoolctl's limits), at most one per core, and BLAS single-threaded
    inside them. OpenBLAS's thread count is one process-wide setting (its `_local` setter is not
    thread-local in the SciPy build), so it is lowered for the op and restored after it; two LC
    ops running at once in different threads would race on it. Where a probe fails (no usable
    OpenBLAS build; the `simd` kernels, if `needs_simd`, do not work here) or the fast face is
    off: op(None, 1, ...), the op's plain NumPy path, with BLAS threading itself."""

    @functools.wraps(op)
    def call(*args):
        blas = cblas.openblas()
        if blas is None or (needs_simd and not simd.usable()):
            return op(None, 1, *args)
        threads = blas.get_threads()
        parts = _parts(threads)
        if threads == 1:
            return op(blas, parts, *args)
        blas.set_threads(1)
        try:
            return op(blas, parts, *args)
        finally:
            blas.set_threads(threads)

    return call


PRODUCTS = ("simd", "blas")
_forced = None          # set by `forced_products`


@contextlib.contextmanager
def forced_products(kind):
    """Inside the block every op's per-location products run on `kind` ("simd" or "blas"),
    whatever `product_kernel` would pick: for the tests of both paths and the benchmark's A/B
    (`bench_lc.py --products`). Not thread-safe: one setting for the process."""
    global _forced
    if kind not in PRODUCTS:
        raise ValueError(f"forced_products: {kind!r} is not one of {', '.join(PRODUCTS)}")
    before, _forced = _forced, kind
    try:
        yield
    finally:
        _forced = before


def product_kernel(direction, K, N, itemsize) -> str:
    """What runs a direction's per-location products for K = C·kh·kw, batch N and numbers of
    `itemsize` bytes (with the OpenBLAS build; else batched np.matmul): "direct" (the forward's
    `_direct_forward`), "simd" (`simd`'s kernels) or "blas" (?gemm). Picked where each was faster,
    measured on every LC layer of the paper's nets (docs/performance.md):
      * the direct forward for a tiny K (MNIST-LC layer 1);
      * `simd` for the forward while one location's patch (K, N) stays in the L2 cache
        (MNIST-LC layer 2, CIFAR-LC layer 1, ImageNet-LC's; not CIFAR-LC layers 2-3, where
        BLAS's packing pays); for the input gradient (`gemm_tn`, W[l] read in address order,
        the patch's gradient updated in the cache) for a patch of up to 128 KiB, or 256 KiB when
        the batch is as thin as 32 float32 (MNIST-LC and CIFAR-LC layer 1, ImageNet-LC's at
        batch 32: 20-32 % faster than BLAS on its layers 3 and 5-7; at batch
        64-128 ImageNet-LC's larger patches lost 5-30 %); for the
        weight gradient, a sum over the batch, with a small K and a batch of at least 64
        (MNIST-LC and CIFAR-LC layer 1);
      * BLAS for the rest.
    `forced_products` overrides it."""
    if _forced is not None:
        return _forced
    if direction == "forward":
        if K <= tuning.DIRECT_FORWARD_MAX_K:
            return "direct"
        own = K * N * itemsize <= tuning.SIMD_FORWARD_MAX_PATCH_BYTES
    elif direction == "backward_input":
        patch = K * N * itemsize
        own = patch <= tuning.SIMD_INPUT_GRADIENT_MAX_PATCH_BYTES or (
            N * itemsize <= tuning.THIN_BATCH_MAX_BYTES
            and patch <= tuning.SIMD_FORWARD_MAX_PATCH_BYTES)
    else:
        own = (K <= tuning.SIMD_WEIGHT_GRADIENT_MAX_K
               and N >= tuning.SIMD_WEIGHT_GRADIENT_MIN_BATCH)
    return "simd" if own else "blas"


def _fast(*arrays):
    dt = arrays[0].dtype
    return all(isinstance(a, np.ndarray) for a in arrays) and dt in _FAST_DTYPES and all(
        a.dtype == dt for a in arrays)


def _weights(W):
    """W (P, Q, O, C, kh, kw) as Wr (L, O, K): a view of the layer's contiguous weights."""
    P, Q, O, C, kh, kw = W.shape
    return np.ascontiguousarray(W).reshape(P * Q, O, C * kh * kw)


def _batch_axis_last(a):
    """The view of a with its batch axis moved last (not np.moveaxis: 0.3 µs against 5)."""
    return a.transpose(*range(1, a.ndim), 0)


def _batch_first_view(at):
    """The (N, ...) view of batch-last memory aᵀ (..., N): what the ops return."""
    return at.transpose(at.ndim - 1, *range(at.ndim - 1))


def is_batch_last(a) -> bool:
    """Whether a (N, ...) is a view of batch-last memory, the order the ops return."""
    return _batch_axis_last(a).flags.c_contiguous


def batch_last(a):
    """a's values as a view of batch-last memory: a itself if it is one, else a copy. For callers
    that feed the ops arrays of their own (benchmarks, tests) in the order training gives them."""
    return _batch_first_view(_batch_last(a))


def _memory(a):
    """(a's memory as a C-contiguous array, batch_last): aᵀ, the batch axis moved last, when a is
    a view of such memory (what these ops return, and what NumPy's elementwise ops keep); else a
    itself, made contiguous."""
    if is_batch_last(a):
        return _batch_axis_last(a), True
    return np.ascontiguousarray(a), False


@_parallel
def lc_forward(blas, parts, x, W, stride, pads):
    if not _fast(x, W):
        return lc_ref.lc_forward(x, W, stride, pads)
    N, C, H, Wd = x.shape
    P, Q, O, Cw, kh, kw = W.shape
    if Cw != C:
        raise ValueError(f"lc_forward: x has {C} channels but W expects {Cw}")
    Wr, top, left = _weights(W), pads[0], pads[2]
    if blas is None:
        return _numpy_forward(x, Wr, kh, kw, *stride, top, left, P, Q)
    src, batch_last = _memory(x)
    parts = min(parts, P * Q)
    kernel = product_kernel("forward", C * kh * kw, N, x.itemsize)
    if kernel == "direct":
        yt = _direct_forward(C, kh, kw)(blas.omatcopy[x.dtype], src, batch_last, N, Wr, *stride,
                                        top, left, Q, parts)[:, :, :N]
    else:
        prefetch = _cache_plan("forward", kernel, P * Q, Wr[0].nbytes,
                               C * kh * kw * N * x.itemsize)
        yt = _forward(blas.gemm[x.dtype], kernel == "simd", prefetch, blas.omatcopy[x.dtype], src,
                      batch_last, N, Wr, kh, kw, *stride, top, left, Q, parts)
    return _batch_first_view(yt.reshape(O, P, Q, N))


@_parallel
def lc_backward_input(blas, parts, dy, W, in_hw, stride, pads):
    if not _fast(dy, W):
        return lc_ref.lc_backward_input(dy, W, in_hw, stride, pads)
    N, O, P, Q = dy.shape
    _, _, Ow, C, kh, kw = W.shape
    if Ow != O:
        raise ValueError(f"lc_backward_input: dy has {O} channels but W produces {Ow}")
    if W.shape[:2] != (P, Q):       # the kernels index W by dy's locations, unchecked
        raise ValueError(f"lc_backward_input: dy has {P}x{Q} locations but W has "
                         f"{W.shape[0]}x{W.shape[1]}")
    Wr = _weights(W)
    if blas is None:
        return _numpy_backward_input(dy, Wr, C, kh, kw, *in_hw, *stride, pads[0], pads[2])
    dsrc, batch_last = _locations(dy)
    K = C * kh * kw
    kernel = product_kernel("backward_input", K, N, dy.itemsize)
    ahead = _cache_plan("backward_input", kernel, P * Q, Wr[0].nbytes, K * N * dy.itemsize)
    return _batch_first_view(_backward_input(
        blas.gemm[dy.dtype], kernel == "simd", ahead, blas.omatcopy[dy.dtype], dsrc, batch_last,
        N, Wr, C, kh, kw, *in_hw, *stride, pads[0], pads[2], Q, min(parts, P * Q)))


@_parallel
def lc_backward_weight(blas, parts, x, dy, kernel, stride, pads):
    if not _fast(x, dy):
        return lc_ref.lc_backward_weight(x, dy, kernel, stride, pads)
    _check_batch("lc_backward_weight", x, dy)
    if blas is None:
        dW = _numpy_backward_weight(x, dy, *kernel, *stride, pads[0], pads[2])
    else:
        dW = _weight_gradient(blas, parts, x, dy, kernel, stride, pads)
    return dW.reshape(*dy.shape[2:], dy.shape[1], x.shape[1], *kernel)


@_parallel
def lc_backward_weight_adam(blas, parts, x, dy, kernel, stride, pads, W, m, v, step, beta1,
                            beta2, eps_hat):
    """`lc_ref`'s composition in one pass: each location's gradient goes from a buffer in the
    cache straight into Adam's update, never out to memory and back (what that saves:
    docs/performance.md)."""
    if not _fast(x, dy, W):
        return lc_ref.lc_backward_weight_adam(x, dy, kernel, stride, pads, W, m, v, step, beta1,
                                              beta2, eps_hat)
    _check_batch("lc_backward_weight_adam", x, dy)
    P, Q, O = dy.shape[2], dy.shape[3], dy.shape[1]
    if W.shape != (P, Q, O, x.shape[1], *kernel):
        raise ValueError(f"lc_backward_weight_adam: W is {W.shape}, the gradient of x {x.shape} "
                         f"and dy {dy.shape} is {(P, Q, O, x.shape[1], *kernel)}")
    adam_cpu.check("lc_backward_weight_adam", W, (("W", W), ("m", m), ("v", v)))
    if blas is None:
        dW = _numpy_backward_weight(x, dy, *kernel, *stride, pads[0], pads[2])
        return adam_cpu.adam_update(W, dW.reshape(W.shape), m, v, step, beta1, beta2, eps_hat)
    state = [a.reshape(P * Q, O, -1) for a in (W, m, v)]
    _weight_gradient(blas, parts, x, dy, kernel, stride, pads, *state,
                     adam_cpu.scalars(W.dtype, step, beta1, beta2, eps_hat))


def _check_batch(op, x, dy):
    if dy.shape[0] != x.shape[0]:            # the kernels take N from x, unchecked
        raise ValueError(f"{op}: x has {x.shape[0]} images but dy has {dy.shape[0]}")


def _weight_gradient(blas, parts, x, dy, kernel, stride, pads, W=None, m=None, v=None,
                     adam=None):
    """`_backward_weight` called for dW (L, O, K), or with Adam's scalars `adam` to update W, m,
    v (each (L, O, K)) instead."""
    src, x_batch_last = _memory(x)
    dsrc, dy_batch_last = _locations(dy)
    N, C = x.shape[:2]
    O, P, Q = dy.shape[1:]
    K = C * kernel[0] * kernel[1]
    products = product_kernel("backward_weight", K, N, x.itemsize)
    if adam is not None:
        sink = _ADAM
    else:
        stream = _cache_plan("backward_weight", products, P * Q, O * K * x.itemsize, 0)
        sink = _STREAM if stream else _STORE
        W = m = v = np.empty((0, O, K), dtype=x.dtype)
        adam = adam_cpu.scalars(x.dtype, 0, 0, 0, 0)
    return _backward_weight(blas.gemm[x.dtype], products == "simd", sink, adam, W, m, v,
                            blas.omatcopy[x.dtype], src, x_batch_last, dsrc, dy_batch_last, N,
                            *kernel, *stride, pads[0], pads[2], Q, min(parts, P * Q))


def _locations(dy):
    """`_memory` of dy (N, O, P, Q) with the locations merged: dyᵀ (O, L, N) or dy (N, O, L)."""
    dsrc, batch_last = _memory(dy)
    N, O, P, Q = dy.shape
    return dsrc.reshape((O, P * Q, N) if batch_last else (N, O, P * Q)), batch_last


# ----------------------------------------------------------------------------- another BLAS

@njit(nogil=True, cache=True)
def _gather_row(xt, buf, p, top, left, sh, sw):
    for q in range(buf.shape[0]):
        _gather(xt, buf[q], p, q, top, left, sh, sw)


@njit(nogil=True, cache=True)
def _scatter_add_row(buf, dxt, p, top, left, sh, sw):
    for q in range(buf.shape[0]):
        _scatter_add(buf[q], dxt, dxt, 0, 0, 0, p, q, top, left, sh, sw)


def _batch_last(a):
    """aᵀ, batch axis last: a view when a is batch-last memory, else a copy."""
    return np.ascontiguousarray(_batch_axis_last(a))


def _numpy_forward(x, Wr, kh, kw, sh, sw, top, left, P, Q):
    N, C = x.shape[:2]
    O, K = Wr.shape[1:]
    xt, buf = _batch_last(x), np.empty((Q, C, kh, kw, N), dtype=x.dtype)
    yt = np.empty((O, P, Q, N), dtype=x.dtype)
    for p in range(P):
        _gather_row(xt, buf, p, top, left, sh, sw)
        np.matmul(Wr[p * Q:(p + 1) * Q], buf.reshape(Q, K, N), out=yt[:, p].transpose(1, 0, 2))
    return _batch_first_view(yt)


def _numpy_backward_input(dy, Wr, C, kh, kw, H, Wd, sh, sw, top, left):
    N, O, P, Q = dy.shape
    dyt, buf = _batch_last(dy), np.empty((Q, C, kh, kw, N), dtype=dy.dtype)
    dxt = np.zeros((C, H, Wd, N), dtype=dy.dtype)
    for p in range(P):
        np.matmul(Wr[p * Q:(p + 1) * Q].transpose(0, 2, 1), dyt[:, p].transpose(1, 0, 2),
                  out=buf.reshape(Q, -1, N))
        _scatter_add_row(buf, dxt, p, top, left, sh, sw)
    return _batch_first_view(dxt)


def _numpy_backward_weight(x, dy, kh, kw, sh, sw, top, left):
    N, C = x.shape[:2]
    O, P, Q = dy.shape[1:]
    K = C * kh * kw
    xt, buf = _batch_last(x), np.empty((Q, C, kh, kw, N), dtype=x.dtype)
    dyl = _batch_axis_last(dy).reshape(O, P * Q, N).transpose(1, 2, 0)      # (L, N, O) view
    dW = np.empty((P * Q, O, K), dtype=x.dtype)
    for p in range(P):
        _gather_row(xt, buf, p, top, left, sh, sw)
        np.matmul(buf.reshape(Q, K, N), dyl[p * Q:(p + 1) * Q],
                  out=dW[p * Q:(p + 1) * Q].transpose(0, 2, 1))
    return dW
