"""Register-blocked matrix-product kernels for the thin per-location products of the LC ops.

    gemm_nn   C (M, Nc) = A (M, K) @ B (K, Nc)      B's and C's rows contiguous, A any strides
    gemm_tn   C (K, Nc) = A (M, K)ᵀ @ B (M, Nc)     all rows contiguous
    gemm_nt   C (M, Nc) = A (M, R) @ B (Nc, R)ᵀ     A's and B's rows contiguous, C any strides
    warm      read an array into the cache, one load per cache line, in address order
    stream    copy an array by stores that bypass the cache

Why not BLAS. Each location's weights are used by one product only, with a batch of 32-128
columns, so BLAS's packing of both operands is paid once per use: ImageNet-LC layer 3's forward
(784 products of 96 × 1200 by 1200 × 32) spent 69 of its 72 ms in sgemm, reading its 361 MB of
weights three times (read, packed copy written, packed copy read), and MNIST-LC layer 1's
gradients are 196 products of 9 × 32 by 32 × 128 each, where the call and its packing cost
as much as the arithmetic. These kernels read each operand where it lies.

How. Each kernel is a block of accumulators written in LLVM IR (llvmlite, through a Numba
`intrinsic`), so that the accumulators stay in registers as SSA values; Numba's own loops
would keep them in memory, or leave the loop scalar (docs/performance.md):
  * `_outer`: an MR × NV block of vectors of C (6 × 2); per step k, NV vector loads of B's
    row k, MR broadcasts of A[i, k], MR·NV fused multiply-adds; a variant also prefetches one
    cache line of another array per step (the drivers' `then`: the next location's weights);
  * `_rank`: C += (6 rows of A)ᵀ @ (6 rows of B), NV = 2 vectors of C's columns at a time;
    the 6 × NV vectors of B stay in registers, and per step k, NV vector loads and stores of
    C's row k, 6 broadcasts of A[j, k] (six rows read in address order) and 6·NV fused
    multiply-adds. For the input gradient's W[l]ᵀ @ dy, where `_outer` would read W[l] down
    its columns and BLAS packs it, against the hardware prefetcher both ways (ImageNet-LC layer
    3 at batch 32: 63 against 80 ms with BLAS; docs/performance.md); it has
    the same prefetching variant;
  * `_dot`: an MR × NR block of vector accumulators over R; per step, MR + NR vector loads and
    MR·NR fused multiply-adds, then each accumulator summed across its lanes.
A vector is 64 bytes (16 float32 or 8 float64) where the CPU Numba compiles for has AVX-512,
else 32 (AVX2's; LLVM maps them onto whatever the host has): `_vector_bytes`. MR·NV = MR·NR =
12 accumulators (`_rank`: 12 vectors of B) leave registers for the operands among AVX2's 16:
with 3 × 4 the accumulators spilled to the stack (34 GFLOP/s on one core against 51 for 6 × 2,
measured). AVX-512's 32 registers hold the same blocks of vectors twice as wide: on a Zen 4
host, whose AVX-512 does no more arithmetic per cycle than AVX2, they still take ImageNet-LC
layer 3's forward at batch 32 from 38-49 to 31-38 ms and its input gradient from 39-49 to
32-36, MNIST-LC layer 2's forward from 2.05 to 1.50-1.57 ms: half the loads, broadcasts and
loop steps per multiply-add (docs/performance.md). Blocks at the edges
pass their row and column counts at run time: rows and vectors past them read a valid row or
vector and are not stored (`_rank` holds B's rows past them as zeros). What is left over at
the edges, less than one vector, runs as plain loops in the drivers. The kernels read and write
through raw addresses, so the drivers refuse mismatched shapes, dtypes and row strides first.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import llvmlite
import numba
import numpy as np
from llvmlite import binding, ir
from numba import types
from numba.extending import intrinsic

from . import kernel_cache, probes
from .kernel_cache import njit


def _vector_bytes():
    """64 if the CPU Numba compiles for has AVX-512, else 32. The features are the ones Numba's
    code generator reads (NUMBA_CPU_FEATURES, else LLVM's report of the host, with AVX off
    under NUMBA_ENABLE_AVX=0), which also key its cache of compiled kernels, so a cached kernel
    always has this width. 32 where they cannot be read: LLVM splits a wider vector than the
    host has into several, so that width is right everywhere, if not fastest."""
    features = numba.config.CPU_FEATURES
    if features is None:
        if not numba.config.ENABLE_AVX:
            return 32
        try:
            features = binding.get_host_cpu_features().flatten()
        except Exception:                    # (RuntimeError where LLVM cannot tell)
            return 32
    return 64 if "+avx512f" in features.split(",") else 32


VECTOR_BYTES = _vector_bytes()
CACHE_LINE = 64                # bytes
DOT_MR, DOT_NR = 4, 3         # `_dot`: rows of A × rows of B per block
RANK_MR = 6                   # `_rank`: rows of A and B per update
CHILD_TIMEOUT_S = 600           # `_check_in_child`: a cold compile on a busy machine included
PREFETCH = "llvm.prefetch.p0"  # the LLVM intrinsic `_prefetch` calls (LLVM 15 on: opaque pointers)

_I64 = ir.IntType(64)
_I32 = ir.IntType(32)


def _float(one):
    """(LLVM float type, lanes per vector, bytes per number) for the Numba scalar type `one`."""
    if one == types.float32:
        return ir.FloatType(), VECTOR_BYTES // 4, 4
    if one == types.float64:
        return ir.DoubleType(), VECTOR_BYTES // 8, 8
    raise numba.errors.TypingError(f"simd kernels take float32 or float64, not {one}")


def _const(value):
    return ir.Constant(_I64, value)


def _clamped(builder, index, count):
    """min(index, count − 1): a row or vector past the block's edge reads a valid one instead."""
    last = builder.sub(count, _const(1))
    return builder.select(builder.icmp_signed("<", _const(index), count), _const(index), last)


