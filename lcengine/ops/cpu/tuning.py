"""The numbers that pick a kernel by shape, and the cache sizes they are compared with.

The thresholds are named for what they measure: the bytes of one location's patch (K × N
numbers), the patch length K = C·kh·kw, the batch N. They were set where each kernel was the
faster on the LC layers of the paper's nets (`lc.product_kernel`, docs/performance.md).

The cache sizes are read from Linux's sysfs: the L2 of cpu0 and its last level. Where sysfs
does not say (another OS, a container that hides it), the sizes of the development machine
below are assumed, without a warning: they only steer when weights are prefetched or streamed
(`lc._cache_plan`), never what is computed.
"""

from __future__ import annotations

from pathlib import Path

#: forward: the direct kernel (no product call at all) for a patch length K up to this
DIRECT_FORWARD_MAX_K = 16
#: forward: `simd.gemm_nn` while one location's patch (K × N numbers) is at most this
SIMD_FORWARD_MAX_PATCH_BYTES = 256 * 1024
#: input gradient: `simd.gemm_tn` for a patch of at most this ...
SIMD_INPUT_GRADIENT_MAX_PATCH_BYTES = 128 * 1024
#: ... or of at most SIMD_FORWARD_MAX_PATCH_BYTES when a batch column of the patch (N numbers)
#: is at most this (32 float32)
THIN_BATCH_MAX_BYTES = 128
#: weight gradient: `simd.gemm_nt` for a patch length K up to this and a batch N of at least
SIMD_WEIGHT_GRADIENT_MAX_K = 128
SIMD_WEIGHT_GRADIENT_MIN_BATCH = 64

SYSFS_CACHES = Path("/sys/devices/system/cpu/cpu0/cache")
DEFAULT_L2_BYTES = 512 << 10
DEFAULT_LAST_LEVEL_BYTES = 32 << 20


def _size(text: str) -> int:
    """sysfs's "512K" / "32M" / "1024" as bytes."""
    text = text.strip()
    unit = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:].upper(), 1)
    return int(text[:-1] if unit > 1 else text) * unit


def cache_sizes(caches: Path = SYSFS_CACHES) -> tuple[int, int]:
    """(L2 bytes, last-level bytes) of cpu0's data or unified caches, from sysfs; the defaults
    above for any level that cannot be read."""
    levels = {}
    try:
        for index in caches.glob("index*"):
            if (index / "type").read_text().strip() in ("Data", "Unified"):
                levels[int((index / "level").read_text())] = _size((index / "size").read_text())
    except (OSError, ValueError):
        levels = {}
    l2 = levels.get(2, DEFAULT_L2_BYTES)
    last = levels[max(levels)] if levels and max(levels) > 2 else DEFAULT_LAST_LEVEL_BYTES
    return l2, last


L2_BYTES, LAST_LEVEL_BYTES = cache_sizes()
