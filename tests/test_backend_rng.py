"""The backend's seeded random source: the noise the TP rules add to activations."""

import json
from types import SimpleNamespace

import numpy as np

from lcengine.backend import Rng, get_backend
from lcengine.ops.cpu import lc as lc_cpu

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


class _PhiloxStandIn:
    """What Rng uses of cupy.random.RandomState(method=PHILOX), on the host: reseeded per draw."""

    def __init__(self, method):
        assert method == _DEVICE.cuda.curand.CURAND_RNG_PSEUDO_PHILOX4_32_10

    def seed(self, key):
        self.generator = np.random.Generator(np.random.Philox(key))

    def standard_normal(self, size, dtype):
        return self.generator.standard_normal(size, dtype=dtype)

    def uniform(self, low, high, size):
        return self.generator.uniform(low, high, size)

    def random_sample(self, size, dtype):
        return self.generator.random(size, dtype=dtype)


_DEVICE = SimpleNamespace(random=SimpleNamespace(RandomState=_PhiloxStandIn),
                          cuda=SimpleNamespace(curand=SimpleNamespace(
                              CURAND_RNG_PSEUDO_PHILOX4_32_10=5)))


def test_device_draws_resume_from_a_json_state():
    """The GPU's state is (seed, draws so far): plain JSON in a checkpoint, and a restored source
    draws what the uninterrupted one drew (the real generator: tests/test_gpu_backend.py)."""
    one, two = Rng(_DEVICE, 7), Rng(_DEVICE, 7)
    assert np.array_equal(one.normal((3, 4)), two.normal((3, 4)))
    saved = json.loads(json.dumps(one.state))
    first = [one.normal_like(np.zeros((5, 2), np.float32), 0.1), one.uniform((6,), -1, 1)]
    assert first[0].dtype == np.float32 and first[1].dtype == np.float32
    assert not np.array_equal(first[0], one.normal((5, 2), 0.1))        # the counter moved on
    two.state = saved
    assert np.array_equal(two.normal((5, 2), 0.1), first[0])
    assert np.array_equal(two.uniform((6,), -1, 1), first[1])
    below = one.uniform_below((4, 3), 0.25)
    assert below.dtype == np.float32 and 0 <= below.min() and below.max() < 0.25
    assert not np.array_equal(Rng(_DEVICE, 8).normal((3, 4)), Rng(_DEVICE, 7).normal((3, 4)))


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