def _row_pointers(builder, base, stride, count, n):
    """Pointers to rows 0 … n − 1 of `base`, `stride` numbers apart; rows from `count` on point
    at the last valid row."""
    return [builder.gep(base, [builder.mul(_clamped(builder, i, count), stride)])
            for i in range(n)]


def _pointers(builder, fty, *addresses):
    return [builder.inttoptr(address, fty.as_pointer()) for address in addresses]


def _splat(builder, scalar, vty):
    undef = ir.Constant(vty, ir.Undefined)
    first = builder.insert_element(undef, scalar, ir.Constant(_I32, 0))
    lane0 = ir.Constant(ir.VectorType(_I32, vty.count), [0] * vty.count)
    return builder.shuffle_vector(first, undef, lane0)


def _lane_sum(builder, v):
    """v[0] + … + v[lanes − 1], as a tree of halves (the same order on every call)."""
    while v.type.count > 1:
        half = v.type.count // 2
        undef = ir.Constant(v.type, ir.Undefined)
        lanes = [ir.Constant(ir.VectorType(_I32, half), list(range(start, start + half)))
                 for start in (0, half)]
        low, high = (builder.shuffle_vector(v, undef, which) for which in lanes)
        v = builder.fadd(low, high)
    return builder.extract_element(v, ir.Constant(_I32, 0))


def _loop(builder, count, carried, body):
    """for step in range(count) (count ≥ 1): carried = body(step, carried); returns the last."""
    entry = builder.block
    loop = builder.append_basic_block("simd.loop")
    done = builder.append_basic_block("simd.done")
    builder.branch(loop)
    builder.position_at_end(loop)
    step = builder.phi(_I64)
    step.add_incoming(_const(0), entry)
    phis = [builder.phi(v.type) for v in carried]
    for phi, v in zip(phis, carried):
        phi.add_incoming(v, entry)
    new = body(step, phis)
    nxt = builder.add(step, _const(1))
    step.add_incoming(nxt, builder.block)
    for phi, v in zip(phis, new):
        phi.add_incoming(v, builder.block)
    builder.cbranch(builder.icmp_signed("<", nxt, count), loop, done)
    builder.position_at_end(done)
    return new


def _load(builder, ptr, vty, size):
    return builder.load(builder.bitcast(ptr, vty.as_pointer()), align=size)


def _intrinsic(builder, name, fnty):
    """The declaration of LLVM intrinsic `name` in the builder's module. The names are LLVM's
    and their mangling follows LLVM's types, which has changed between LLVM versions: `usable()`
    checks that they compile."""
    return builder.module.globals.get(name) or ir.Function(builder.module, fnty, name)


def _fma(builder, vty):
    bits = 32 if isinstance(vty.element, ir.FloatType) else 64
    return _intrinsic(builder, f"llvm.fma.v{vty.count}f{bits}", ir.FunctionType(vty, [vty] * 3))


