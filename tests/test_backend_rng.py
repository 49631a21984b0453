"""The backend's seeded random source: the noise the TP rules add to activations."""

import numpy as np

from lcengine.backend import get_backend
from lcengine.ops import lc_cpu

BACKEND = get_backend("cpu")


def test_normal_like_follows_the_arrays_memory_order():
    h = np.zeros((64, 3, 5, 7), np.float32)
    for a in (h, lc_cpu.batch_last(h), h[:, :, ::2]):
        eps = BACKEND.rng(0).normal_like(a, 0.5)
        assert eps.shape == a.shape and eps.dtype == a.dtype
        assert lc_cpu.is_batch_last(eps) == lc_cpu.is_batch_last(a)
        assert lc_cpu.is_batch_last(a + eps) == lc_cpu.is_batch_last(a)
        assert abs(float(eps.mean())) < 0.03 and abs(float(eps.std()) - 0.5) < 0.03


def test_normal_like_is_seeded_and_resumes_from_a_saved_state():
    a = lc_cpu.batch_last(np.zeros((8, 2, 3, 3)))
    one, two = BACKEND.rng(7), BACKEND.rng(7)
    assert np.array_equal(one.normal_like(a), two.normal_like(a))
    saved = one.state
    first = one.normal_like(a, 0.1)
    two.state = saved
    assert np.array_equal(two.normal_like(a, 0.1), first)
    assert not np.array_equal(BACKEND.rng(8).normal_like(a, 0.1), first)


def test_uniform_below_is_drawn_in_its_dtype_and_resumes_from_a_saved_state():
    rng = BACKEND.rng(3)
    saved = rng.state
    for dtype in (np.float32, np.float64):
        u = rng.uniform_below((200, 300), 0.25, dtype=dtype)
        assert u.dtype == dtype and u.min() >= 0 and u.max() < 0.25
        assert abs(float(u.mean()) - 0.125) < 0.002
    rng.state = saved
    assert np.array_equal(rng.uniform_below((200, 300), 0.25), BACKEND.rng(3).uniform_below(
        (200, 300), 0.25))
