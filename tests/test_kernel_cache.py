"""`kernel_cache`: the CPU kernels are cached in a directory named by a fingerprint of every
source under lcengine/ops (a cached kernel holds code compiled from other files than its own),
chosen with Numba's public CACHE_DIR setting only while a kernel is decorated."""

import os
import subprocess
import sys
import time

import numba
import numpy as np
import pytest

from lcengine.ops.cpu import cblas, kernel_cache, probes


def test_the_fingerprint_covers_every_source_below(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "simd.py").write_text("LANES = 8\n")
    (tmp_path / "lc_cpu.py").write_text("from .cpu import simd\n")
    (tmp_path / "notes.txt").write_text("not a source")
    before = kernel_cache.fingerprint(tmp_path)
    assert kernel_cache.fingerprint(tmp_path) == before
    (tmp_path / "notes.txt").write_text("still not a source")
    assert kernel_cache.fingerprint(tmp_path) == before
    (tmp_path / "cpu" / "simd.py").write_text("LANES = 16\n")
    assert kernel_cache.fingerprint(tmp_path) != before


def test_the_kernels_are_cached_in_the_fingerprinted_directory():
    cblas.unit(np.zeros(1, dtype=np.float32))                # a cached kernel, compiled or loaded
    directory = kernel_cache.cache_directory()
    assert directory.name == kernel_cache.PREFIX + kernel_cache.fingerprint()[:16]
    assert any(directory.glob("*/cblas.unit-*.nbi"))


def test_numbas_setting_is_restored_after_each_kernel():
    before = numba.config.CACHE_DIR

    @kernel_cache.njit(cache=True)
    def twice(x):
        return 2 * x

    assert twice(3) == 6 and numba.config.CACHE_DIR == before


def test_a_users_numba_cache_dir_is_the_parent(tmp_path, monkeypatch):
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path))
    assert kernel_cache.cache_root() == tmp_path / "lcengine"


def test_the_least_recently_used_directories_go(tmp_path):
    for i in range(12):
        (tmp_path / f"{kernel_cache.PREFIX}{i:02d}").mkdir()
        os.utime(tmp_path / f"{kernel_cache.PREFIX}{i:02d}", (time.time() - 100 + i,) * 2)
    removed = kernel_cache.prune(tmp_path, keep=f"{kernel_cache.PREFIX}00", count=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"{kernel_cache.PREFIX}{i:02d}" for i in (0, 10, 11)]
    assert len(removed) == 9


def test_an_unwritable_directory_leaves_numba_its_own_caching(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setattr(kernel_cache, "cache_root", lambda: blocker)
    kernel_cache.cache_directory.cache_clear()
    try:
        with pytest.warns(probes.FastPathWarning, match="kernel cache directory"):
            assert kernel_cache.cache_directory() is None
        before = numba.config.CACHE_DIR
        with kernel_cache._numba_caches_in(kernel_cache.cache_directory()):
            assert numba.config.CACHE_DIR == before
    finally:
        kernel_cache.cache_directory.cache_clear()


def test_importing_lcengine_changes_no_process_state():
    """os.environ and Numba's cache setting are as they were after importing the package, its
    ops, the CPU subsystem and the backend (no backend made)."""
    script = ("import os, numba; env, cache = dict(os.environ), numba.config.CACHE_DIR\n"
              "import lcengine, lcengine.ops, lcengine.backend, lcengine.train\n"
              "from lcengine.ops import lc_cpu, activation_cpu, feedback_cpu, targets_cpu\n"
              "from lcengine.ops.cpu import cblas, flat, host_memory, host_threads, lc, simd\n"
              "assert dict(os.environ) == env, set(os.environ.items()) ^ set(env.items())\n"
              "assert numba.config.CACHE_DIR == cache\n"
              "print('unchanged')\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.stdout.strip() == "unchanged", out.stderr