def _prefetch(builder, base, line, lines):
    """Prefetch cache line min(line, lines − 1) from address `base` on, into every level."""
    i32, i8p = ir.IntType(32), ir.IntType(8).as_pointer()
    fn = _intrinsic(builder, PREFETCH, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]))
    last = builder.sub(lines, _const(1))
    line = builder.select(builder.icmp_signed("<", line, last), line, last)
    address = builder.add(base, builder.mul(line, _const(CACHE_LINE)))
    builder.call(fn, [builder.inttoptr(address, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3),
                      ir.Constant(i32, 1)])


def _outer_kernel(MR, NV, prefetching=False):
    """`_outer` for blocks of MR rows × NV vectors of C; with `prefetching`, it takes two more
    arguments, pf and pf_lines, and at step k prefetches line min(k, pf_lines − 1) of the
    pf_lines lines from address pf on."""

    @intrinsic
    def _outer(typingctx, one, rows, nvec, steps, a, a_rs, a_cs, b, b_rs, c, c_rs, *pf):
        """C[i, v·W:(v+1)·W] = Σ_{k < steps} A[i·a_rs + k·a_cs] · B[k·b_rs + v·W : … + W] for
        i < rows ≤ MR and v < nvec ≤ NV (W lanes per vector). a, b, c are addresses of the
        first numbers; strides count numbers. steps ≥ 1."""
        if len(pf) != (2 if prefetching else 0):
            raise numba.errors.TypingError("simd: _outer takes (pf, pf_lines) iff prefetching")
        fty, lanes, size = _float(one)
        vty = ir.VectorType(fty, lanes)

        def codegen(context, builder, signature, args):
            _, rows_v, nvec_v, steps_v, a_v, a_rs_v, a_cs_v, b_v, b_rs_v, c_v, c_rs_v = args[:11]
            prefetched = [builder.extract_value(args[11], i) for i in range(len(pf))]
            fma = _fma(builder, vty)
            a_p, b_p, c_p = _pointers(builder, fty, a_v, b_v, c_v)
            a_rows = _row_pointers(builder, a_p, a_rs_v, rows_v, MR)
            b_cols = [builder.mul(_clamped(builder, v, nvec_v), _const(lanes)) for v in range(NV)]

            def body(k, acc):
                if prefetching:
                    _prefetch(builder, prefetched[0], k, prefetched[1])
                b_row = builder.gep(b_p, [builder.mul(k, b_rs_v)])
                bv = [_load(builder, builder.gep(b_row, [col]), vty, size) for col in b_cols]
                a_off = builder.mul(k, a_cs_v)
                out = []
                for i in range(MR):
                    av = _splat(builder, builder.load(builder.gep(a_rows[i], [a_off])), vty)
                    out += [builder.call(fma, [av, bv[v], acc[i * NV + v]]) for v in range(NV)]
                return out

            acc = _loop(builder, steps_v, [ir.Constant(vty, [0.0] * lanes)] * (MR * NV), body)
            for i in range(MR):
                c_row = builder.gep(c_p, [builder.mul(_const(i), c_rs_v)])
                for v in range(NV):
                    inside = builder.and_(builder.icmp_signed("<", _const(i), rows_v),
                                          builder.icmp_signed("<", _const(v), nvec_v))
                    with builder.if_then(inside):
                        ptr = builder.bitcast(builder.gep(c_row, [_const(v * lanes)]),
                                              vty.as_pointer())
                        builder.store(acc[i * NV + v], ptr, align=size)
            return context.get_dummy_value()

        sig = types.void(one, rows, nvec, steps, a, a_rs, a_cs, b, b_rs, c, c_rs,
                         types.StarArgTuple.from_types(pf))
        return sig, codegen

    return _outer


