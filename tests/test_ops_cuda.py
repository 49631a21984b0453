"""Every CUDA face (lc_cuda, adam_cuda, targets_cuda on CuPy arrays) against the NumPy reference on
awkward shapes, plus the launchers' argument checks and compile errors. Marked `gpu`: skipped with
the reason where CuPy or a CUDA device is absent (CI, and any machine without a GPU)."""

import math

import numpy as np
import pytest
from gradcheck import assert_close, sum_rounding

from lcengine.ops import adam_ref, lc_ref
from lcengine.ops.geometry import window_geometry

pytestmark = pytest.mark.gpu

cupy = pytest.importorskip("cupy", reason="the CUDA faces need CuPy (pip install 'lcengine[gpu]')")
try:
    if cupy.cuda.runtime.getDeviceCount() < 1:
        pytest.skip("CuPy found no CUDA device", allow_module_level=True)
except cupy.cuda.runtime.CUDARuntimeError as err:
    pytest.skip(f"no usable CUDA device ({err})", allow_module_level=True)

from lcengine.ops import adam_cuda, cuda_common, lc_cuda  # noqa: E402

# Adam's results: |got − ref| ≤ atol + rtol·|ref| (the LC sums: gradcheck.sum_rounding, as FP32
# FMA sums in another order than NumPy's einsum; no TF32: the kernels are SIMT FP32); the
# reference is computed on the host
TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}

# N, C, H, W, O, kh, kw, sh, sw, padding: batch 1, odd, non-square, strides 1-3, both paddings,
# more than one 64-tile of N, O and K = C·kh·kw
CASES = [
    (1, 1, 5, 5, 1, 3, 3, 1, 1, "same"),
    (2, 3, 7, 9, 5, 3, 2, 2, 3, "same"),
    (3, 2, 11, 8, 4, 5, 3, 3, 2, "valid"),
    (65, 3, 9, 10, 70, 3, 3, 2, 2, "same"),
    (5, 20, 6, 7, 3, 2, 3, 1, 2, "valid"),
    (4, 3, 23, 21, 8, 9, 9, 4, 4, "same"),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c)))
