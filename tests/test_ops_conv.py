"""The conv ops' fast faces against the reference (`conv_ref`, the definition): the CPU face
(`conv_cpu`) on awkward shapes in float32 and float64; the CUDA C of `kernels/conv.cu` (im2col,
col2im) run under the host emulation of CUDA (tests/cuda_emu/emu.h) with the launcher's GEMMs done
in NumPy; and the CUDA face (`conv_cuda`, marked `gpu`, skipped with the reason where CuPy or a GPU
is absent). Also: an LC layer whose filters are all tied equals a convolution.

Tolerance, |got − ref| ≤ atol + rtol·|ref| with R the length of the sum behind each element
(forward C·kh·kw, backward_input O·kh·kw, backward_weight N·P·Q) and unit-variance operands:
  float32  rtol 1e-4,  atol 1e-5·√R   (BLAS and einsum sum in different orders)
  float64  rtol 1e-10, atol 1e-12·√R
"""

import ctypes
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from gradcheck import assert_close

from lcengine.backend import get_backend
from lcengine.ops import conv_cpu, conv_ref
from lcengine.ops.cpu import lc as lc_cpu
from lcengine.ops.geometry import window_geometry
from lcengine.ops.kernel_source import KERNEL_DIR

TOL = {np.float32: (1e-4, 1e-5), np.float64: (1e-10, 1e-12)}
DIRECTIONS = ("forward", "backward_input", "backward_weight")

# (N, C, (H, W), O, (kh, kw), (sh, sw), padding): batch 1, C = 1, odd and non-square sizes,
# strides 2 and 3 and mixed, kernels larger and smaller than the stride, 1×1 kernels, both
# paddings ("same" with TF's odd pixel at the bottom/right), and batches cut into several im2col
# chunks with a shorter last one (7 examples in chunks of 3; 5 in chunks of 1).
CASES = [
    (1, 1, (5, 7), 2, (3, 3), (2, 2), "same"),
    (2, 3, (6, 5), 4, (3, 2), (3, 1), "valid"),
    (1, 2, (7, 4), 3, (4, 4), (3, 3), "same"),
    (3, 2, (9, 6), 2, (5, 5), (2, 2), "valid"),
    (2, 2, (5, 5), 3, (1, 1), (2, 2), "same"),
    (2, 3, (8, 8), 4, (2, 2), (3, 3), "same"),
    (4, 3, (11, 9), 5, (3, 3), (1, 1), "same"),
    (7, 2, (9, 9), 2, (3, 3), (2, 2), "same"),
    (5, 3, (10, 17), 3, (9, 9), (4, 4), "same"),        # ImageNet-conv layer 1's kernel, stride
    (3, 1, (28, 28), 8, (3, 3), (2, 2), "same"),        # MNIST-conv layer 1, fewer channels
]
IDS = [f"n{n}c{c}{h}x{w}o{o}k{kh}x{kw}s{sh}x{sw}{pad}"
       for n, c, (h, w), o, (kh, kw), (sh, sw), pad in CASES]


def _setup(case, dtype, seed):
    N, C, hw, O, kernel, stride, padding = case
    (P, Q), pads = window_geometry(hw, kernel, stride, padding)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C) + hw).astype(dtype)
    K = rng.standard_normal((O, C) + kernel).astype(dtype)
    dy = rng.standard_normal((N, O, P, Q)).astype(dtype)
    return x, K, dy, stride, pads


def _call(ops, direction, x, K, dy, stride, pads):
    if direction == "forward":
        return ops.conv_forward(x, K, stride, pads)
    if direction == "backward_input":
        return ops.conv_backward_input(dy, K, x.shape[2:], stride, pads)
    return ops.conv_backward_weight(x, dy, K.shape[2:], stride, pads)


def _check(got, ref, direction, x, K, dy, dtype, seed, what):
    O, C, kh, kw = K.shape
    R = {"forward": C * kh * kw, "backward_input": O * kh * kw,
         "backward_weight": dy.shape[0] * dy.shape[2] * dy.shape[3]}[direction]
    rtol, atol = TOL[dtype]
    assert_close(got, ref, rtol=rtol, atol=atol * math.sqrt(R), seed=seed, what=what)


def test_cases_cover_chunking():
    """Case 7 runs im2col in chunks 3, 3, 1 and case 8 in chunks of 1 (see CASES)."""
    for case, want in ((CASES[7], 3), (CASES[8], 1)):
        N, C, (H, W), O, (kh, kw), stride, padding = case
        (P, Q), _ = window_geometry((H, W), (kh, kw), stride, padding)
        assert conv_cpu.chunk_size(N, C, H, W, O, P, Q, C * kh * kw) == want


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_cpu_face_matches_reference(case, direction, dtype):
    seed = CASES.index(case) * 10 + DIRECTIONS.index(direction)
    x, K, dy, stride, pads = _setup(case, dtype, seed)
    got = _call(conv_cpu, direction, x, K, dy, stride, pads)
    ref = _call(conv_ref, direction, x, K, dy, stride, pads)
    assert got.dtype == ref.dtype == dtype
    _check(got, ref, direction, x, K, dy, dtype, seed,
           f"conv_cpu.conv_{direction} {case} {np.dtype(dtype).name}")


