"""DFA's seeded on-the-fly feedback: the fast CPU face against the reference, and B's law."""

import numpy as np
import pytest

from lcengine.ops import feedback_cpu, feedback_ref

TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_batch, n_classes, n_units", [(1, 10, 1), (3, 7, 1001), (5, 1000, 257)])
@pytest.mark.parametrize("cache_entries", [0, feedback_cpu.CACHE_ENTRIES], ids=["hashed", "stored"])
def test_cpu_face_matches_reference(dtype, n_batch, n_classes, n_units, cache_entries, monkeypatch):
    monkeypatch.setattr(feedback_cpu, "CACHE_ENTRIES", cache_entries)
    e = np.random.default_rng(n_units).standard_normal((n_batch, n_classes)).astype(dtype)
    ref = feedback_ref.random_feedback(e, 2018, n_units, 0.05, block=100)
    got = feedback_cpu.random_feedback(e, 2018, n_units, 0.05)
    assert got.dtype == dtype and got.shape == (n_batch, n_units)
    np.testing.assert_allclose(got, ref, **TOL[dtype])


def test_reference_is_e_times_explicit_b_transpose():
    e = np.random.default_rng(1).standard_normal((4, 10))
    B = feedback_ref.feedback_matrix(7, np.arange(333), 10, 0.2, np.float64)     # (M, K)
    np.testing.assert_allclose(feedback_ref.random_feedback(e, 7, 333, 0.2, block=64), e @ B.T,
                               rtol=1e-13, atol=1e-13)


def test_b_is_fixed_per_seed_uniform_and_seed_dependent():
    rows = np.arange(20000)
    B = feedback_ref.feedback_matrix(11, rows, 10, 0.5, np.float64)
    assert np.array_equal(B, feedback_ref.feedback_matrix(11, rows, 10, 0.5, np.float64))
    assert B.min() >= -0.5 and B.max() < 0.5
    assert abs(B.mean()) < 0.005 and abs(B.std() - 0.5 / np.sqrt(3)) < 0.005
    other = feedback_ref.feedback_matrix(12, rows, 10, 0.5, np.float64)
    assert abs(np.corrcoef(B.ravel(), other.ravel())[0, 1]) < 0.01


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cuda_face_matches_reference(dtype):
    cupy = pytest.importorskip("cupy", reason="the CUDA face needs CuPy (pip install 'lcengine[gpu]')")
    if cupy.cuda.runtime.getDeviceCount() < 1:
        pytest.skip("the CUDA face needs a CUDA GPU")
    from lcengine.ops import feedback_cuda
    e = np.random.default_rng(3).standard_normal((37, 1000)).astype(dtype)
    got = feedback_cuda.random_feedback(cupy.asarray(e), 99, 3001, 0.01).get()
    np.testing.assert_allclose(got, feedback_ref.random_feedback(e, 99, 3001, 0.01), **TOL[dtype])
