"""The CPU backend's OpenMP setting: idle threads sleep between parallel regions, not spin."""

import os
import subprocess
import sys
import textwrap

import pytest

# After one parallel region, the CPU the process burns while its main thread sleeps 50 ms: GNU
# OpenMP's default spins the idle worker for about 10 ms (measured: 10.6 ms); sleeping workers
# burn next to nothing.
IDLE = textwrap.dedent("""
    import time
    import numpy as np
    from lcengine.backend import get_backend
    ops = get_backend("cpu").ops
    x = np.ones((8, 2, 9, 9), dtype=np.float32)
    W = np.ones((5, 5, 3, 2, 3, 3), dtype=np.float32)
    burnt = []
    for _ in range(5):
        ops.lc_forward(x, W, (2, 2), (1, 1, 1, 1))
        start = time.process_time()
        time.sleep(0.05)
        burnt.append(time.process_time() - start)
    print(sorted(burnt)[2] * 1e3)
""")


def _idle_cpu_ms(env):
    out = subprocess.run([sys.executable, "-c", IDLE], env=env, capture_output=True, text=True,
                         check=True)
    return float(out.stdout)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one core: no worker to spin")
def test_idle_openmp_threads_sleep():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["NUMBA_NUM_THREADS"] = "2"
    assert _idle_cpu_ms(env) < 3.0
    assert _idle_cpu_ms({**env, "OMP_WAIT_POLICY": "active"}) > 6.0    # the check can fail


def _threads_not_started():
    raise ValueError("Threading layer is not initialized.")


def test_a_policy_the_user_set_is_kept(monkeypatch):
    import numba

    from lcengine.ops.cpu import host_threads

    monkeypatch.setenv("OMP_WAIT_POLICY", "active")
    monkeypatch.setattr(numba, "threading_layer", _threads_not_started)
    assert host_threads.sleep_when_idle() is False
    assert os.environ["OMP_WAIT_POLICY"] == "active"


def test_nothing_is_set_with_the_fast_face_off(monkeypatch):
    import numba

    from lcengine.ops.cpu import host_threads

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setenv("LCENGINE_FAST_CPU", "0")
    monkeypatch.setattr(numba, "threading_layer", _threads_not_started)
    assert host_threads.sleep_when_idle() is False
    assert "OMP_WAIT_POLICY" not in os.environ


# The same for OpenBLAS's worker threads after a two-thread matmul: its default spins the idle
# worker for 2^28 cycles, the whole 50 ms (measured: 50.1 ms); lcengine sets 2^16 (0.1 ms).
BLAS_IDLE = textwrap.dedent("""
    import time
    from lcengine.ops.cpu.host_threads import blas_threads_sleep_soon
    blas_threads_sleep_soon()
    import numpy as np
    a = np.ones((512, 512), dtype=np.float32)
    burnt = []
    for _ in range(5):
        a @ a
        start = time.process_time()
        time.sleep(0.05)
        burnt.append(time.process_time() - start)
    print(sorted(burnt)[2] * 1e3)
""")


def _blas_idle_cpu_ms(env):
    out = subprocess.run([sys.executable, "-c", BLAS_IDLE], env=env, capture_output=True,
                         text=True, check=True)
    return float(out.stdout)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one core: no worker to spin")
def test_idle_openblas_threads_sleep_soon():
    from lcengine.ops.cpu import cblas

    if cblas.openblas() is None:
        pytest.skip("NumPy's BLAS is not the SciPy OpenBLAS build")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    env["OPENBLAS_NUM_THREADS"] = "2"
    assert _blas_idle_cpu_ms(env) < 5.0
    assert _blas_idle_cpu_ms({**env, "OPENBLAS_THREAD_TIMEOUT": "28"}) > 20.0   # the user's kept


def test_the_command_sets_the_blas_timeout_before_numpy_loads():
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    out = subprocess.run([sys.executable, "-c", "import os, lcengine.cli\n"
                          "from lcengine.ops.cpu.host_threads import blas_idle_timeout\n"
                          "print(os.environ['OPENBLAS_THREAD_TIMEOUT'], blas_idle_timeout())"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["16", "16"]
