"""The LC ops' fast CPU face (`lcengine.ops.cpu.lc`) against the reference (`lc_ref`), the
definition: every direction, float32 and float64, on awkward shapes. "backward_weight_adam" is
the weight gradient fused into Adam's update: its result here is the updated (W, m, v), stacked.

Tolerance, |got − ref| ≤ atol + rtol·|ref| with R the length of the sum behind each element
(forward C·kh·kw, backward_input O·kh·kw, backward_weight N) and unit-variance operands:
  float32  rtol 1e-4,  atol 1e-5·√R   (BLAS and einsum sum in different orders)
  float64  rtol 1e-10, atol 1e-12·√R
"""

import math

import numba
import numpy as np
import pytest
from gradcheck import assert_close

from lcengine.backend import get_backend
from lcengine.ops import adam_cpu, lc_ref
from lcengine.ops.cpu import cblas, tuning
from lcengine.ops.cpu import lc as lc_cpu
from lcengine.ops.geometry import window_geometry

TOL = {np.float32: (1e-4, 1e-5), np.float64: (1e-10, 1e-12)}

# (N, C, (H, W), O, (kh, kw), (sh, sw), padding): batch 1, odd and non-square sizes, stride 2 and
# 3, kernels wider and narrower than the stride, 1×1 kernels, C = 1, both paddings, and output
# sizes whose P·Q is odd so the split between worker threads falls inside an output row. Forward
# with K = C·kh·kw ≤ 16 takes the direct kernel (a chunk of 64 images at a time); the rest run
# their per-location products on BLAS or on `simd`'s kernels as `lc_cpu.product_kernel` picks,
# and `test_both_product_paths` forces each.
CASES = [
    (1, 1, (5, 7), 2, (3, 3), (2, 2), "same"),
    (2, 3, (6, 5), 4, (3, 2), (3, 1), "valid"),
    (1, 2, (7, 4), 3, (4, 4), (3, 3), "same"),
    (3, 2, (9, 6), 2, (5, 5), (2, 2), "valid"),
    (2, 2, (5, 5), 3, (1, 1), (2, 2), "same"),
    (5, 4, (13, 11), 6, (5, 5), (2, 2), "same"),
    (4, 3, (11, 9), 5, (3, 3), (1, 1), "same"),
    (3, 1, (28, 28), 8, (3, 3), (2, 2), "same"),        # MNIST-LC layer 1, narrower and shorter
    (2, 5, (10, 17), 3, (9, 9), (4, 4), "same"),        # ImageNet-LC layer 1's kernel and stride
    (70, 2, (9, 8), 5, (2, 3), (1, 2), "same"),         # direct forward (K = 12): 64 + 6 images
]
IDS = [f"n{n}c{c}{h}x{w}o{o}k{kh}x{kw}s{sh}x{sw}{pad}"
       for n, c, (h, w), o, (kh, kw), (sh, sw), pad in CASES]
DIRECTIONS = ("forward", "backward_input", "backward_weight", "backward_weight_adam")
#: step, β1, β2, ε̂ of the fused Adam: a big step, so that W's update carries the gradient's errors
ADAM = (0.5, 0.9, 0.999, 1e-8)


def _setup(case, dtype, seed):
    N, C, hw, O, kernel, stride, padding = case
    (P, Q), pads = window_geometry(hw, kernel, stride, padding)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C) + hw).astype(dtype)
    W = rng.standard_normal((P, Q, O, C) + kernel).astype(dtype)
    dy = rng.standard_normal((N, O, P, Q)).astype(dtype)
    return x, W, dy, stride, pads


def _call(ops, direction, x, W, dy, stride, pads):
    if direction == "forward":
        return ops.lc_forward(x, W, stride, pads)
    if direction == "backward_input":
        return ops.lc_backward_input(dy, W, x.shape[2:], stride, pads)
    if direction == "backward_weight":
        return ops.lc_backward_weight(x, dy, W.shape[4:], stride, pads)
    rng = np.random.default_rng(W.size)
    state = (W.copy(), (0.1 * rng.standard_normal(W.shape)).astype(W.dtype),
             (0.5 + rng.random(W.shape)).astype(W.dtype))
    ops.lc_backward_weight_adam(x, dy, W.shape[4:], stride, pads, *state, *ADAM)
    return np.stack(state)


