"""The GPU backend beyond the ops: the pinned, double-buffered host feed (`_pinned_feed`) delivers
every batch, in order, unchanged, while the host reuses its arrays and the GPU is busy; and the
GPU's random source. Marked `gpu`: skipped with the reason where CuPy or a CUDA device is
absent."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from lcengine.backend import Backend, Rng, get_backend

pytestmark = pytest.mark.gpu

cupy = pytest.importorskip("cupy",
                           reason="the GPU backend needs CuPy (pip install 'lcengine[gpu]')")
try:
    if cupy.cuda.runtime.getDeviceCount() < 1:
        pytest.skip("CuPy found no CUDA device", allow_module_level=True)
except cupy.cuda.runtime.CUDARuntimeError as err:
    pytest.skip(f"no usable CUDA device ({err})", allow_module_level=True)


def _without_faces():
    """The GPU backend's feed alone: no op face is loaded (the Numba CUDA face's import has its
    own test), so a broken numba-cuda cannot hide the feed's result."""
    return Backend(name="gpu", xp=cupy, ops=SimpleNamespace(), faces={})


def test_pinned_feed_delivers_every_batch_in_order_while_the_host_reuses_its_buffers():
    backend = _without_faces()
    rng = np.random.default_rng(0)
    # shapes change mid-stream (a last, smaller batch), and the host overwrites one array
    # in place after yielding it, as a loader reusing its buffers would
    shapes = [(64, 3, 32, 32)] * 5 + [(17, 3, 32, 32)]
    expected = [(rng.standard_normal(s).astype(np.float32), rng.integers(0, 10, s[0]))
                for s in shapes]
    reused = np.empty(shapes[0], np.float32)

    def batches():
        for x, labels in expected:
            if x.shape == reused.shape:
                reused[...] = x
                yield reused, labels
            else:
                yield x, labels

    busy = cupy.ones((2048, 2048), cupy.float32)
    got = []
    for x, labels in backend.device_batches(batches()):
        assert isinstance(x, cupy.ndarray) and isinstance(labels, cupy.ndarray)
        for _ in range(4):                               # keep the compute stream busy
            busy = busy @ busy / 2048
        got.append((x.get(), labels.get()))
    assert len(got) == len(expected)
    for (x, labels), (want_x, want_labels) in zip(got, expected):
        np.testing.assert_array_equal(x, want_x)
        np.testing.assert_array_equal(labels, want_labels)


def test_gpu_backend_runs_the_cuda_faces():
    backend = get_backend("gpu")
    assert backend.xp is cupy
    assert {"lc", "adam", "targets", "feedback", "conv"} <= {
        family for family, face in backend.faces.items() if face == "cuda"}


def test_gpu_random_state_is_json_and_resumes():
    one = Rng(cupy, 5)
    one.normal((7,))
    saved = json.loads(json.dumps(one.state))
    first = one.normal((1001,), 0.5).get()
    assert abs(first.mean()) < 0.1 and abs(first.std() - 0.5) < 0.05
    two = Rng(cupy, 0)
    two.state = saved
    np.testing.assert_array_equal(two.normal((1001,), 0.5).get(), first)
    assert two.uniform((3,), 0, 1).dtype == np.float32