def test_tied_lc_equals_conv():
    """An LC layer whose filters are all K is the convolution with K; its dW summed over the
    locations is the convolution's dK (the best oracle there is, independent of conv_ref)."""
    x, K, dy, stride, pads = _setup(CASES[6], np.float64, 5)
    P, Q = dy.shape[2:]
    W = np.broadcast_to(K, (P, Q) + K.shape)
    assert_close(conv_cpu.conv_forward(x, K, stride, pads), lc_cpu.lc_forward(x, W, stride, pads),
                 rtol=1e-10, atol=1e-11, seed=5, what="tied forward")
    assert_close(conv_cpu.conv_backward_input(dy, K, x.shape[2:], stride, pads),
                 lc_cpu.lc_backward_input(dy, W, x.shape[2:], stride, pads),
                 rtol=1e-10, atol=1e-11, seed=5, what="tied backward_input")
    assert_close(conv_cpu.conv_backward_weight(x, dy, K.shape[2:], stride, pads),
                 lc_cpu.lc_backward_weight(x, dy, K.shape[2:], stride, pads).sum(axis=(0, 1)),
                 rtol=1e-10, atol=1e-10, seed=5, what="tied backward_weight")


def test_strided_inputs_and_other_dtypes():
    """Non-contiguous views are accepted; dtypes other than float32/64, or mixed, take the
    reference."""
    x, K, dy, stride, pads = _setup(CASES[3], np.float64, 3)
    xt = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)   # same values
    dyv = np.ascontiguousarray(dy[:, ::-1])[:, ::-1]
    Kv = np.ascontiguousarray(K[:, :, ::-1])[:, :, ::-1]
    for direction in DIRECTIONS:
        assert_close(_call(conv_cpu, direction, xt, Kv, dyv, stride, pads),
                     _call(conv_ref, direction, x, K, dy, stride, pads),
                     rtol=1e-10, atol=1e-11, seed=3, what=f"strided {direction}")
    half = [a.astype(np.float16) for a in (x, K, dy)]
    x32, K32 = x.astype(np.float32), K.astype(np.float32)
    for direction, args in [(d, half) for d in DIRECTIONS] + [
            ("forward", (x32, K, dy)), ("backward_input", (x, K32, dy)),
            ("backward_weight", (x32, K, dy))]:
        got = _call(conv_cpu, direction, *args, stride, pads)
        want = _call(conv_ref, direction, *args, stride, pads)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def test_backend_picks_the_cpu_face():
    backend = get_backend("cpu")
    assert backend.faces["conv"] == "cpu"
    assert backend.ops.conv_backward_input is conv_cpu.conv_backward_input
    assert get_backend("cpu", kernels="ref").ops.conv_forward is conv_ref.conv_forward


def test_mismatches_are_named():
    x, K, dy, stride, pads = _setup(CASES[1], np.float32, 0)
    with pytest.raises(ValueError, match="conv_forward: x has 6 channels"):
        conv_cpu.conv_forward(np.concatenate([x, x], axis=1), K, stride, pads)
    with pytest.raises(ValueError, match="conv_backward_input: dy has 8 channels"):
        conv_cpu.conv_backward_input(np.concatenate([dy, dy], axis=1), K, x.shape[2:], stride,
                                     pads)
    with pytest.raises(ValueError, match="conv_backward_weight: dy has batch 4"):
        conv_cpu.conv_backward_weight(x, np.concatenate([dy, dy]), K.shape[2:], stride, pads)


# ----------------------------------------------------------------------------- kernels/conv.cu

@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    """kernels/conv.cu built for the host under tests/cuda_emu/emu.h (as test_cuda_emulated)."""
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("needs g++ (C++20) to build the host emulation of the CUDA kernels")
    emu_dir = Path(__file__).parent / "cuda_emu"
    lib = tmp_path_factory.mktemp("emu_conv") / "emu_conv.so"
    cmd = [gxx, "-std=c++20", "-O1", "-shared", "-fPIC", "-pthread", "-Wall", "-Werror",
           "-include", str(emu_dir / "emu.h"), "-I", str(KERNEL_DIR),
           str(emu_dir / "emu_conv.cpp"), "-o", str(lib)]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0 and "barrier" in run.stderr and "No such file" in run.stderr:
        pytest.skip("g++ lacks C++20 <barrier>; cannot build the CUDA host emulation")
    assert run.returncode == 0, f"host build of kernels/conv.cu failed:\n{run.stderr}"
    return ctypes.CDLL(str(lib))