def test_lc_faces_match_reference(case, dtype):
    N, C, H, W, O, kh, kw, sh, sw, padding = case
    (P, Q), pads = window_geometry((H, W), (kh, kw), (sh, sw), padding)
    seed = sum(case[:9])
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    Wt = rng.standard_normal((P, Q, O, C, kh, kw)).astype(dtype)
    dy = rng.standard_normal((N, O, P, Q)).astype(dtype)
    xd, Wd, dyd = cupy.asarray(x), cupy.asarray(Wt), cupy.asarray(dy)
    ax, aW, ady = abs(x), abs(Wt), abs(dy)              # Σ|terms|: the op on |inputs|
    sums = [
        ("lc_forward", lc_cuda.lc_forward(xd, Wd, (sh, sw), pads),
         lc_ref.lc_forward(x, Wt, (sh, sw), pads),
         sum_rounding(dtype, C * kh * kw, lc_ref.lc_forward(ax, aW, (sh, sw), pads))),
        ("lc_backward_input", lc_cuda.lc_backward_input(dyd, Wd, (H, W), (sh, sw), pads),
         lc_ref.lc_backward_input(dy, Wt, (H, W), (sh, sw), pads),
         sum_rounding(dtype, O * kh * kw,
                      lc_ref.lc_backward_input(ady, aW, (H, W), (sh, sw), pads))),
        ("lc_backward_weight", lc_cuda.lc_backward_weight(xd, dyd, (kh, kw), (sh, sw), pads),
         lc_ref.lc_backward_weight(x, dy, (kh, kw), (sh, sw), pads),
         sum_rounding(dtype, N, lc_ref.lc_backward_weight(ax, ady, (kh, kw), (sh, sw), pads))),
    ]
    for name, got, want, atol in sums:
        assert got.dtype == dtype
        assert_close(got.get(), want, rtol=0, atol=atol, seed=seed, what=f"{name} {case}")
    state = [Wt.copy(), 0.1 * np.abs(Wt), 0.5 + np.abs(Wt)]      # W, m, v: one Adam step
    on_device = [cupy.asarray(a) for a in state]
    lc_cuda.lc_backward_weight_adam(xd, dyd, (kh, kw), (sh, sw), pads, *on_device, 0.5, .9, .999,
                                    1e-8)
    lc_ref.lc_backward_weight_adam(x, dy, (kh, kw), (sh, sw), pads, *state, 0.5, .9, .999, 1e-8)
    got = cupy.stack(on_device)
    assert got.dtype == dtype
    assert_close(got.get(), np.stack(state), **TOL[dtype], seed=seed,
                 what=f"lc_backward_weight_adam {case}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1,), (3, 5, 7), (1001,), (300, 1000)], ids=str)
def test_adam_face_matches_reference(shape, dtype):
    seed = math.prod(shape)
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(shape).astype(dtype)
    ref = [p, np.zeros(shape, dtype), np.zeros(shape, dtype)]
    dev = [cupy.asarray(a) for a in ref]
    ref = [a.copy() for a in ref]
    for t in range(1, 4):
        g = rng.standard_normal(shape).astype(dtype)
        step, eps_hat = 1e-3 * math.sqrt(1 - .999**t) / (1 - .9**t), 1e-8 * math.sqrt(1 - .999**t)
        adam_cuda.adam_update(dev[0], cupy.asarray(g), dev[1], dev[2], step, .9, .999, eps_hat)
        adam_ref.adam_update(ref[0], g, ref[1], ref[2], step, .9, .999, eps_hat)
    for name, got, want in zip("pmv", dev, ref):
        assert_close(got.get(), want, rtol=TOL[dtype]["rtol"], atol=1e-7, seed=seed,
                     what=f"adam_update {name} {shape}")


def test_target_kernels_on_device():
    """The Numba CUDA face, imported here only: a numba-cuda that fails to import fails this
    test, not the module's CuPy tests."""
    from lcengine.ops import targets_cuda
    from test_targets import check_face

    class OnDevice:                  # NumPy in and out, so the shared checker runs it on CuPy
        @staticmethod
        def difference_target(*arrays):
            return targets_cuda.difference_target(*map(cupy.asarray, arrays)).get()

        @staticmethod
        def tanh_regression(h, t):
            loss, grad = targets_cuda.tanh_regression(cupy.asarray(h), cupy.asarray(t))
            return loss, grad.get()

    check_face(OnDevice, [(1, 1), (3, 5, 7), (2, 3, 17, 19), (64, 4097)],
               [np.float32, np.float64])


def test_launchers_reject_bad_arguments():
    x = cupy.zeros((2, 3, 5, 5), cupy.float32)
    W = cupy.zeros((5, 5, 4, 3, 3, 3), cupy.float32)
    with pytest.raises(TypeError, match="lc_forward: W has dtype float64"):
        lc_cuda.lc_forward(x, W.astype(cupy.float64), (1, 1), (1, 1, 1, 1))
    with pytest.raises(ValueError, match="lc_forward: x must be C-contiguous"):
        lc_cuda.lc_forward(x.transpose(0, 1, 3, 2), W, (1, 1), (1, 1, 1, 1))
    with pytest.raises(ValueError, match="lc_forward: .* do not fit"):
        lc_cuda.lc_forward(x, W, (1, 1), (0, 0, 0, 0))
    with pytest.raises(ValueError, match="lc_backward_input: dy has shape"):
        lc_cuda.lc_backward_input(cupy.zeros((2, 4, 5, 4), cupy.float32), W, (5, 5), (1, 1),
                                  (1, 1, 1, 1))
    with pytest.raises(TypeError, match="adam_update: p must be a cupy.ndarray"):
        adam_cuda.adam_update(np.zeros(3), *[cupy.zeros(3)] * 3, 1.0, .9, .9, 1e-8)


def test_broken_kernel_source_names_its_file(tmp_path, monkeypatch):
    broken = tmp_path / "broken.cu"
    broken.write_text('extern "C" __global__ void k(float* a) { a[0] = undefined_name; }\n')
    monkeypatch.setattr(cuda_common, "kernel_path", lambda name: tmp_path / name)
    with pytest.raises(cuda_common.KernelCompileError, match="broken.cu"):
        cuda_common.kernel_function("broken.cu", "k")
