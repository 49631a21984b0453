"""The CPU backend's malloc settings: big per-call temporaries cost no page faults."""

import subprocess
import sys
import textwrap

import pytest

from lcengine.ops.cpu.host_memory import keep_freed_memory

# MNIST-LC at batch 128: layer 2's input gradient (a step's backward) and layer 1's forward (the
# next step's start), alternately. With glibc's default settings this loop took about 2,500 page
# faults per step (the input gradient fetched fresh pages on every call, 4x its time); with
# them, about 2.
STEP = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from lcengine.backend import get_backend
    ops = get_backend("cpu").ops
    rng = np.random.default_rng(0)
    x1 = rng.standard_normal((128, 1, 28, 28), dtype=np.float32)
    W1 = rng.standard_normal((14, 14, 32, 1, 3, 3), dtype=np.float32)
    W2 = rng.standard_normal((7, 7, 64, 32, 3, 3), dtype=np.float32)
    dy2 = rng.standard_normal((128, 64, 7, 7), dtype=np.float32)
    def step():
        ops.lc_backward_input(dy2, W2, (14, 14), (2, 2), (0, 1, 0, 1))
        ops.lc_forward(x1, W1, (2, 2), (0, 1, 0, 1))
    step(); step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        step()
    print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5)
""")


# A result above glibc's 32 MiB mmap-threshold cap (ImageNet-LC's weight gradients are 146 and
# 361 MB), allocated, filled and dropped per call: without mmap off, each call maps fresh pages
# (one fault per 4 KiB page, or per 2 MiB huge page).
BIG = textwrap.dedent("""
    import resource
    import numpy as np
    from lcengine.ops.cpu.host_memory import keep_freed_memory
    assert keep_freed_memory()
    def call():
        np.ones(64 << 20, dtype=np.float32)            # 256 MiB
    call()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        call()
    print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5)
""")


def _faults_per_call(script):
    return float(subprocess.run([sys.executable, "-c", script], check=True, capture_output=True,
                                text=True).stdout)


def test_settings_are_applied_once_and_report_success():
    first = keep_freed_memory()
    assert keep_freed_memory() is first
    if sys.platform.startswith("linux"):
        assert first, "glibc's mallopt should accept every setting"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings")
def test_a_cpu_training_step_reuses_its_memory():
    faults = _faults_per_call(STEP)
    assert faults < 50, f"{faults} page faults per step: the ops' temporaries are not reused"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings")
def test_a_block_above_the_mmap_cap_is_reused():
    faults = _faults_per_call(BIG)
    assert faults < 20, f"{faults} page faults per 256 MiB block: it is mapped afresh every call"
