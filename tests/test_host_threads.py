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


def test_a_policy_the_user_set_is_kept(monkeypatch):
    from lcengine.ops import host_threads

    monkeypatch.setenv("OMP_WAIT_POLICY", "active")
    monkeypatch.setattr(host_threads.parallel, "_is_initialized", False)
    assert host_threads.sleep_when_idle() is False
    assert os.environ["OMP_WAIT_POLICY"] == "active"
