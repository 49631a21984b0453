"""`kernel_cache`: Numba's cached kernels are dropped when any kernel source changes, since a
cached kernel holds code compiled from other files than its own."""

import numpy as np
from numba.core import caching

from lcengine.ops import cblas, kernel_cache


def _cache_files(directory):
    for name in ("lc_cpu._forward-300.py311.nbi", "lc_cpu._forward-300.py311.1.nbc",
                 "simd.gemm_nn-475.py311.nbi"):
        (directory / name).write_bytes(b"cached")
    (directory / "lc_cpu.cpython-311.pyc").write_bytes(b"bytecode")


def _left(directory):
    return sorted(path.name for path in directory.iterdir())


def test_a_cache_without_a_stamp_or_with_another_is_emptied(tmp_path):
    _cache_files(tmp_path)
    assert kernel_cache.drop_stale(tmp_path, "sources-1")
    assert _left(tmp_path) == ["lc_cpu.cpython-311.pyc", kernel_cache.STAMP]
    assert (tmp_path / kernel_cache.STAMP).read_text() == "sources-1"

    _cache_files(tmp_path)                                  # compiled from the same sources
    assert not kernel_cache.drop_stale(tmp_path, "sources-1")
    assert len(_left(tmp_path)) == 5

    assert kernel_cache.drop_stale(tmp_path, "sources-2")   # a source changed
    assert _left(tmp_path) == ["lc_cpu.cpython-311.pyc", kernel_cache.STAMP]
    assert (tmp_path / kernel_cache.STAMP).read_text() == "sources-2"


def test_the_fingerprint_follows_every_source(tmp_path):
    (tmp_path / "simd.py").write_text("LANES = 8\n")
    (tmp_path / "lc_cpu.py").write_text("from . import simd\n")
    (tmp_path / "README").write_text("not a source")
    before = kernel_cache.fingerprint(tmp_path)
    assert kernel_cache.fingerprint(tmp_path) == before
    (tmp_path / "README").write_text("still not a source")
    assert kernel_cache.fingerprint(tmp_path) == before
    (tmp_path / "simd.py").write_text("LANES = 16\n")
    assert kernel_cache.fingerprint(tmp_path) != before


def test_the_package_cache_is_where_numba_writes_and_carries_the_stamp():
    cblas.unit(np.zeros(1, dtype=np.float32))                # a cached kernel, compiled or loaded
    directory = kernel_cache.cache_directory()
    assert any(directory.glob("cblas.unit-*.nbi"))
    assert (directory / kernel_cache.STAMP).read_text() == kernel_cache.fingerprint()


def test_a_numba_without_those_locators_keeps_its_own_caching(monkeypatch):
    monkeypatch.delattr(caching.CacheImpl, "_locator_classes")
    assert kernel_cache.cache_directory() is None
    assert kernel_cache.drop_stale_kernels() is False
