"""Idle OpenMP threads sleep instead of spinning: set once per process, before Numba starts them.

Numba's parallel regions (the LC ops, Adam, the TP targets, DFA's hashed feedback) run on GNU
OpenMP, whose idle threads by default spin for about 10 ms after every region (measured here:
9.5 ms of CPU burnt in the 10 ms after a region, 10.6 ms in the 50 ms after it). A training step
runs many regions between its BLAS calls, so on a 2-core machine one core was always spinning
and OpenBLAS's threads (the dense layers, the conv faces) ran on what was left. Median ms per
step at batch 128 on 2 threads, default against OMP_WAIT_POLICY=PASSIVE (interleaved runs):
MNIST-LC BP 84-114 against 59-66, MNIST-FC SDTP 108-136 against 14-17. The price is a thread
wake-up (50-90 µs here) at the start of each region instead of a spinning thread ready to go,
which is why each LC op is as few regions as it can be. An OMP_WAIT_POLICY the user has set is
left alone.

OpenBLAS's own worker threads (the dense layers' matmuls) spin likewise after each call, for 2^28
cycles: the whole of a 50 ms sleep after a 512² matmul on 2 threads. `lcengine/__init__.py` sets
OPENBLAS_THREAD_TIMEOUT=16 (2^16 cycles) before NumPy loads OpenBLAS: 0.1 ms burnt, and the
MNIST-LC BP step on 2 threads used 75-82 ms of CPU instead of 95-103 (docs/performance.md).
"""

from __future__ import annotations

import os

from numba.np.ufunc import parallel


def sleep_when_idle() -> bool:
    """Ask for passive waiting unless the user chose a policy; False when it is too late (Numba's
    threads have started) or another policy is set."""
    if getattr(parallel, "_is_initialized", False):     # Numba's private flag; absent: assume not
        return os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE"
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return os.environ["OMP_WAIT_POLICY"].upper() == "PASSIVE"
