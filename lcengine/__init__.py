"""lcengine: biologically-motivated learning rules on hand-written kernels, no autograd."""

import os
import sys

#: OpenBLAS's idle threads spin for 2^28 cycles (about 80 ms here) after every multi-threaded call
#: before they sleep, and take a core from the Numba regions and NumPy code that follow. 2^16
#: cycles (about 20 µs) still bridges back-to-back BLAS calls. OpenBLAS reads the variable once,
#: when NumPy loads it, so it is set here, before lcengine imports NumPy; a value the user set is
#: kept. True when it could take effect (NumPy was not loaded yet). See ops/host_threads.py.
BLAS_IDLE_TIMEOUT_SET = "numpy" not in sys.modules
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "16")

__version__ = "0.1.0"
