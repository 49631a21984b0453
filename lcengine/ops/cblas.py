"""OpenBLAS's CBLAS ?gemm and ?omatcopy, callable from Numba code, and its thread count.

NumPy's own wheels load the SciPy OpenBLAS build (64-bit integers, `scipy_` prefix). `openblas()`
finds it in the process and returns its thread-count functions and the addresses of its
sgemm/dgemm and somatcopy/domatcopy. Numba code calls an address with `gemm(...)` and
`omatcopy(...)`, which take arrays whose first element is where each operand starts.

Why addresses and not ctypes functions: Numba can call a ctypes function passed as an argument,
but its dispatcher then types that argument afresh on every call, 300-400 µs per op call
(measured); an integer costs nothing, and the functions that take one can be cached on disk.
"""

from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

ROW_MAJOR, COL_MAJOR, NO_TRANS, TRANS = 101, 102, 111, 112          # CBLAS enums

_LLVM_TYPES = {types.int32: ir.IntType(32), types.int64: ir.IntType(64),
               types.uint64: ir.IntType(64), types.float32: ir.FloatType(),
               types.float64: ir.DoubleType()}


@intrinsic
def _call(typingctx, address, *args):
    """Call the C function `void f(args...)` at `address`, each argument passed as its Numba
    type says (int32 → int, int64 and uint64 → 64-bit integer or pointer, float32 → float,
    float64 → double)."""
    arg_types = tuple(args)

    def codegen(context, builder, signature, llvm_args):
        address_value, packed = llvm_args
        fn_type = ir.FunctionType(ir.VoidType(), [_LLVM_TYPES[t] for t in arg_types])
        builder.call(builder.inttoptr(address_value, fn_type.as_pointer()),
                     [builder.extract_value(packed, i) for i in range(len(arg_types))])
        return context.get_dummy_value()

    return types.void(address, types.StarArgTuple.from_types(arg_types)), codegen


@numba.njit(nogil=True, cache=True)
def gemm(address, order, trans_a, trans_b, m, n, k, one, a, lda, b, ldb, zero, c, ldc):
    """c = one · op(a) @ op(b) + zero · c, cblas_?gemm's arguments in its order; `one` and
    `zero` are scalars of the arrays' dtype, which picks sgemm or dgemm's address."""
    i32, i64 = np.int32, np.int64
    _call(address, i32(order), i32(trans_a), i32(trans_b), i64(m), i64(n), i64(k), one,
          a.ctypes.data, i64(lda), b.ctypes.data, i64(ldb), zero, c.ctypes.data, i64(ldc))


@numba.njit(nogil=True, cache=True)
def omatcopy(address, order, trans, rows, cols, one, a, lda, b, ldb):
    """b = one · op(a) for a (rows, cols), cblas_?omatcopy's arguments in its order."""
    i32, i64 = np.int32, np.int64
    _call(address, i32(order), i32(trans), i64(rows), i64(cols), one, a.ctypes.data, i64(lda),
          b.ctypes.data, i64(ldb))


@dataclass(frozen=True)
class OpenBLAS:
    get_threads: object              # () -> int
    set_threads: object              # (int) -> None; one setting for the whole process
    gemm: dict                       # dtype -> address of cblas ?gemm
    omatcopy: dict                   # dtype -> address of cblas ?omatcopy


@numba.njit(nogil=True, cache=True)
def unit(a):
    """(1, 0) in a's dtype: ?gemm's alpha and beta, ?omatcopy's alpha. A function of its own,
    compiled without `parallel`: in a parallel function np.ones and np.zeros are parallel loops,
    each one more parallel region, i.e. one more thread wake-up per call."""
    return np.ones(1, dtype=a.dtype)[0], np.zeros(1, dtype=a.dtype)[0]


@functools.lru_cache(maxsize=None)
def openblas() -> OpenBLAS | None:
    """The SciPy OpenBLAS build NumPy loaded, or None when NumPy's BLAS is another library."""
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower()})
    except OSError:
        return None
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
            get_threads = lib.scipy_openblas_get_num_threads64_
            set_threads = lib.scipy_openblas_set_num_threads64_
            address = {np.dtype(dt): {name: ctypes.cast(getattr(lib, f"scipy_cblas_{s}{name}64_"),
                                                         ctypes.c_void_p).value
                                      for name in ("gemm", "omatcopy")}
                       for dt, s in ((np.float32, "s"), (np.float64, "d"))}
        except (OSError, AttributeError):
            continue
        get_threads.restype = ctypes.c_int
        set_threads.argtypes, set_threads.restype = [ctypes.c_int], None
        return OpenBLAS(get_threads, set_threads,
                        gemm={dt: a["gemm"] for dt, a in address.items()},
                        omatcopy={dt: a["omatcopy"] for dt, a in address.items()})
    return None
