"""What the CuPy launchers (`*_cuda.py`) share: compiling a kernel file once per device, and the
argument checks every launcher makes before a launch.

CuPy checks nothing about a RawKernel's arguments (a Python int arrives as 64 bits, strides are
ignored), so the launchers check dtype, contiguity and shape here and pass scalars with the exact C
types of the kernel's signature. Imported only by the `*_cuda` faces, i.e. only for `--device gpu`.
"""

from __future__ import annotations

import cupy
import numpy as np

from .kernel_source import NVRTC_OPTIONS, kernel_path

INT32_MAX = 2**31 - 1
DTYPE_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}

_modules: dict = {}                         # (device id, file name) -> compiled cupy.RawModule
_functions: dict = {}                       # (device id, file name, kernel) -> its function: CuPy
                                            # looks a kernel up anew on every get_function call


class KernelCompileError(RuntimeError):
    """A kernel source failed to compile; the message names the file."""


def kernel_function(file_name: str, name: str):
    """The compiled `extern "C"` kernel `name` of `kernels/<file_name>` for the current device."""
    key = (cupy.cuda.runtime.getDevice(), file_name)
    function = _functions.get(key + (name,))
    if function is not None:
        return function
    module = _modules.get(key)
    if module is None:
        path = kernel_path(file_name)
        module = cupy.RawModule(code=path.read_text(encoding="utf-8"), options=NVRTC_OPTIONS)
        try:                                       # RawModule compiles lazily; force it here
            module.compile() if hasattr(module, "compile") else module.get_function(name)
        except Exception as err:                   # CompileException and friends; keep one line
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise KernelCompileError(f"{path}: compilation failed: {first}") from err
        _modules[key] = module
    function = _functions[key + (name,)] = module.get_function(name)
    return function


def check_array(op: str, arg: str, a, ndim: int, dtype=None, int32_index: bool = True):
    """A C-contiguous float32/float64 CuPy array of `ndim` dims (and `dtype`, when given); with
    `int32_index`, also fewer than 2³¹ elements."""
    if not isinstance(a, cupy.ndarray):
        raise TypeError(f"{op}: {arg} must be a cupy.ndarray, not {type(a).__name__}")
    if a.ndim != ndim:
        raise ValueError(f"{op}: {arg} must have {ndim} dimensions, got shape {a.shape}")
    if a.dtype not in DTYPE_SUFFIX:
        raise TypeError(f"{op}: {arg} must be float32 or float64, got {a.dtype}")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(f"{op}: {arg} has dtype {a.dtype}, expected {dtype} like the first array")
    if not a.flags.c_contiguous:
        raise ValueError(f"{op}: {arg} must be C-contiguous (pass cupy.ascontiguousarray({arg}))")
    if int32_index and a.size > INT32_MAX:
        raise ValueError(f"{op}: {arg} has {a.size} elements; the kernels index with int32")
    return a


def int_tuple(op: str, arg: str, value, length: int, minimum: int) -> tuple:
    """`value` as a tuple of `length` ints, each ≥ minimum."""
    try:
        out = tuple(int(v) for v in value)
    except TypeError:
        raise TypeError(f"{op}: {arg} must be a tuple of {length} ints, got {value!r}") from None
    if len(out) != length or any(v < minimum for v in out):
        raise ValueError(f"{op}: {arg} must be {length} ints ≥ {minimum}, got {value!r}")
    return out


def window_args(op: str, H, W, P, Q, kh, kw, stride, pads) -> tuple:
    """(sh, sw, top, left) as ints, once every one of the P×Q windows of kh×kw with `stride` is
    checked to fit the H×W input padded by `pads` (top, bottom, left, right)."""
    sh, sw = int_tuple(op, "stride", stride, 2, 1)
    top, bottom, left, right = int_tuple(op, "pads", pads, 4, 0)
    if (P - 1) * sh + kh > H + top + bottom or (Q - 1) * sw + kw > W + left + right:
        raise ValueError(f"{op}: {P}×{Q} windows of {kh}×{kw} with stride {(sh, sw)} do not fit "
                         f"the {H}×{W} input padded by {(top, bottom, left, right)}")
    return sh, sw, top, left