def _sum_length(direction, x, W):
    P, Q, O, C, kh, kw = W.shape
    return {"forward": C * kh * kw, "backward_input": O * kh * kw,
            "backward_weight": x.shape[0], "backward_weight_adam": x.shape[0]}[direction]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_cpu_face_matches_reference(case, direction, dtype):
    seed = CASES.index(case) * 10 + DIRECTIONS.index(direction)
    x, W, dy, stride, pads = _setup(case, dtype, seed)
    got = _call(lc_cpu, direction, x, W, dy, stride, pads)
    ref = _call(lc_ref, direction, x, W, dy, stride, pads)
    assert got.dtype == ref.dtype == dtype
    rtol, atol = TOL[dtype]
    assert_close(got, ref, rtol=rtol, atol=atol * math.sqrt(_sum_length(direction, x, W)),
                 seed=seed, what=f"lc_cpu.lc_{direction} {case} {np.dtype(dtype).name}")


def test_transposed_lc_inverse_is_backward_input_with_its_own_weights():
    """The TP inverse layer runs lc_backward_input with weights V of W's layout (design.md)."""
    x, W, dy, stride, pads = _setup(CASES[5], np.float32, 7)
    V = np.random.default_rng(8).standard_normal(W.shape).astype(np.float32)
    got = lc_cpu.lc_backward_input(dy, V, x.shape[2:], stride, pads)
    assert_close(got, lc_ref.lc_backward_input(dy, V, x.shape[2:], stride, pads),
                 rtol=1e-4, atol=1e-5 * math.sqrt(V.shape[2] * 25), seed=8, what="inverse")


def test_strided_inputs_and_other_dtypes():
    """Non-contiguous views are accepted; dtypes other than float32/64 take the reference."""
    x, W, dy, stride, pads = _setup(CASES[3], np.float64, 3)
    xt = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)   # same values
    dyv = np.ascontiguousarray(dy[:, ::-1])[:, ::-1]
    for direction in DIRECTIONS:
        assert_close(_call(lc_cpu, direction, xt, W, dyv, stride, pads),
                     _call(lc_ref, direction, x, W, dy, stride, pads),
                     rtol=1e-10, atol=1e-11, seed=3, what=f"strided {direction}")
    half = [a.astype(np.float16) for a in (x, W, dy)]
    for direction in DIRECTIONS:
        got = _call(lc_cpu, direction, *half, stride, pads)
        np.testing.assert_array_equal(got, _call(lc_ref, direction, *half, stride, pads))


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("case", [0, 5, 8, 9], ids=[IDS[i] for i in (0, 5, 8, 9)])
def test_batch_last_operands_and_results(case, direction):
    """x and dy in either memory order give the reference's values; y and dx come back with the
    batch innermost (the order the next LC op reads without a transpose)."""
    x, W, dy, stride, pads = _setup(CASES[case], np.float64, 21)
    ref = _call(lc_ref, direction, x, W, dy, stride, pads)
    x_last, dy_last = lc_cpu.batch_last(x), lc_cpu.batch_last(dy)
    for xs, dys in ((x_last, dy), (x, dy_last), (x_last, dy_last)):
        got = _call(lc_cpu, direction, xs, W, dys, stride, pads)
        assert_close(got, ref, rtol=1e-10, atol=1e-12 * math.sqrt(_sum_length(direction, x, W)),
                     seed=21, what=f"batch-last {direction} {CASES[case]}")
        if direction in ("forward", "backward_input") and len(got) > 1:
            assert got.strides[0] == got.itemsize, "the batch is not innermost"


def test_chained_layers_stay_batch_last():
    """Layer 2 reads layer 1's output in the memory it came in (no copy), and the values hold
    through an elementwise op in between, as in training."""
    x, W1, _, stride, pads = _setup(CASES[6], np.float64, 22)
    h = np.tanh(lc_cpu.lc_forward(x, W1, stride, pads))
    assert lc_cpu.is_batch_last(h)
    W2 = np.random.default_rng(23).standard_normal(W1.shape[:2] + (3, W1.shape[2], 3, 3))
    assert_close(lc_cpu.lc_forward(h, W2, (1, 1), (1, 1, 1, 1)),
                 lc_ref.lc_forward(np.ascontiguousarray(h), W2, (1, 1), (1, 1, 1, 1)),
                 rtol=1e-10, atol=1e-11, seed=22, what="layer 2 on layer 1's output")


