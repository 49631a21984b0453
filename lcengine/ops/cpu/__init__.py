"""The fast CPU faces' machinery: what the `F_cpu.py` faces of `lcengine/ops` are built on.

    lc.py            the LC ops' kernels (one Numba parallel region per op)
    cblas.py         OpenBLAS's ?gemm and ?omatcopy called from Numba code
    simd.py          register-blocked product kernels written in LLVM IR
    flat.py          the elementwise faces' operands as 1-D views in one memory order
    tuning.py        cache sizes and the thresholds that pick a kernel by shape
    probes.py        the one switch (LCENGINE_FAST_CPU) and the warning of a failed probe
    host_threads.py  thread settings (OpenMP, OpenBLAS) the CPU backend applies
    host_memory.py   malloc settings the CPU backend applies
    kernel_cache.py  where Numba caches the compiled kernels

Every machine-specific or non-public dependency sits behind one guarded probe; a probe that
fails leaves the plain NumPy path, with one warning (docs/design.md, "The CPU subsystem's probes").
Importing this package changes no process-wide state; `lcengine.backend.get_backend("cpu")`
applies the host settings.
"""
