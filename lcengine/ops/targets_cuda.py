"""Target-propagation elementwise ops: the CUDA face (`numba.cuda` kernels, one fused pass each).

Same functions and signatures as `targets_ref` (the definition). The element math is
`targets_math`, compiled here as `numba.cuda` device functions from the same Python the CPU face
uses. Kernels take any arrays exposing `__cuda_array_interface__` (CuPy arrays on the engine's
path; NumPy arrays under the CUDA simulator, `NUMBA_ENABLE_CUDASIM=1`, which the tests use), and
outputs are allocated with the inputs' array module. The inputs must be C-contiguous, same shape,
one float dtype. The loss of `tanh_regression` is reduced on the device: a shared-memory tree per
block of 256 threads, then one float64 atomicAdd per block; it is returned as a 0-d array on
the device (reading it would make every training step wait for the GPU; the trainer reads the
losses of many steps at once).

`numba.cuda` is NVIDIA's `numba-cuda` package where it is installed (the `gpu` extra: it takes
over the name from Numba's deprecated built-in CUDA target, which serves only the simulator in
CI); the kernels use only the API the two share.
"""

from __future__ import annotations

from numba import cuda, float64

from . import targets_math
from .xp import array_module

THREADS = 256
MAX_BLOCKS = 1024                               # grid-stride loops beyond this

_difference_target_elem = cuda.jit(device=True)(targets_math.difference_target_elem.py_func)
_tanh_regression_elem = cuda.jit(device=True)(targets_math.tanh_regression_elem.py_func)


@cuda.jit
def _difference_target_kernel(h, a_rec, a_hat_rec, out):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, h.size, stride):
        out[e] = _difference_target_elem(h[e], a_rec[e], a_hat_rec[e])


@cuda.jit
def _tanh_regression_kernel(h, t, two_over_n, grad, loss):
    partial = cuda.shared.array(THREADS, float64)
    start, stride = cuda.grid(1), cuda.gridsize(1)
    acc = 0.0
    for e in range(start, h.size, stride):
        sq, g = _tanh_regression_elem(h[e], t[e], two_over_n)
        grad[e] = g
        acc += sq
    tid = cuda.threadIdx.x
    partial[tid] = acc
    cuda.syncthreads()
    width = THREADS // 2
    while width > 0:
        if tid < width:
            partial[tid] += partial[tid + width]
        cuda.syncthreads()
        width //= 2
    if tid == 0:
        cuda.atomic.add(loss, 0, partial[0])


def _flat(op, arrays):
    """1-D views of C-contiguous same-shape, same-dtype float arrays (a one-line error if not)."""
    first = arrays[0]
    for name, a in zip(("h", "a_rec", "a_hat_rec") if len(arrays) == 3 else ("h", "t"), arrays):
        if a.dtype.name not in ("float32", "float64") or a.dtype != first.dtype:
            raise TypeError(f"{op}: {name} has dtype {a.dtype}; all inputs must be one of "
                            "float32/float64")
        if a.shape != first.shape:
            raise ValueError(f"{op}: {name} has shape {a.shape}, h has {first.shape}")
        if not a.flags.c_contiguous:
            raise ValueError(f"{op}: {name} must be C-contiguous")
    return [a.reshape(-1) for a in arrays]


def _blocks(n: int) -> int:
    return max(1, min((n + THREADS - 1) // THREADS, MAX_BLOCKS))


def difference_target(h, a_rec, a_hat_rec):
    flat = _flat("difference_target", (h, a_rec, a_hat_rec))
    xp = array_module(h)
    out = xp.empty(h.size, dtype=h.dtype)
    if h.size:
        _difference_target_kernel[_blocks(h.size), THREADS](*flat, out)
    return out.reshape(h.shape)


def tanh_regression(h, t):
    h1, t1 = _flat("tanh_regression", (h, t))
    xp = array_module(h)
    n = h.shape[0]
    grad = xp.empty(h.size, dtype=h.dtype)
    loss = xp.zeros(1, dtype=xp.float64)
    if h.size:
        _tanh_regression_kernel[_blocks(h.size), THREADS](h1, t1, h.dtype.type(2.0 / n), grad,
                                                          loss)
    return loss[0] / n, grad.reshape(h.shape)