def _rank_kernel(NV, prefetching=False):
    """`_rank` for NV vectors of C's rows; `prefetching` as for `_outer_kernel`."""

    @intrinsic
    def _rank(typingctx, one, rows, steps, first, a, a_rs, b, b_rs, c, c_rs, *pf):
        """C[k·c_rs + v·W : … + W] (= 0 if first, else itself) + Σ_{j < rows} A[j·a_rs + k] ·
        B[j·b_rs + v·W : … + W] for k < steps and v < NV (W lanes per vector), rows ≤ RANK_MR.
        B's rows are held in registers (rows past `rows` as zeros) and A's rows read in address
        order. a, b, c are addresses of the first numbers; strides count numbers. steps ≥ 1."""
        if len(pf) != (2 if prefetching else 0):
            raise numba.errors.TypingError("simd: _rank takes (pf, pf_lines) iff prefetching")
        fty, lanes, size = _float(one)
        vty = ir.VectorType(fty, lanes)

        def codegen(context, builder, signature, args):
            _, rows_v, steps_v, first_v, a_v, a_rs_v, b_v, b_rs_v, c_v, c_rs_v = args[:10]
            prefetched = [builder.extract_value(args[10], i) for i in range(len(pf))]
            fma = _fma(builder, vty)
            a_p, b_p, c_p = _pointers(builder, fty, a_v, b_v, c_v)
            a_rows = _row_pointers(builder, a_p, a_rs_v, rows_v, RANK_MR)
            zero = ir.Constant(vty, [0.0] * lanes)
            bv = []
            for j, row in enumerate(_row_pointers(builder, b_p, b_rs_v, rows_v, RANK_MR)):
                inside = builder.icmp_signed("<", _const(j), rows_v)
                loads = [_load(builder, builder.gep(row, [_const(v * lanes)]), vty, size)
                         for v in range(NV)]
                bv.append([builder.select(inside, value, zero) for value in loads])
            first_b = builder.icmp_signed("!=", first_v, ir.Constant(first_v.type, 0))

            def body(k, carried):
                if prefetching:
                    _prefetch(builder, prefetched[0], k, prefetched[1])
                c_row = builder.gep(c_p, [builder.mul(k, c_rs_v)])
                ptrs = [builder.bitcast(builder.gep(c_row, [_const(v * lanes)]), vty.as_pointer())
                        for v in range(NV)]
                acc = [builder.select(first_b, zero, builder.load(p, align=size)) for p in ptrs]
                for j in range(RANK_MR):
                    av = _splat(builder, builder.load(builder.gep(a_rows[j], [k])), vty)
                    acc = [builder.call(fma, [av, bv[j][v], acc[v]]) for v in range(NV)]
                for ptr, value in zip(ptrs, acc):
                    builder.store(value, ptr, align=size)
                return carried

            _loop(builder, steps_v, [], body)
            return context.get_dummy_value()

        sig = types.void(one, rows, steps, first, a, a_rs, b, b_rs, c, c_rs,
                         types.StarArgTuple.from_types(pf))
        return sig, codegen

    return _rank


_outer_6x2 = _outer_kernel(6, 2)      # the general block
_outer_6x2_prefetching = _outer_kernel(6, 2, prefetching=True)
_rank_x2 = _rank_kernel(2)
_rank_x1 = _rank_kernel(1)
_rank_x2_prefetching = _rank_kernel(2, prefetching=True)
_rank_x1_prefetching = _rank_kernel(1, prefetching=True)


@intrinsic
def _dot(typingctx, one, rows, cols, nvec, a, a_rs, b, b_rs, c, c_rs, c_cs):
    """C[i·c_rs + j·c_cs] = Σ_{r < nvec·W} A[i·a_rs + r] · B[j·b_rs + r] for i < rows ≤ DOT_MR
    and j < cols ≤ DOT_NR (W lanes per vector). a, b, c are addresses; strides count numbers.
    nvec ≥ 1."""
    fty, lanes, size = _float(one)
    vty = ir.VectorType(fty, lanes)

    def codegen(context, builder, signature, args):
        _, rows_v, cols_v, nvec_v, a_v, a_rs_v, b_v, b_rs_v, c_v, c_rs_v, c_cs_v = args
        fma = _fma(builder, vty)
        a_p, b_p, c_p = _pointers(builder, fty, a_v, b_v, c_v)
        a_rows = _row_pointers(builder, a_p, a_rs_v, rows_v, DOT_MR)
        b_rows = _row_pointers(builder, b_p, b_rs_v, cols_v, DOT_NR)

        def body(step, acc):
            off = builder.mul(step, _const(lanes))
            av = [_load(builder, builder.gep(p, [off]), vty, size) for p in a_rows]
            bv = [_load(builder, builder.gep(p, [off]), vty, size) for p in b_rows]
            return [builder.call(fma, [av[i], bv[j], acc[i * DOT_NR + j]])
                    for i in range(DOT_MR) for j in range(DOT_NR)]

        zero = ir.Constant(vty, [0.0] * lanes)
        acc = _loop(builder, nvec_v, [zero] * (DOT_MR * DOT_NR), body)
        for i in range(DOT_MR):
            for j in range(DOT_NR):
                inside = builder.and_(builder.icmp_signed("<", _const(i), rows_v),
                                      builder.icmp_signed("<", _const(j), cols_v))
                with builder.if_then(inside):
                    offset = builder.add(builder.mul(_const(i), c_rs_v),
                                         builder.mul(_const(j), c_cs_v))
                    builder.store(_lane_sum(builder, acc[i * DOT_NR + j]),
                                  builder.gep(c_p, [offset]))
        return context.get_dummy_value()

    sig = types.void(one, rows, cols, nvec, a, a_rs, b, b_rs, c, c_rs, c_cs)
    return sig, codegen