def _emu(lib, name, a, out, geometry):
    """One launch of 3 blocks × 32 threads: few, so the grid-stride loops wrap many times."""
    rc = lib.emu_conv(name.encode(), 3, 32, a.ctypes.data_as(ctypes.c_void_p),
                      out.ctypes.data_as(ctypes.c_void_p), (ctypes.c_int * 13)(*geometry))
    assert rc == 0, f"no emulated kernel {name}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", [CASES[i] for i in (0, 1, 2, 5, 7, 8)],
                         ids=[IDS[i] for i in (0, 1, 2, 5, 7, 8)])
def test_cuda_kernels_emulated(emu, case, dtype):
    """conv_cuda's algorithm with the CUDA C of im2col/col2im emulated and NumPy for cuBLAS, on
    the chunks conv_cuda uses (the last one shorter)."""
    seed = CASES.index(case)
    x, K, dy, (sh, sw), pads = _setup(case, dtype, seed)
    N, C, H, W = x.shape
    O, _, kh, kw = K.shape
    P, Q = dy.shape[2:]
    R, suffix = C * kh * kw, {np.float32: "f32", np.float64: "f64"}[dtype]
    nb = conv_cpu.chunk_size(N, C, H, W, O, P, Q, R)
    y, dx, dK = (np.full((N, O, P, Q), np.nan, dtype), np.full(x.shape, np.nan, dtype),
                 np.zeros((O, R), dtype))
    for n0 in range(0, N, nb):
        n = min(nb, N - n0)
        geometry = [n0, n, C, H, W, P, Q, kh, kw, sh, sw, pads[0], pads[2]]
        cols = np.full((R, n * P * Q), np.nan, dtype)
        _emu(emu, f"conv_im2col_{suffix}", x, cols, geometry)
        y[n0:n0 + n] = (K.reshape(O, R) @ cols).reshape(O, n, P, Q).transpose(1, 0, 2, 3)
        dyt = np.ascontiguousarray(dy[n0:n0 + n].transpose(1, 0, 2, 3)).reshape(O, n * P * Q)
        dK += dyt @ cols.T
        _emu(emu, f"conv_col2im_{suffix}", np.ascontiguousarray(K.reshape(O, R).T @ dyt), dx,
             geometry)
    for direction, got in zip(DIRECTIONS, (y, dx, dK.reshape(K.shape))):
        _check(got, _call(conv_ref, direction, x, K, dy, (sh, sw), pads), direction, x, K, dy,
               dtype, seed, f"emulated conv.cu {direction} {case}")


# ----------------------------------------------------------------------------- the CUDA face

@pytest.fixture(scope="module")
def cupy():
    cp = pytest.importorskip("cupy", reason="the CUDA face needs CuPy (pip install "
                                            "'lcengine[gpu]')")
    try:
        if cp.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("CuPy found no CUDA device")
    except cp.cuda.runtime.CUDARuntimeError as err:
        pytest.skip(f"no usable CUDA device ({err})")
    return cp


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_cuda_face_matches_reference(cupy, case, dtype):
    from lcengine.ops import conv_cuda
    seed = CASES.index(case) + 100
    x, K, dy, stride, pads = _setup(case, dtype, seed)
    for direction in DIRECTIONS:
        got = _call(conv_cuda, direction, *(cupy.asarray(a) for a in (x, K, dy)), stride, pads)
        assert got.dtype == dtype
        _check(got.get(), _call(conv_ref, direction, x, K, dy, stride, pads), direction, x, K, dy,
               dtype, seed, f"conv_cuda.conv_{direction} {case} {np.dtype(dtype).name}")


@pytest.mark.gpu
def test_cuda_face_checks_arguments(cupy):
    from lcengine.ops import conv_cuda
    x, K, dy, stride, pads = _setup(CASES[1], np.float32, 0)
    xg, Kg, dyg = (cupy.asarray(a) for a in (x, K, dy))
    with pytest.raises(TypeError, match="conv_forward: x must be a cupy.ndarray"):
        conv_cuda.conv_forward(x, Kg, stride, pads)
    with pytest.raises(TypeError, match="conv_forward: K has dtype float64"):
        conv_cuda.conv_forward(xg, Kg.astype(cupy.float64), stride, pads)
    with pytest.raises(ValueError, match="conv_backward_input: dy must be C-contiguous"):
        conv_cuda.conv_backward_input(dyg[:, ::-1], Kg, x.shape[2:], stride, pads)
    with pytest.raises(ValueError, match="conv_backward_weight: dy has batch"):
        conv_cuda.conv_backward_weight(xg[:1], dyg, K.shape[2:], stride, pads)