def test_backend_picks_the_cpu_face():
    backend = get_backend("cpu")
    assert backend.faces["lc"] == "cpu"
    assert backend.ops.lc_forward is lc_cpu.lc_forward
    assert get_backend("cpu", kernels="ref").ops.lc_forward is lc_ref.lc_forward


def test_channel_mismatch_is_named():
    x, W, dy, stride, pads = _setup(CASES[0], np.float32, 0)
    with pytest.raises(ValueError, match="lc_forward: x has 2 channels"):
        lc_cpu.lc_forward(np.concatenate([x, x], axis=1), W, stride, pads)
    with pytest.raises(ValueError, match="lc_backward_input: dy has 3x3 locations but W has 3x4"):
        lc_cpu.lc_backward_input(np.ascontiguousarray(dy[..., :3]), W, x.shape[2:], stride, pads)
    with pytest.raises(ValueError, match="lc_backward_weight: x has 1 images but dy has 2"):
        lc_cpu.lc_backward_weight(x, np.concatenate([dy, dy]), W.shape[4:], stride, pads)


@pytest.mark.parametrize("case", [5, 9], ids=["blas", "direct-forward"])
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_under_another_blas(direction, case, monkeypatch):
    """Without the SciPy OpenBLAS build under NumPy (Accelerate, MKL): no cblas symbols to call
    from Numba, so the op runs row by row as batched np.matmul calls on the calling thread."""
    monkeypatch.setattr(cblas, "openblas", lambda: None)
    x, W, dy, stride, pads = _setup(CASES[case], np.float32, 11)
    ref = _call(lc_ref, direction, x, W, dy, stride, pads)
    for xs, dys in ((x, dy), (lc_cpu.batch_last(x), lc_cpu.batch_last(dy))):
        assert_close(_call(lc_cpu, direction, xs, W, dys, stride, pads), ref, rtol=1e-4,
                     atol=1e-5 * math.sqrt(_sum_length(direction, x, W)), seed=11,
                     what=f"another BLAS: {direction}")


@pytest.mark.parametrize("parts", [3, 7])
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_more_parts_than_this_machine_has_cores(direction, parts, monkeypatch):
    """Split into 3 or 7 parts (a bigger machine): parts that share input rows, and several
    parts inside one output row (MNIST-LC layer 1 narrowed, and an 'valid' case whose last input
    rows no window touches)."""
    monkeypatch.setattr(lc_cpu, "_parts", lambda blas_threads: parts)
    for case in (CASES[1], CASES[7], (3, 2, (4, 9), 3, (3, 2), (2, 2), "same")):
        x, W, dy, stride, pads = _setup(case, np.float64, 14)
        assert_close(_call(lc_cpu, direction, x, W, dy, stride, pads),
                     _call(lc_ref, direction, x, W, dy, stride, pads), rtol=1e-10,
                     atol=1e-12 * math.sqrt(_sum_length(direction, x, W)), seed=14,
                     what=f"{parts} parts: {direction} {case}")


def _every_case_through(kind, direction, seed, label, cases=CASES):
    """Every case, both dtypes, with the products forced onto `kind`, against `lc_ref`."""
    for dtype in (np.float32, np.float64):
        rtol, atol = TOL[dtype]
        for case in cases:
            x, W, dy, stride, pads = _setup(case, dtype, seed)
            with lc_cpu.forced_products(kind):
                got = _call(lc_cpu, direction, x, W, dy, stride, pads)
            assert_close(got, _call(lc_ref, direction, x, W, dy, stride, pads), rtol=rtol,
                         atol=atol * math.sqrt(_sum_length(direction, x, W)), seed=seed,
                         what=f"{kind} {direction} {case} {dtype.__name__}{label}")


@pytest.mark.parametrize("kind", lc_cpu.PRODUCTS)
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_both_product_paths(direction, kind):
    """Every case through `simd`'s kernels and through ?gemm, whichever the shape would pick:
    row and vector counts that leave partial blocks, columns past the last vector (batch 1, 5,
    70), K of 1 to 81, both dtypes."""
    _every_case_through(kind, direction, 15, "")


@pytest.mark.parametrize("direction, kind", [("forward", "simd"), ("backward_input", "blas"),
                                             ("backward_input", "simd"),
                                             ("backward_weight", "blas"),
                                             ("backward_weight", "simd")])
