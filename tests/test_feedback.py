"""DFA's seeded on-the-fly feedback: the fast CPU face against the reference, and B's law."""

import numpy as np
import pytest

from lcengine.ops import feedback_cpu, feedback_ref
from lcengine.ops.cpu import cblas
from lcengine.ops.cpu import lc as lc_cpu

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


@pytest.mark.parametrize("parts", [1, 3])
@pytest.mark.parametrize("openblas", [True, False], ids=["blocked", "without-openblas"])
def test_hashed_paths_match_reference(openblas, parts, monkeypatch):
    """B made _ROWS rows at a time and multiplied by OpenBLAS from each thread, split into 1 or 3
    parts (a part's last block short); without the SciPy OpenBLAS build, one number at a time."""
    monkeypatch.setattr(feedback_cpu, "CACHE_ENTRIES", 0)
    monkeypatch.setattr(lc_cpu, "_parts", lambda blas_threads: parts)
    if not openblas:
        monkeypatch.setattr(cblas, "openblas", lambda: None)
    for dtype in (np.float32, np.float64):
        e = np.random.default_rng(3).standard_normal((6, 31)).astype(dtype)
        n_units = 3 * feedback_cpu._ROWS + 5
        got = feedback_cpu.random_feedback(e, 5, n_units, 0.1)
        np.testing.assert_allclose(got, feedback_ref.random_feedback(e, 5, n_units, 0.1),
                                   **TOL[dtype])


def test_blocks_of_b_are_the_reference_numbers_exactly():
    B = np.empty((7, 13), np.float32)
    feedback_cpu._fill_rows(B, np.uint64(11), 40, 13, 0.3)
    assert np.array_equal(B, feedback_ref.feedback_matrix(11, np.arange(40, 47), 13, 0.3,
                                                          np.float32))


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
    cupy = pytest.importorskip("cupy",
                               reason="the CUDA face needs CuPy (pip install 'lcengine[gpu]')")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("the CUDA face needs a CUDA GPU")
    except cupy.cuda.runtime.CUDARuntimeError as err:      # CuPy installed, no driver
        pytest.skip(f"no usable CUDA device ({err})")
    from lcengine.ops import feedback_cuda
    e = np.random.default_rng(3).standard_normal((37, 1000)).astype(dtype)
    got = feedback_cuda.random_feedback(cupy.asarray(e), 99, 3001, 0.01).get()
    np.testing.assert_allclose(got, feedback_ref.random_feedback(e, 99, 3001, 0.01), **TOL[dtype])
