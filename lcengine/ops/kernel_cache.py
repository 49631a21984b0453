"""Numba's cache of this directory's compiled kernels, emptied when any source here changes.

Numba reuses a cached function while its own source file is unchanged, but our kernels compile
functions of other files into themselves: `simd`'s products into `lc_cpu`'s ops, `tanh_math`
into the activation and target passes, `cblas` into everything that calls BLAS. After an edit
of simd.py alone, `lc_cpu` would go on running the old products from its cache, and so would
an editable install after a `git pull`. So the cache
directory carries a fingerprint of every source here, and a cache made from other sources is
emptied before anything in it is loaded (`lcengine.ops` does this on import). Costs one
recompilation after a change, as a fresh clone has.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from numba.core import caching

STAMP = "lcengine-sources.sha256"
SOURCES = Path(__file__).parent


def fingerprint(directory: Path = SOURCES) -> str:
    """SHA-256 over the names and contents of the directory's Python sources."""
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def cache_directory(source: Path = Path(__file__)) -> Path | None:
    """Where Numba keeps the cached kernels of `source`'s directory: the same locators in the
    same order as Numba (NUMBA_CACHE_DIR, then __pycache__ beside the sources if writable, then a
    user-wide directory); None if none applies, or if this Numba keeps its locators elsewhere
    (they are Numba internals: the package must still import, with Numba's own caching)."""
    for locator in getattr(getattr(caching, "CacheImpl", None), "_locator_classes", ()):
        found = locator.from_function(fingerprint, str(source))
        if found is not None:
            return Path(found.get_cache_path())
    return None


def drop_stale(directory: Path, stamp: str) -> bool:
    """Remove Numba's index and data files (*.nbi, *.nbc) from `directory` unless its stamp file
    says they were made from sources of fingerprint `stamp`; then write that stamp (atomically).
    True when it removed anything."""
    stamp_file = directory / STAMP
    try:
        if stamp_file.read_text() == stamp:
            return False
    except OSError:
        pass
    removed = False
    for path in [*directory.glob("*.nbi"), *directory.glob("*.nbc")]:
        try:
            path.unlink()
            removed = True
        except FileNotFoundError:                # another process got there first
            pass
    directory.mkdir(parents=True, exist_ok=True)
    partial = directory / f"{STAMP}.{os.getpid()}"
    partial.write_text(stamp)
    os.replace(partial, stamp_file)
    return removed


def drop_stale_kernels() -> bool:
    """`drop_stale` for this package's kernels; False (and Numba's own behaviour) where the cache
    directory cannot be found or written."""
    directory = cache_directory()
    if directory is None:
        return False
    try:
        return drop_stale(directory, fingerprint())
    except OSError:
        return False