@intrinsic
def _read_lines(typingctx, address, lines):
    """Load one byte of each of `lines` 64-byte cache lines from `address` on; the loads are
    independent, and their xor goes into an empty asm statement so that LLVM keeps them."""

    def codegen(context, builder, signature, args):
        address_v, lines_v = args
        i8 = ir.IntType(8)
        base = builder.inttoptr(address_v, i8.as_pointer())

        def body(line, acc):
            byte = builder.load(builder.gep(base, [builder.mul(line, _const(CACHE_LINE))]))
            return [builder.xor(acc[0], byte)]

        acc = _loop(builder, lines_v, [ir.Constant(i8, 0)], body)
        builder.asm(ir.FunctionType(ir.VoidType(), [i8]), "", "r", [acc[0]], True)
        return context.get_dummy_value()

    return types.void(address, lines), codegen


@intrinsic
def _stream(typingctx, one, src, dst, head, vectors, tail):
    """Copy head numbers, then `vectors` vectors, then tail numbers from address src to address
    dst, the vectors by non-temporal stores (dst + head numbers VECTOR_BYTES-aligned), the rest
    by plain ones; then a fence: non-temporal stores are weakly ordered, and whoever reads dst
    next, another thread included, must see them."""
    fty, lanes, size = _float(one)
    vty = ir.VectorType(fty, lanes)

    def codegen(context, builder, signature, args):
        _, src_v, dst_v, head_v, vectors_v, tail_v = args
        src_p, dst_p = _pointers(builder, fty, src_v, dst_v)
        nontemporal = builder.module.add_metadata([ir.Constant(_I32, 1)])

        def copy(first, count, vectors):
            """count numbers, or vectors by non-temporal stores, from number `first` on."""
            ty, step, align = (vty, lanes, VECTOR_BYTES) if vectors else (fty, 1, size)

            def body(i, carried):
                at = builder.add(first, builder.mul(i, _const(step)))
                value = builder.load(builder.bitcast(builder.gep(src_p, [at]), ty.as_pointer()),
                                     align=size)
                store = builder.store(value, builder.bitcast(builder.gep(dst_p, [at]),
                                                             ty.as_pointer()), align=align)
                if vectors:
                    store.set_metadata("nontemporal", nontemporal)
                return carried

            with builder.if_then(builder.icmp_signed(">", count, _const(0))):
                _loop(builder, count, [], body)

        copy(_const(0), head_v, False)
        copy(head_v, vectors_v, True)
        copy(builder.add(head_v, builder.mul(vectors_v, _const(lanes))), tail_v, False)
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return types.void(one, src, dst, head, vectors, tail), codegen


