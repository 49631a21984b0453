"""The CUDA C of kernels/lc.cu and kernels/adam.cu, run on the CPU under a host emulation of CUDA
(tests/cuda_emu/emu.h: a std::thread per CUDA thread, a barrier per block) and checked against
the references. This checks the kernels' index logic, tiling, bounds checks and scatter without a
GPU; it says nothing about speed, and the GPU run itself is tests/test_ops_cuda.py.

Needs g++ with C++20 (<barrier>, std::atomic_ref); skipped with the reason otherwise. The grids
below are the ones lcengine/ops/lc_cuda.py launches (tiles of 64, one z-layer per location).
"""

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from gradcheck import assert_close

from lcengine.ops import adam_ref, lc_ref
from lcengine.ops.geometry import window_geometry
from lcengine.ops.kernel_source import KERNEL_DIR

EMU_DIR = Path(__file__).parent / "cuda_emu"
TILE = 64                                                   # TILE in kernels/lc.cu and lc_cuda.py
# |got − ref| ≤ atol + rtol·|ref|: the kernels sum in a different order than einsum
TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}
SUFFIX = {np.float32: "f32", np.float64: "f64"}

# N, C, H, W, O, kh, kw, sh, sw, padding: batch 1, > 1 tile of N and O, K = C·kh·kw > 1 tile,
# odd and non-square sizes, strides 1-3, both paddings
CASES = [
    (1, 1, 5, 5, 1, 3, 3, 1, 1, "same"),
    (2, 3, 7, 9, 5, 3, 2, 2, 3, "same"),
    (65, 2, 5, 4, 66, 3, 2, 2, 3, "same"),
    (1, 20, 4, 5, 3, 2, 3, 1, 2, "valid"),
    (3, 2, 11, 8, 4, 5, 3, 3, 2, "valid"),
]


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("needs g++ (C++20) to build the host emulation of the CUDA kernels")
    lib = tmp_path_factory.mktemp("emu") / "emu.so"
    cmd = [gxx, "-std=c++20", "-O1", "-shared", "-fPIC", "-pthread", "-Wall", "-Werror",
           "-include", str(EMU_DIR / "emu.h"), "-I", str(KERNEL_DIR),
           str(EMU_DIR / "emu_entry.cpp"), "-o", str(lib)]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0 and "barrier" in run.stderr and "No such file" in run.stderr:
        pytest.skip("g++ lacks C++20 <barrier>; cannot build the CUDA host emulation")
    assert run.returncode == 0, f"host build of kernels failed:\n{run.stderr}"
    return ctypes.CDLL(str(lib))


def _ptr(a):
    return a.ctypes.data_as(ctypes.c_void_p)


def _lc(lib, name, grid, a, b, out, geometry):
    rc = lib.emu_lc(name.encode(), *(ctypes.c_int(v) for v in grid), _ptr(a), _ptr(b), _ptr(out),
                    (ctypes.c_int * 13)(*geometry))
    assert rc == 0, f"no emulated kernel {name}"


def _tiles(n):
    return (n + TILE - 1) // TILE


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c)))
def test_lc_kernels_match_reference(emu, case, dtype):
    N, C, H, W, O, kh, kw, sh, sw, padding = case
    (P, Q), pads = window_geometry((H, W), (kh, kw), (sh, sw), padding)
    seed = sum(case[:9])
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    Wt = rng.standard_normal((P, Q, O, C, kh, kw)).astype(dtype)
    dy = rng.standard_normal((N, O, P, Q)).astype(dtype)
    geometry = [N, C, H, W, O, P, Q, kh, kw, sh, sw, pads[0], pads[2]]
    K, s = C * kh * kw, SUFFIX[dtype]

    y = np.full((N, O, P, Q), np.nan, dtype)
    _lc(emu, f"lc_forward_{s}", (_tiles(O), _tiles(N), P * Q), x, Wt, y, geometry)
    assert_close(y, lc_ref.lc_forward(x, Wt, (sh, sw), pads), **TOL[dtype], seed=seed,
                 what=f"lc_forward_{s} {case}")

    dx = np.zeros((N, C, H, W), dtype)
    _lc(emu, f"lc_backward_input_{s}", (_tiles(K), _tiles(N), P * Q), dy, Wt, dx, geometry)
    assert_close(dx, lc_ref.lc_backward_input(dy, Wt, (H, W), (sh, sw), pads), **TOL[dtype],
                 seed=seed, what=f"lc_backward_input_{s} {case}")

    dW = np.full(Wt.shape, np.nan, dtype)
    _lc(emu, f"lc_backward_weight_{s}", (_tiles(K), _tiles(O), P * Q), x, dy, dW, geometry)
    assert_close(dW, lc_ref.lc_backward_weight(x, dy, (kh, kw), (sh, sw), pads), **TOL[dtype],
                 seed=seed, what=f"lc_backward_weight_{s} {case}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_kernel_matches_reference(emu, dtype):
    rng = np.random.default_rng(7)
    n = 1000                                # 2 blocks of 256 threads: the grid-stride loop wraps
    p, g, m = (rng.standard_normal(n).astype(dtype) for _ in range(3))
    v = np.abs(rng.standard_normal(n)).astype(dtype)
    ref = [a.copy() for a in (p, g, m, v)]
    step, beta1, beta2, eps_hat = 1e-3, 0.9, 0.999, 1e-8
    adam_ref.adam_update(*ref, step, beta1, beta2, eps_hat)
    scalars = np.array([step, beta1, 1 - beta1, beta2, 1 - beta2, eps_hat], dtype)
    kernel = emu.emu_adam_f32 if dtype == np.float32 else emu.emu_adam_f64
    kernel(2, 256, _ptr(p), _ptr(g), _ptr(m), _ptr(v), ctypes.c_longlong(n), _ptr(scalars))
    for name, got, want in (("p", p, ref[0]), ("m", m, ref[2]), ("v", v, ref[3])):
        assert_close(got, want, **TOL[dtype], seed=7, what=f"adam_update {name}")
