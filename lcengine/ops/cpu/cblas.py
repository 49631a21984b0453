"""OpenBLAS's CBLAS ?gemm and ?omatcopy, callable from Numba code, and its thread count.

NumPy's own wheels load the SciPy OpenBLAS build (64-bit integers, `scipy_` prefix). `openblas()`
is the probe of it: it takes the path of the BLAS library NumPy loaded from threadpoolctl's
report (a public API; the process's memory map only if threadpoolctl names none), opens it with
ctypes, looks up the thread-count functions and the addresses of sgemm/dgemm and
somatcopy/domatcopy, and checks them on a small product and transpose against NumPy. Where any
step fails (another BLAS, another build, other symbols) it answers None, with one warning, and
the callers take their plain NumPy paths. Numba code calls an address with `gemm(...)` and
`omatcopy(...)`, which take arrays whose first element is where each operand starts.

Why addresses and not ctypes functions: Numba can call a ctypes function passed as an argument,
but its dispatcher then types that argument afresh on every call, 300-400 µs per op call
(measured); an integer costs nothing, and the functions that take one can be cached on disk.
"""

from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from . import probes
from .kernel_cache import njit

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


@njit(nogil=True, cache=True)
def gemm(address, order, trans_a, trans_b, m, n, k, one, a, lda, b, ldb, zero, c, ldc):
    """c = one · op(a) @ op(b) + zero · c, cblas_?gemm's arguments in its order; `one` and
    `zero` are scalars of the arrays' dtype, which picks sgemm or dgemm's address."""
    i32, i64 = np.int32, np.int64
    _call(address, i32(order), i32(trans_a), i32(trans_b), i64(m), i64(n), i64(k), one,
          a.ctypes.data, i64(lda), b.ctypes.data, i64(ldb), zero, c.ctypes.data, i64(ldc))


@njit(nogil=True, cache=True)
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


@njit(nogil=True, cache=True)
def unit(a):
    """(1, 0) in a's dtype: ?gemm's alpha and beta, ?omatcopy's alpha. A function of its own,
    compiled without `parallel`: in a parallel function np.ones and np.zeros are parallel loops,
    each one more parallel region, i.e. one more thread wake-up per call."""
    return np.ones(1, dtype=a.dtype)[0], np.zeros(1, dtype=a.dtype)[0]


#: (symbol prefix, suffix) of the OpenBLAS builds with 64-bit integers, the ABI `gemm` and
#: `omatcopy` call: SciPy's (NumPy's wheels), and a plain ILP64 build (libopenblas64_)
_BUILDS = (("scipy_", "64_"), ("", "64_"))


def openblas() -> OpenBLAS | None:
    """The OpenBLAS build NumPy loaded, checked; None when it cannot be used (one warning) or
    when the fast CPU face is switched off (`probes`)."""
    return _openblas() if probes.fast_cpu_enabled() else None


def _library_paths() -> list[str]:
    """Paths of the BLAS libraries loaded in this process: threadpoolctl's report of OpenBLAS,
    else the mapped files whose name says openblas."""
    try:
        from threadpoolctl import threadpool_info
        paths = [info["filepath"] for info in threadpool_info()
                 if info.get("internal_api") == "openblas"]
    except Exception:                     # threadpoolctl's own probing of the libraries failed
        paths = []
    if paths:
        return paths
    try:
        with open("/proc/self/maps") as maps:
            return sorted({line.split()[-1] for line in maps if "openblas" in line.lower()})
    except OSError:
        return []


def _bind(path) -> OpenBLAS | None:
    """`OpenBLAS` of the library at `path` if it exports one of `_BUILDS`' symbol sets."""
    try:
        lib = ctypes.CDLL(path)
    except OSError:
        return None
    for prefix, suffix in _BUILDS:
        try:
            get_threads = getattr(lib, f"{prefix}openblas_get_num_threads{suffix}")
            set_threads = getattr(lib, f"{prefix}openblas_set_num_threads{suffix}")
            address = {np.dtype(dt): {name: ctypes.cast(getattr(lib, f"{prefix}cblas_{s}{name}"
                                                                     f"{suffix}"),
                                                         ctypes.c_void_p).value
                                      for name in ("gemm", "omatcopy")}
                       for dt, s in ((np.float32, "s"), (np.float64, "d"))}
        except AttributeError:
            continue
        get_threads.restype = ctypes.c_int
        set_threads.argtypes, set_threads.restype = [ctypes.c_int], None
        return OpenBLAS(get_threads, set_threads,
                        gemm={dt: a["gemm"] for dt, a in address.items()},
                        omatcopy={dt: a["omatcopy"] for dt, a in address.items()})
    return None


def _works(blas: OpenBLAS) -> bool:
    """A 5×3 by 3×4 product and a 5×3 transpose through `gemm` and `omatcopy`, in both dtypes,
    against NumPy's: a build with other integer widths or argument orders fails here."""
    rng = np.random.default_rng(0)
    for dt in (np.float32, np.float64):
        a, b = rng.standard_normal((5, 3)).astype(dt), rng.standard_normal((3, 4)).astype(dt)
        c, at = np.zeros((5, 4), dt), np.zeros((3, 5), dt)
        one, zero = dt(1), dt(0)                 # (the scalar's type picks the ABI)
        gemm(blas.gemm[np.dtype(dt)], ROW_MAJOR, NO_TRANS, NO_TRANS, 5, 4, 3, one, a, 3, b, 4,
             zero, c, 4)
        omatcopy(blas.omatcopy[np.dtype(dt)], ROW_MAJOR, TRANS, 5, 3, one, a, 3, at, 5)
        if not (np.allclose(c, a @ b, rtol=1e-5, atol=1e-5) and np.array_equal(at, a.T)):
            return False
    return blas.get_threads() >= 1


@functools.lru_cache(maxsize=None)
def _openblas() -> OpenBLAS | None:
    paths = _library_paths()
    for path in paths:
        blas = _bind(path)
        if blas is not None and _works(blas):
            return blas
    why = (f"no 64-bit-integer OpenBLAS build that passes its check among {paths}" if paths
           else "NumPy's BLAS is not OpenBLAS")
    probes.unavailable("OpenBLAS's CBLAS symbols", why,
                       "the LC and DFA ops run on batched np.matmul on the calling thread")
    return None