@njit(nogil=True, cache=True)
def stream(src, dst):
    """dst[...] = src by stores that bypass the cache (non-temporal), for C-contiguous arrays of
    one shape and float dtype. An ordinary store first reads the line it writes; for a result
    larger than the last-level cache, which goes out to memory anyway, that read is wasted
    (ImageNet-LC's weight gradients: docs/performance.md). The numbers before
    dst's first vector-aligned address and after its last whole vector are copied plainly."""
    _one_float_dtype(src, dst, dst)
    if src.shape != dst.shape:
        raise ValueError("simd.stream: src and dst differ in shape")
    if not (src.flags.c_contiguous and dst.flags.c_contiguous):
        raise ValueError("simd.stream: src and dst must be C-contiguous")
    n, size, address = dst.size, dst.itemsize, dst.ctypes.data
    head = n                                 # (an address between numbers: all plainly)
    if address % size == 0:
        head = min(n, (-address % VECTOR_BYTES) // size)
    vectors = (n - head) // (VECTOR_BYTES // size)
    _stream(np.ones(1, dtype=dst.dtype)[0], src.ctypes.data, address, head, vectors,
            n - head - vectors * (VECTOR_BYTES // size))


@njit(nogil=True, cache=True)
def warm(a):
    """Read a's memory into the cache, one load per cache line in address order: a sequential
    stream that the hardware prefetcher follows, unlike BLAS's packing of a transposed operand
    (docs/performance.md). a must be C-contiguous."""
    if not a.flags.c_contiguous:
        raise ValueError("simd.warm: the array must be C-contiguous")
    lines = (a.size * a.itemsize + CACHE_LINE - 1) // CACHE_LINE
    if lines > 0:
        _read_lines(a.ctypes.data, lines)


@intrinsic
def _one_float_dtype(typingctx, a, b, c):
    """Compiles only when the three arrays share a dtype (float32 or float64); does nothing."""
    if not (a.dtype == b.dtype == c.dtype):
        raise numba.errors.TypingError(f"simd: A, B and C must share one dtype, not {a.dtype}, "
                                       f"{b.dtype} and {c.dtype}")
    _float(a.dtype)

    def codegen(context, builder, signature, args):
        return context.get_dummy_value()

    return types.void(a, b, c), codegen


@njit(nogil=True, cache=True)
def _rows_contiguous(a):
    return a.shape[1] < 2 or a.strides[1] == a.itemsize


@njit(nogil=True, cache=True)
def _check(A, B, C, M, Nc, by_vectors, also_by_vectors):
    """C (M, Nc) against the product's shape, and contiguous rows in the two operands the kernel
    reads or writes by whole vectors: the kernels themselves check nothing."""
    _one_float_dtype(A, B, C)
    if C.shape[0] != M or C.shape[1] != Nc:
        raise ValueError("simd: C's shape does not match the product's")
    if not (_rows_contiguous(by_vectors) and _rows_contiguous(also_by_vectors)):
        raise ValueError("simd: an operand the kernel reads by vectors has non-contiguous rows")


@njit(nogil=True, cache=True)
def _numbers(a):
    """a's strides in numbers."""
    return a.strides[0] // a.itemsize, a.strides[1] // a.itemsize


@njit(nogil=True, cache=True)
def _operands(A, B, C):
    """(one, lanes, a0, b0, c0, size): the number 1 in C's dtype (the kernels' type argument),
    numbers per vector, the three arrays' addresses and the bytes per number."""
    return (np.ones(1, dtype=C.dtype)[0], VECTOR_BYTES // C.itemsize, A.ctypes.data,
            B.ctypes.data, C.ctypes.data, C.itemsize)


@njit(nogil=True, cache=True)
def _check_then(then):
    if then is not None and not then.flags.c_contiguous:
        raise ValueError("simd: `then` must be C-contiguous")


@njit(nogil=True, cache=True)
def _then_share(then, blocks, block):
    """(address, lines): the cache lines of `then` that block `block` of a product's `blocks`
    prefetches, an even share of them, at least one line (the last, when they run out)."""
    lines = max(1, -(-then.size * then.itemsize // CACHE_LINE))
    per_block = -(-lines // blocks)
    start = min(block * per_block, lines - 1)
    return then.ctypes.data + start * CACHE_LINE, max(1, min(per_block, lines - start))


@njit(nogil=True, cache=True)
def gemm_nn(A, B, C, then=None):
    """C = A @ B for A (M, K), B (K, Nc) and C (M, Nc) of one float dtype, B's and C's rows
    contiguous (their strides[1] one number), K ≥ 1. `then`, a C-contiguous array (the next
    location's weights), is prefetched along the way, a line per step spread over the blocks of
    6 rows, so that its loads overlap this product's arithmetic."""
    M, K = A.shape
    Nc = B.shape[1]
    if B.shape[0] != K:
        raise ValueError("simd.gemm_nn: A's columns and B's rows differ")
    if K < 1:
        raise ValueError("simd.gemm_nn: the sum must have at least one term (K ≥ 1)")
    _check(A, B, C, M, Nc, B, C)
    _check_then(then)
    one, lanes, a0, b0, c0, size = _operands(A, B, C)
    a_rs, a_cs = _numbers(A)
    b_rs, c_rs = _numbers(B)[0], _numbers(C)[0]
    vectors = Nc // lanes
    blocks = -(-M // 6) * -(-vectors // 2)
    block = 0
    for i in range(0, M, 6):
        for v in range(0, vectors, 2):
            rows, nvec = min(6, M - i), min(2, vectors - v)
            a, b = a0 + i * a_rs * size, b0 + v * lanes * size
            c = c0 + (i * c_rs + v * lanes) * size
            if then is None:
                _outer_6x2(one, rows, nvec, K, a, a_rs, a_cs, b, b_rs, c, c_rs)
            else:
                pf, lines = _then_share(then, blocks, block)
                _outer_6x2_prefetching(one, rows, nvec, K, a, a_rs, a_cs, b, b_rs, c, c_rs, pf,
                                       lines)
            block += 1
    for i in range(M):                                       # columns past the last vector
        for n in range(vectors * lanes, Nc):
            s = A[i, 0] * B[0, n]
            for k in range(1, K):
                s += A[i, k] * B[k, n]
            C[i, n] = s


@njit(nogil=True, cache=True)
def gemm_nt(A, B, C):
    """C = A @ Bᵀ for A (M, R), B (Nc, R) and C (M, Nc) of one float dtype, A's and B's rows
    contiguous."""
    M, R = A.shape
    Nc = B.shape[0]
    if B.shape[1] != R:
        raise ValueError("simd.gemm_nt: A's and B's rows differ in length")
    _check(A, B, C, M, Nc, A, B)
    one, lanes, a0, b0, c0, size = _operands(A, B, C)
    a_rs, b_rs = _numbers(A)[0], _numbers(B)[0]
    c_rs, c_cs = _numbers(C)
    vectors = R // lanes
    if vectors == 0:
        C[:] = 0
    else:
        for i in range(0, M, DOT_MR):
            for j in range(0, Nc, DOT_NR):
                _dot(one, min(DOT_MR, M - i), min(DOT_NR, Nc - j), vectors, a0 + i * a_rs * size,
                     a_rs, b0 + j * b_rs * size, b_rs, c0 + (i * c_rs + j * c_cs) * size, c_rs,
                     c_cs)
    for i in range(M):                                       # the sum's last, partial vector
        for j in range(Nc):
            s = C[i, j]
            for r in range(vectors * lanes, R):
                s += A[i, r] * B[j, r]
            C[i, j] = s


@njit(nogil=True, cache=True)
def gemm_tn(A, B, C, then=None):
    """C = Aᵀ @ B for A (M, K), B (M, Nc) and C (K, Nc) of one float dtype, all rows contiguous,
    M ≥ 1: rank-6 updates of C, each reading six rows of A in address order (streams that the
    hardware prefetcher follows, where BLAS packs Aᵀ against them), C passing through the cache
    six rows of A at a time. `then` is prefetched along the way as by `gemm_nn`."""
    M, K = A.shape
    Nc = B.shape[1]
    if B.shape[0] != M:
        raise ValueError("simd.gemm_tn: A and B differ in rows")
    if M < 1:
        raise ValueError("simd.gemm_tn: the sum must have at least one term (M ≥ 1)")
    _check(A, B, C, K, Nc, B, C)
    if not _rows_contiguous(A):
        raise ValueError("simd.gemm_tn: A's rows must be contiguous")
    _check_then(then)
    one, lanes, a0, b0, c0, size = _operands(A, B, C)
    a_rs, b_rs, c_rs = _numbers(A)[0], _numbers(B)[0], _numbers(C)[0]
    vectors = Nc // lanes
    blocks = -(-M // RANK_MR) * -(-vectors // 2)
    block = 0
    for i in range(0, M if K > 0 else 0, RANK_MR):          # (K = 0: C has no rows)
        rows, a, b = min(RANK_MR, M - i), a0 + i * a_rs * size, b0 + i * b_rs * size
        for v in range(0, vectors, 2):
            bv, cv = b + v * lanes * size, c0 + v * lanes * size
            if then is None and vectors - v >= 2:
                _rank_x2(one, rows, K, i == 0, a, a_rs, bv, b_rs, cv, c_rs)
            elif then is None:
                _rank_x1(one, rows, K, i == 0, a, a_rs, bv, b_rs, cv, c_rs)
            else:
                pf, lines = _then_share(then, blocks, block)
                if vectors - v >= 2:
                    _rank_x2_prefetching(one, rows, K, i == 0, a, a_rs, bv, b_rs, cv, c_rs, pf,
                                         lines)
                else:
                    _rank_x1_prefetching(one, rows, K, i == 0, a, a_rs, bv, b_rs, cv, c_rs, pf,
                                         lines)
            block += 1
    for k in range(K):                                       # columns past the last vector
        for n in range(vectors * lanes, Nc):
            s = A[0, k] * B[0, n]
            for i in range(1, M):
                s += A[i, k] * B[i, n]
            C[k, n] = s


def usable() -> bool:
    """The probe of these kernels: whether they compile on this Numba and LLVM and compute what
    NumPy does. False, with one warning, where they do not, and when the fast CPU face is
    switched off (`probes`); the LC ops then take their plain NumPy path, which compiles nothing
    of this module."""
    return probes.fast_cpu_enabled() and _probed()


@functools.lru_cache(maxsize=None)
def _probed() -> bool:
    """`check()` run in a child process, once per Numba, llvmlite, CPU and set of sources (the
    answer is kept beside the cached kernels): an intrinsic name this LLVM does not know crashes
    the compiler, which only a child can survive. The child also fills the kernel cache."""
    directory = kernel_cache.cache_directory()
    answer = None if directory is None else directory / _answer_name()
    try:
        why = json.loads(answer.read_text())["failed"]
    except (AttributeError, OSError, ValueError, KeyError):
        why, keep = _check_in_child()
        if keep and answer is not None:
            partial = answer.with_name(f"{answer.name}.{os.getpid()}")
            with contextlib.suppress(OSError):
                partial.write_text(json.dumps({"failed": why}))
                os.replace(partial, answer)
    if why is not None:
        probes.unavailable("the LLVM product kernels (simd)", why,
                           "the LC ops run on batched np.matmul on the calling thread")
    return why is None


def _answer_name() -> str:
    features = numba.config.CPU_FEATURES or ""
    if not features:
        with contextlib.suppress(Exception):
            features = binding.get_host_cpu_features().flatten()
    key = f"{numba.__version__} {llvmlite.__version__} {VECTOR_BYTES} {features}"
    return f"simd-probe-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


CHECK = "from lcengine.ops.cpu import simd; print(simd.check() or 'ok')"


def _check_in_child(code: str = CHECK) -> tuple[str | None, bool]:
    """(why the kernels failed, or None; whether that answer is worth keeping: not after a
    timeout, which a busy machine can cause), from running `code` in a child process: it must
    print "ok" last when the kernels work."""
    root = str(Path(__file__).resolve().parents[3])           # where `lcengine` imports from
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [root, *filter(None, [os.environ.get("PYTHONPATH")])]))
    try:
        run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"the check took over {CHILD_TIMEOUT_S} s", False
    except OSError as err:
        return f"the check could not start: {err}", False
    lines = run.stdout.strip().splitlines()
    if run.returncode == 0 and lines and lines[-1] == "ok":
        return None, True
    if run.returncode < 0:
        return f"compiling them crashed the process (signal {-run.returncode})", True
    reason = (lines[-1:] or run.stderr.strip().splitlines()[-1:] or ["no output"])[0]
    return f"the check failed: {reason}", True


def check() -> str | None:
    """Every kernel and block edge on small operands of both dtypes against NumPy: 13 × 7 by
    7 × 37 (two 6-row blocks and a partial one, vectors and a remainder, with and without a
    prefetched array), its transposed product and the weight gradient's, `warm` and `stream`.
    None when all agree, else what went wrong."""
    rng = np.random.default_rng(0)
    try:
        for dtype in (np.float32, np.float64):
            A, B = (rng.standard_normal(s).astype(dtype) for s in ((13, 7), (7, 37)))
            D, E = (rng.standard_normal(s).astype(dtype) for s in ((13, 37), (5, 37)))
            then = rng.standard_normal(300).astype(dtype)
            C, Ct, Cn, copy = (np.empty(s, dtype) for s in ((13, 37), (7, 37), (13, 5), 300))
            tol = dict(rtol=1e-4, atol=1e-4)
            for prefetched in (None, then):
                gemm_nn(A, B, C, prefetched)
                gemm_tn(A, D, Ct, prefetched)
                if not (np.allclose(C, A @ B, **tol) and np.allclose(Ct, A.T @ D, **tol)):
                    return f"a {dtype.__name__} product differs from NumPy's"
            gemm_nt(D, E, Cn)
            warm(then)
            stream(then, copy)
            if not (np.allclose(Cn, D @ E.T, **tol) and np.array_equal(copy, then)):
                return f"a {dtype.__name__} product or copy differs from NumPy's"
    except Exception as err:                 # a compile error of the LLVM IR, or a refused call
        return f"{type(err).__name__}: {err}".splitlines()[0]
    return None
