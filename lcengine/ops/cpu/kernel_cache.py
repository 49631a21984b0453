"""Where Numba caches the CPU faces' compiled kernels: a directory named by a hash of the sources.

Numba reuses a cached function while its own source file is unchanged, but our kernels compile
functions of other files into themselves: `simd`'s products into `lc`'s ops, `tanh_math` into
the activation and target passes, `cblas` into everything that calls BLAS. After an edit of
simd.py alone, `lc` went on running the old products from its cache, and a `git pull` into an
editable install would do the same. So every kernel of `lcengine/ops` is decorated with `njit`
below, which caches it in `cache_directory()`: a directory whose name is a fingerprint of every
source under `lcengine/ops`. Changed sources get a fresh directory (one recompilation, as a
fresh clone has); the directories least recently used beyond `KEEP` are removed.

Only public settings are used: `numba.config.CACHE_DIR` (what NUMBA_CACHE_DIR sets) is pointed at
that directory while each kernel is decorated, which is when Numba picks a function's cache
location, and restored at once, so the process's other Numba code caches where it would
without lcengine. A user's NUMBA_CACHE_DIR is kept as the parent directory. Where the
directory cannot be written, Numba caches as it would alone, with one warning.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import numba

from . import probes

OPS = Path(__file__).resolve().parents[1]          # lcengine/ops: every kernel's sources
PREFIX = "kernels-"
KEEP = 8                                           # fingerprints kept side by side


def fingerprint(directory: Path = OPS) -> str:
    """SHA-256 over the relative paths and contents of the Python sources under `directory`."""
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*.py")):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def cache_root() -> Path:
    """The parent of the fingerprinted directories: NUMBA_CACHE_DIR/lcengine if the user set
    one, else lcengine/ in the user's cache directory (XDG_CACHE_HOME, else ~/.cache)."""
    if numba.config.CACHE_DIR:
        return Path(numba.config.CACHE_DIR) / "lcengine"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lcengine"


def prune(root: Path, keep: str, count: int = KEEP) -> list[Path]:
    """Remove the fingerprinted directories under `root` beyond the `count` most recently
    used, never `keep`; returns those removed. Another process may be removing them too."""
    others = sorted((p for p in root.glob(PREFIX + "*") if p.name != keep and p.is_dir()),
                    key=lambda p: p.stat().st_mtime, reverse=True)
    removed = others[max(0, count - 1):]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


@functools.lru_cache(maxsize=None)
def cache_directory() -> Path | None:
    """This source tree's cache directory, made, marked as just used and writable; None (with
    one warning) where it cannot be."""
    root = cache_root()
    directory = root / (PREFIX + fingerprint()[:16])
    try:
        directory.mkdir(parents=True, exist_ok=True)
        os.utime(directory)
        tempfile.TemporaryFile(dir=directory).close()
        prune(root, directory.name)
    except OSError as err:
        probes.unavailable("lcengine's kernel cache directory", f"{directory}: {err}",
                           "Numba caches the kernels where it would alone, and a kernel whose "
                           "other sources changed may be reused until its own file changes")
        return None
    return directory


@contextlib.contextmanager
def _numba_caches_in(directory: Path | None):
    """numba.config.CACHE_DIR = directory inside the block (unchanged if None)."""
    before = numba.config.CACHE_DIR
    if directory is not None:
        numba.config.CACHE_DIR = str(directory)
    try:
        yield
    finally:
        numba.config.CACHE_DIR = before


def njit(*args, **options):
    """`numba.njit`, with a kernel given `cache=True` cached in `cache_directory()`."""
    if not options.get("cache"):
        return numba.njit(*args, **options)

    def decorate(function):
        with _numba_caches_in(cache_directory()):
            return numba.njit(**options)(function)

    return decorate(args[0]) if args else decorate