def test_cache_plan_changes_nothing(monkeypatch, direction, kind):
    """The paths `_cache_plan` takes only on ImageNet-sized layers (`simd` prefetching the next
    location's W, the input gradient on BLAS reading W[l] first, the weight gradient streamed
    out of a per-thread buffer), forced on every case."""
    monkeypatch.setattr(lc_cpu, "_cache_plan", lambda *args: True)
    wide = [(3, 2, (9, 7), 14, (3, 3), (2, 1), "same"),    # O > 9: `simd`'s 6-row blocks, and
            (20, 3, (7, 6), 11, (3, 2), (1, 2), "valid")]  # batches below and above a vector
    _every_case_through(kind, direction, 16, ", cache plan on", CASES + wide)


def test_cache_plan_follows_the_measurements(monkeypatch):
    """Only where the A/B gained (docs/performance.md), on the caches
    of the machine those were measured on: the plan reads the host's."""
    monkeypatch.setattr(tuning, "L2_BYTES", 512 << 10)
    monkeypatch.setattr(tuning, "LAST_LEVEL_BYTES", 32 << 20)

    def plan(direction, kernel, L, O, K, N):
        return lc_cpu._cache_plan(direction, kernel, L, O * K * 4, K * N * 4)
    assert plan("backward_input", "blas", 784, 96, 1200, 32)          # ImageNet-LC layer 3
    assert not plan("backward_input", "blas", 256, 128, 1600, 128)    # CIFAR-LC layer 2
    assert not plan("backward_input", "simd", 196, 32, 9, 128)        # MNIST-LC layer 1
    assert plan("backward_input", "simd", 3136, 48, 243, 32)          # ImageNet-LC layer 1
    assert not plan("backward_input", "simd", 784, 96, 1200, 32)      # ImageNet-LC layer 3
    assert plan("forward", "simd", 3136, 48, 243, 32)                 # ImageNet-LC layer 1
    assert not plan("forward", "simd", 784, 96, 1200, 32)             # ImageNet-LC layer 3
    assert not plan("forward", "simd", 49, 64, 288, 128)              # MNIST-LC layer 2
    assert plan("backward_weight", "blas", 3136, 48, 243, 32)         # ImageNet-LC layer 1
    assert plan("backward_weight", "blas", 784, 96, 1200, 32)         # ImageNet-LC layer 3
    assert not plan("backward_weight", "blas", 49, 64, 288, 128)      # MNIST-LC layer 2


@pytest.mark.parametrize("direction, K, N, itemsize, kind", [
    ("forward", 9, 128, 4, "direct"),              # MNIST-LC layer 1
    ("forward", 288, 128, 4, "simd"),              # MNIST-LC layer 2
    ("forward", 1600, 128, 4, "blas"),             # CIFAR-LC layer 2
    ("forward", 1200, 32, 4, "simd"),              # ImageNet-LC layer 3
    ("backward_input", 9, 128, 4, "simd"),         # MNIST-LC layer 1
    ("backward_input", 288, 128, 4, "blas"),       # MNIST-LC layer 2: a 144 KiB patch
    ("backward_input", 75, 128, 4, "simd"),        # CIFAR-LC layer 1
    ("backward_input", 1152, 128, 4, "blas"),      # CIFAR-LC layer 3
    ("backward_input", 1728, 32, 4, "simd"),       # ImageNet-LC layer 7 at batch 32
    ("backward_input", 1200, 64, 4, "blas"),       # ImageNet-LC layer 3 at batch 64
    ("backward_input", 243, 128, 4, "simd"),       # ImageNet-LC layer 1 at batch 128
    ("backward_input", 1200, 32, 8, "blas"),       # the same in float64: 256-byte rows
    ("backward_weight", 75, 128, 4, "simd"),       # CIFAR-LC layer 1
    ("backward_weight", 243, 32, 4, "blas"),       # ImageNet-LC layer 1
])
def test_product_kernel_follows_the_measurements(direction, K, N, itemsize, kind):
    """Each direction's products where they were measured fastest (docs/performance.md)."""
    assert lc_cpu.product_kernel(direction, K, N, itemsize) == kind


def test_forced_products_names_a_bad_kind_and_restores_the_choice():
    rule = lc_cpu.product_kernel("forward", 288, 128, 4)
    with pytest.raises(ValueError, match="'cuda' is not one of simd, blas"):
        with lc_cpu.forced_products("cuda"):
            pass
    with lc_cpu.forced_products("blas"):
        assert lc_cpu.product_kernel("forward", 288, 128, 4) == "blas"
    assert lc_cpu.product_kernel("forward", 288, 128, 4) == rule == "simd"


