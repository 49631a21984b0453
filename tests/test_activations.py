"""Activation ops: the float32 rational tanh against float64 tanh, the fast CPU face against the
reference (shapes, dtypes, memory orders), and the activations' backward passes."""

import numpy as np
import pytest
from gradcheck import assert_close

from lcengine.backend import get_backend
from lcengine.layers.activations import activation
from lcengine.ops import activation_cpu, activation_ref
from lcengine.ops.cpu import cblas
from lcengine.ops.cpu import lc as lc_cpu
from lcengine.ops.cpu.flat import flat_operands
from lcengine.ops.tanh_math import tanh32

f32 = np.float32
# tanh32 is within 4.0e-7 of tanh (tanh_math's docstring); the backward pass is the same
# arithmetic in both faces
TOL = {np.float32: dict(rtol=5e-7, atol=5e-7), np.float64: dict(rtol=1e-15, atol=1e-15)}
SHAPES = [(1, 1), (3, 5, 7), (2, 3, 17, 19), (5, 1001), (1, 48, 5, 9)]


def test_tanh32_is_within_its_stated_error():
    dense = np.linspace(-12, 12, 2_000_001, dtype=np.float64).astype(f32)
    tiny = f32(10) ** np.linspace(-30, 1, 20_001).astype(f32)
    x = np.concatenate([dense, tiny, -tiny])
    got = activation_cpu.tanh(x)
    want = np.tanh(x.astype(np.float64))
    err = np.abs(got.astype(np.float64) - want)
    assert err.max() <= 4.0e-7
    assert (err <= 4.0e-7 * np.abs(want) + 1e-45).all(), "relative error above 4e-7"
    assert np.array_equal(np.sign(got), np.sign(x)), "tanh keeps the sign (and ±0)"
    assert got.max() == 1 and got.min() == -1
    # not monotone to the last ulp, but a step back is within the error bound, twice over
    assert np.diff(got[:dense.size]).min() >= -2 * 4.0e-7


def test_tanh32_special_values_in_the_vector_loop_and_its_tail():
    for n in (1, 7, 8, 9, 33):
        x = np.full(n, np.nan, f32)
        x[::3] = np.inf
        x[1::5] = -np.inf
        got = activation_cpu.tanh(x)
        want = np.tanh(x)
        assert np.array_equal(got, want, equal_nan=True), (n, got, want)
    assert tanh32(f32(-0.0)) == 0 and np.signbit(tanh32(f32(-0.0)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_cpu_face_matches_reference(shape, dtype):
    rng = np.random.default_rng(sum(shape))
    a = (3 * rng.standard_normal(shape)).astype(dtype)
    dh = rng.standard_normal(shape).astype(dtype)
    h = activation_cpu.tanh(a)
    assert h.dtype == dtype and h.shape == shape
    assert_close(h, activation_ref.tanh(a), **TOL[dtype], what=f"tanh {shape}")
    da = activation_cpu.tanh_backward(dh, h)
    assert da.dtype == dtype and da.shape == shape
    assert_close(da, activation_ref.tanh_backward(dh, h), **TOL[dtype],
                 what=f"tanh_backward {shape}")


def test_cpu_face_keeps_the_memory_order_of_its_first_operand():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 3, 5, 6)).astype(f32)
    dh = rng.standard_normal(a.shape).astype(f32)
    a_last = lc_cpu.batch_last(a)
    h = activation_cpu.tanh(a_last)
    assert lc_cpu.is_batch_last(h)
    assert_close(h, np.tanh(a), **TOL[np.float32])
    for dh_any in (lc_cpu.batch_last(dh), dh, dh[:, ::-1].copy()[:, ::-1]):
        da = activation_cpu.tanh_backward(dh_any, h)
        assert lc_cpu.is_batch_last(lc_cpu.batch_last(h)) and da.shape == a.shape
        assert_close(da, activation_ref.tanh_backward(dh, h), **TOL[np.float32])
    assert lc_cpu.is_batch_last(activation_cpu.tanh_backward(lc_cpu.batch_last(dh), h))


def test_cpu_face_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="tanh_backward: shapes differ"):
        activation_cpu.tanh_backward(np.zeros((2, 3), f32), np.zeros((3, 2), f32))


@pytest.mark.parametrize("kernels", ["ref", "fast"])
def test_activation_backward_is_the_chain_rule(kernels):
    """backward(dh, a, h) = dh ⊙ f'(a), f' by central differences, for each activation."""
    ops = get_backend("cpu", kernels).ops
    rng = np.random.default_rng(5)
    a = rng.standard_normal((3, 7)) + 0.05              # no ReLU input within 1e-6 of its kink
    dh = rng.standard_normal(a.shape)
    for name in ("tanh", "relu", "identity"):
        f = activation(name, ops)
        step = 1e-6
        numeric = dh * (f(a + step) - f(a - step)) / (2 * step)
        assert_close(f.backward(dh, a, f(a)), numeric, rtol=1e-7, atol=1e-8, what=name)


@pytest.mark.parametrize("openblas", [True, False], ids=["omatcopy", "numpy"])
def test_operands_in_another_order_are_copied_into_the_firsts(openblas, monkeypatch):
    """`flat.flat_operands` gives every operand the first's memory order: a batch-first one is
    transposed by ?omatcopy (or NumPy, without the SciPy OpenBLAS) into batch-last memory (odd
    sizes, one image, empty), any other layout copied."""
    if not openblas:
        monkeypatch.setattr(cblas, "openblas", lambda: None)
    rng = np.random.default_rng(7)
    for shape in [(1, 3, 2, 2), (9, 5, 3, 7), (33, 17), (4, 0, 3), (1, 1)]:
        h = lc_cpu.batch_last(rng.standard_normal(shape).astype(f32))
        for other in (rng.standard_normal(shape).astype(f32),                     # batch first
                      rng.standard_normal(shape[::-1]).astype(f32).T,             # reversed
                      rng.standard_normal(shape)):                                # float64
            (h1, o1), out = flat_operands((h, other), "test")
            assert out.dtype == np.result_type(h, other) and lc_cpu.is_batch_last(out)
            assert np.array_equal(o1, lc_cpu.batch_last(other.astype(out.dtype)).ravel(order="K"))
