"""The fast CPU face's one switch, and the warning a failed probe gives.

Each machine-specific or non-public thing the fast CPU face stands on is looked up by one probe
(docs/design.md, "The CPU subsystem's probes"): OpenBLAS's symbols (`cblas.openblas`), the LLVM
kernels (`simd.usable`), the cache sizes (`tuning`), the malloc and thread settings
(`host_memory`, `host_threads`) and Numba's cache directory (`kernel_cache`). A probe that fails
leaves the op its plain NumPy path, with the same numbers, and says so once per process
(`unavailable`).

LCENGINE_FAST_CPU=0 turns the fast face off: every probe answers "not available" without a
warning, so every CPU op runs its plain NumPy path and the CPU backend leaves the process's
malloc, thread and environment settings alone. It is read on every call, so a test can flip it.
"""

from __future__ import annotations

import os
import warnings

SWITCH = "LCENGINE_FAST_CPU"
_ON, _OFF = ("1", "true", "yes", "on", ""), ("0", "false", "no", "off")


class FastPathWarning(RuntimeWarning):
    """A probe of the fast CPU face failed: an op runs its plain NumPy path instead."""


def fast_cpu_enabled() -> bool:
    """False when LCENGINE_FAST_CPU says off (0, false, no, off); a ValueError for a value that
    is neither on nor off."""
    value = os.environ.get(SWITCH, "").strip().lower()
    if value in _OFF:
        return False
    if value not in _ON:
        raise ValueError(f"{SWITCH}={os.environ[SWITCH]!r}: expected 1 (fast CPU face) or 0 "
                         "(plain NumPy paths)")
    return True


def unavailable(what: str, why: str, instead: str) -> None:
    """Warn that the probe of `what` failed (`why`) and what runs `instead`. Called from the
    probes, which are evaluated once per process, so this warns once per failed probe."""
    warnings.warn(f"lcengine: {what} unavailable ({why}); {instead}. {SWITCH}=0 chooses that "
                  "path without this warning.", FastPathWarning, stacklevel=3)
