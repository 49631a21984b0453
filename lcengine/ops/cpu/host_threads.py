"""Idle worker threads sleep instead of spinning: OpenMP's (Numba's regions) and OpenBLAS's.

Numba's parallel regions (the LC ops, Adam, the TP targets, DFA's hashed feedback) run on GNU
OpenMP, whose idle threads by default spin for about 10 ms after every region (measured here:
9.5 ms of CPU burnt in the 10 ms after a region, 10.6 ms in the 50 ms after it). A training step
runs many regions between its BLAS calls, so on a 2-core machine one core was always spinning
and OpenBLAS's threads (the dense layers, the conv faces) ran on what was left. Median ms per
step at batch 128 on 2 threads, default against OMP_WAIT_POLICY=PASSIVE (interleaved runs):
MNIST-LC BP 84-114 against 59-66, MNIST-FC SDTP 108-136 against 14-17. The price is a thread
wake-up (50-90 µs here) at the start of each region instead of a spinning thread ready to go,
which is why each LC op is as few regions as it can be. `sleep_when_idle` sets it; the CPU
backend calls it when it is made, before Numba starts its threads.

OpenBLAS's own worker threads (the dense layers' matmuls) spin likewise after each call, for 2^28
cycles: the whole of a 50 ms sleep after a 512² matmul on 2 threads. OPENBLAS_THREAD_TIMEOUT=16
(2^16 cycles) leaves 0.1 ms burnt, and the MNIST-LC BP step on 2 threads used 75-82 ms of CPU
instead of 95-103 (docs/performance.md). OpenBLAS reads it once, when NumPy loads it, so
`blas_threads_sleep_soon` must run before NumPy is imported: the `lcengine` command and the
benchmark scripts call it first thing. This module imports neither NumPy nor Numba for that.

A value the user set is kept, and with the fast CPU face switched off (LCENGINE_FAST_CPU=0)
nothing is set.
"""

from __future__ import annotations

import os
import sys

from . import probes

BLAS_IDLE_TIMEOUT = "16"                  # OPENBLAS_THREAD_TIMEOUT: 2^16 cycles
_blas_timeout_read = None                 # the value OpenBLAS read, once known


def blas_threads_sleep_soon() -> bool:
    """Set OPENBLAS_THREAD_TIMEOUT unless the user set it; True when a timeout (the user's or
    this one) is set and NumPy, so OpenBLAS, was not loaded before the first call."""
    global _blas_timeout_read
    if _blas_timeout_read is None:
        if probes.fast_cpu_enabled():
            os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", BLAS_IDLE_TIMEOUT)
        loaded_before = "numpy" in sys.modules
        _blas_timeout_read = "" if loaded_before else os.environ.get("OPENBLAS_THREAD_TIMEOUT", "")
    return _blas_timeout_read != ""


def blas_idle_timeout() -> str | None:
    """The OPENBLAS_THREAD_TIMEOUT OpenBLAS read, if `blas_threads_sleep_soon` ran first."""
    return _blas_timeout_read or None


def sleep_when_idle() -> bool:
    """Ask for passive waiting unless the user chose a policy or the fast face is off; True when
    passive waiting is asked for. Too late once Numba's threads have started, which
    `numba.threading_layer()` tells: it answers only then."""
    import numba

    try:
        numba.threading_layer()
    except ValueError:                     # "Threading layer is not initialized": in time
        if probes.fast_cpu_enabled():
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE"
