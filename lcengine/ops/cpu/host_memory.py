"""glibc's malloc, set once per process so that the CPU faces' big temporaries cost no page faults.

Every CPU op allocates arrays of a few MB per call (transposed operands, patch buffers, results)
and frees them. By default glibc adapts: a freed block above its mmap threshold raises the
threshold, and free memory at the top of the heap beyond twice that is given back to the kernel.
Which of the two happens depends on what the process allocated before, so the same op can fetch
fresh pages from the kernel on every call — each 4 KiB page one fault, zero-filled. Measured on
MNIST-LC layer 2's input gradient (batch 128): 2.4 ms per call alone, 9.4 ms (3,100 faults per
call) after one call of layer 1's forward. `keep_freed_memory` sets two things (either alone
fails: about 4,000 faults per step above with mmap off alone): no block is mmap'ed, so every block
comes from the heap, however large (the mmap threshold cannot do that: glibc caps it at 32 MiB,
and ImageNet-LC layer 3's 361 MB weight gradient was mapped and unmapped on every call, 57 ms of
system time in a 94 ms op at batch 32); and freed heap memory is kept for the next step instead
of being trimmed. The price is that the process keeps its peak heap size; a training step's
working set is allocated again every step anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util

from . import probes

M_TRIM_THRESHOLD = -1      # mallopt parameters (malloc.h)
M_MMAP_MAX = -4            # how many blocks may be mmap'ed at once; 0: none
TRIM_THRESHOLD = 1 << 30

_done = None


def _libc_mallopt():
    return ctypes.CDLL(ctypes.util.find_library("c")).mallopt


def keep_freed_memory() -> bool:
    """Apply the settings (once per process); False where the C library is not glibc or has no
    `mallopt` (glibc's defaults stay: the same results, more page faults), and while the fast
    CPU face is switched off (`probes`)."""
    global _done
    if not probes.fast_cpu_enabled():
        return False
    if _done is None:
        try:
            mallopt = _libc_mallopt()
        except (OSError, AttributeError, TypeError):
            _done = False
        else:
            mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            _done = all([mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD),
                         mallopt(M_MMAP_MAX, 0)])
    return _done