@pytest.mark.parametrize("case", [0, 7, 9])
def test_small_k_forward_by_blas_too(case):
    """The shapes that take the direct forward kernel give the same through the BLAS path."""
    x, W, dy, stride, pads = _setup(CASES[case], np.float64, 12)
    direct = lc_cpu.lc_forward(x, W, stride, pads)
    with lc_cpu.forced_products("blas"):
        by_blas = lc_cpu.lc_forward(x, W, stride, pads)
    assert_close(by_blas, direct, rtol=1e-12, atol=1e-12, seed=12,
                 what=f"direct vs BLAS forward {CASES[case]}")


def _openblas():
    blas = cblas.openblas()
    if blas is None:
        pytest.skip("NumPy's BLAS is not the SciPy OpenBLAS build: lc_cpu runs on one thread")
    return blas


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_ops_leave_blas_threads_and_follow_the_callers_limit(direction, monkeypatch):
    """An op's threads call BLAS single-threaded and the op restores the process's BLAS thread
    count after it (OpenBLAS has one count per process: a setting that stuck would leave every
    later matmul of the process on one core); it splits its work into no more parts than the
    caller allows BLAS threads (`lcengine train --threads`, threadpoolctl)."""
    from threadpoolctl import threadpool_limits

    blas = _openblas()
    x, W, dy, stride, pads = _setup(CASES[5], np.float32, 13)
    seen = []                       # (parts, BLAS threads) of every whole-op call
    for name in ("_forward", "_backward_input", "_backward_weight"):
        monkeypatch.setattr(lc_cpu, name, lambda *a, op=getattr(lc_cpu, name):
                            seen.append((a[-1], blas.get_threads())) or op(*a))
    with threadpool_limits(2, user_api="blas"):
        before = blas.get_threads()
        _call(lc_cpu, direction, x, W, dy, stride, pads)
        assert blas.get_threads() == before
        assert seen == [(min(before, lc_cpu._CORES, numba.get_num_threads()), 1)]
    seen.clear()
    with threadpool_limits(1, user_api="blas"):
        _call(lc_cpu, direction, x, W, dy, stride, pads)
        assert blas.get_threads() == 1
    assert seen == [(1, 1)]


@pytest.mark.parametrize("kind", lc_cpu.PRODUCTS)
def test_fused_adam_is_adam_on_this_faces_gradient(kind):
    """The fused op is `adam_update(W, lc_backward_weight(...))` of the same face to the last
    bits but rounding: the same products into a buffer, then the same element update."""
    for case in (CASES[0], CASES[5], CASES[8]):
        x, W, dy, stride, pads = _setup(case, np.float64, 31)
        with lc_cpu.forced_products(kind):
            fused = _call(lc_cpu, "backward_weight_adam", x, W, dy, stride, pads)
            dW = lc_cpu.lc_backward_weight(x, dy, W.shape[4:], stride, pads)
        rng = np.random.default_rng(W.size)
        state = (W.copy(), 0.1 * rng.standard_normal(W.shape), 0.5 + rng.random(W.shape))
        adam_cpu.adam_update(state[0], dW, state[1], state[2], *ADAM)
        assert_close(fused, np.stack(state), rtol=1e-14, atol=1e-14, seed=31,
                     what=f"fused Adam {kind} {case}")


def test_fused_adam_names_bad_state():
    x, W, dy, stride, pads = _setup(CASES[5], np.float32, 32)
    m, v = np.zeros_like(W), np.ones_like(W)
    args = (x, dy, W.shape[4:], stride, pads)
    with pytest.raises(ValueError, match=r"lc_backward_weight_adam: W is \(2, 2"):
        lc_cpu.lc_backward_weight_adam(*args, W[:2, :2].copy(), m, v, *ADAM)
    with pytest.raises(ValueError, match="lc_backward_weight_adam: m is float64"):
        lc_cpu.lc_backward_weight_adam(*args, W, m.astype(np.float64), v, *ADAM)
    with pytest.raises(ValueError, match="lc_backward_weight_adam: v must be C-contiguous"):
        lc_cpu.lc_backward_weight_adam(*args, W, m, np.asfortranarray(v), *ADAM)
    with pytest.raises(ValueError, match="lc_backward_weight_adam: x has 5 images but dy has 10"):
        lc_cpu.lc_backward_weight_adam(x, np.concatenate([dy, dy]), *args[2:], W, m, v, *ADAM)
