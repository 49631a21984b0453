"""`lcengine.ops.cpu.simd`'s register-blocked products against NumPy's: every block shape and edge,
operands with strides, float32 and float64."""

import os
import subprocess
import sys

import numpy as np
import pytest

from lcengine.ops.cpu import simd

TOL = {np.float32: 1e-5, np.float64: 1e-13}

# (M, K or R, Nc): one number; rows at and around the 6-row blocks; columns that fill whole
# blocks, leave a partial block, or end in less than a vector; long and one-step sums.
SHAPES = [(1, 1, 1), (2, 9, 33), (7, 5, 19), (9, 32, 128), (10, 3, 8), (13, 300, 24),
          (6, 7, 16), (96, 1200, 32), (17, 2, 5)]


def _operand(rng, shape, dtype, transposed):
    """A random array of `shape`, laid out as the transpose of a C array when `transposed`."""
    if transposed:
        return np.ascontiguousarray(rng.standard_normal(shape[::-1]).astype(dtype)).T
    return rng.standard_normal(shape).astype(dtype)


def _check(got, want, dtype, depth):
    scale = np.sqrt(depth) * TOL[dtype]
    np.testing.assert_allclose(got, want, rtol=TOL[dtype], atol=scale)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", SHAPES, ids=[f"{m}x{k}x{n}" for m, k, n in SHAPES])
def test_gemm_nn(shape, dtype):
    M, K, Nc = shape
    rng = np.random.default_rng(M * K + Nc)
    B = rng.standard_normal((K, Nc)).astype(dtype)
    for transposed in (False, True):                   # A's rows or its columns contiguous
        A = _operand(rng, (M, K), dtype, transposed)
        wide = np.full((M, Nc + 3), np.nan, dtype)      # C's rows longer than C: a strided view
        simd.gemm_nn(A, B, wide[:, :Nc])
        _check(wide[:, :Nc], A @ B, dtype, K)
        assert np.isnan(wide[:, Nc:]).all(), "wrote past C's columns"


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", SHAPES, ids=[f"{m}x{r}x{n}" for m, r, n in SHAPES])
def test_gemm_nt(shape, dtype):
    M, R, Nc = shape
    rng = np.random.default_rng(M * R + Nc + 1)
    A = rng.standard_normal((M, R)).astype(dtype)
    B = rng.standard_normal((Nc, R)).astype(dtype)
    for transposed in (False, True):                   # C's rows or its columns contiguous
        C = _operand(rng, (M, Nc), dtype, transposed)
        simd.gemm_nt(A, B, C)
        _check(C, A @ B.T, dtype, R)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", SHAPES, ids=[f"{m}x{k}x{n}" for m, k, n in SHAPES])
def test_gemm_tn(shape, dtype):
    """C (K, Nc) = Aᵀ @ B, every operand a view with rows longer than it, C full of NaN first:
    the first rank update overwrites it, the others add, and nothing past C's columns is
    touched."""
    M, K, Nc = shape
    rng = np.random.default_rng(M * K + Nc + 2)
    A = rng.standard_normal((M, K + 5)).astype(dtype)[:, :K]
    B = rng.standard_normal((M, Nc + 1)).astype(dtype)[:, :Nc]
    wide = np.full((K, Nc + 3), np.nan, dtype)
    simd.gemm_tn(A, B, wide[:, :Nc])
    _check(wide[:, :Nc], A.T @ B, dtype, M)
    assert np.isnan(wide[:, Nc:]).all(), "wrote past C's columns"


@pytest.mark.parametrize("M", [1, 5, 7, 13])
def test_gemm_tn_reads_nothing_past_its_operands(M):
    """A and B end where an inaccessible page begins; their last block has fewer than 6 rows,
    which the kernel must not read beyond."""
    K, Nc = 9, 16
    a, keep_a = _before_a_guard_page(4 * M * K)
    b, keep_b = _before_a_guard_page(4 * M * Nc)
    if a is None or b is None:
        pytest.skip("mprotect is not available here")
    rng = np.random.default_rng(M)
    A, B = a.reshape(M, K), b.reshape(M, Nc)
    A[:], B[:] = rng.standard_normal((M, K)), rng.standard_normal((M, Nc))
    C = np.empty((K, Nc), np.float32)
    simd.gemm_tn(A, B, C)
    _check(C, A.T @ B, np.float32, M)
    del a, b, A, B
    keep_a.close()
    keep_b.close()


@pytest.mark.parametrize("product", ["nn", "tn"])
@pytest.mark.parametrize("shape", [(48, 243, 32), (13, 300, 24), (7, 5, 19), (6, 7, 16),
                                   (13, 7, 5), (20, 9, 12)])
def test_prefetching_another_array_gives_the_same(shape, product):
    """`then` is only prefetched: smaller or larger than the product's blocks can spread it,
    and with fewer columns than a vector there are no blocks to spread it over."""
    M, K, N = shape
    rng = np.random.default_rng(5)
    if product == "nn":
        gemm, A = simd.gemm_nn, _operand(rng, (M, K), np.float32, True)
        B, C_shape = _operand(rng, (K, N), np.float32, False), (M, N)
    else:
        gemm, A = simd.gemm_tn, _operand(rng, (M, K), np.float32, False)
        B, C_shape = _operand(rng, (M, N), np.float32, False), (K, N)
    plain = np.empty(C_shape, np.float32)
    gemm(A, B, plain)
    for then in (np.ones(1, np.float32), rng.standard_normal((50, 301)).astype(np.float32)):
        C = np.empty(C_shape, np.float32)
        gemm(A, B, C, then)
        np.testing.assert_array_equal(C, plain)
    with pytest.raises(ValueError, match="`then` must be C-contiguous"):
        gemm(A, B, plain, np.ones((4, 4), np.float32)[:, 1])


def test_gemm_nt_with_an_empty_sum_is_zero():
    C = np.full((3, 4), np.nan, np.float32)
    simd.gemm_nt(np.ones((3, 0), np.float32), np.ones((4, 0), np.float32), C)
    assert (C == 0).all()


def test_only_one_float_dtype():
    a = np.ones((2, 2), np.int32)
    with pytest.raises(Exception, match="float32 or float64"):
        simd.gemm_nn(a, a, a.copy())
    f32, f64 = np.ones((2, 2), np.float32), np.ones((2, 2), np.float64)
    with pytest.raises(Exception, match="must share one dtype"):
        simd.gemm_nn(f32, f64, f32.copy())
    with pytest.raises(Exception, match="must share one dtype"):
        simd.stream(f32, f64)


def _f32(*shape):
    return np.ones(shape, np.float32)


@pytest.mark.parametrize("call, message", [
    (lambda: simd.gemm_nn(_f32(3, 4), _f32(3, 5), _f32(3, 5)), "A's columns and B's rows differ"),
    (lambda: simd.gemm_nn(_f32(3, 4), _f32(4, 5), _f32(3, 6)), "C's shape does not match"),
    (lambda: simd.gemm_nn(_f32(3, 4), np.asfortranarray(_f32(4, 5)), _f32(3, 5)),
     "non-contiguous rows"),
    (lambda: simd.gemm_nn(_f32(3, 0), _f32(0, 5), _f32(3, 5)), "at least one term"),
    (lambda: simd.gemm_nt(_f32(3, 4), _f32(5, 3), _f32(3, 5)), "rows differ in length"),
    (lambda: simd.gemm_nt(_f32(3, 4), _f32(5, 4), _f32(5, 3)), "C's shape does not match"),
    (lambda: simd.gemm_nt(np.asfortranarray(_f32(3, 4)), _f32(5, 4), _f32(3, 5)),
     "non-contiguous rows"),
    (lambda: simd.gemm_tn(_f32(3, 4), _f32(4, 5), _f32(4, 5)), "A and B differ in rows"),
    (lambda: simd.gemm_tn(_f32(3, 4), _f32(3, 5), _f32(3, 5)), "C's shape does not match"),
    (lambda: simd.gemm_tn(np.asfortranarray(_f32(3, 4)), _f32(3, 5), _f32(4, 5)),
     "A's rows must be contiguous"),
    (lambda: simd.gemm_tn(_f32(0, 4), _f32(0, 5), _f32(4, 5)), "at least one term"),
    (lambda: simd.stream(_f32(2, 3), _f32(6)), "differ in shape"),
    (lambda: simd.stream(_f32(4, 2), _f32(4, 4)[:, ::2]), "must be C-contiguous"),
], ids=["nn-depth", "nn-C", "nn-B-rows", "nn-empty-sum", "nt-depth", "nt-C", "nt-A-rows",
        "tn-depth", "tn-C", "tn-A-rows", "tn-empty-sum", "stream-shape", "stream-strided"])
def test_bad_operands_are_named(call, message):
    """The kernels read and write through raw addresses: every mismatch is refused first."""
    with pytest.raises(ValueError, match=message):
        call()


def _before_a_guard_page(nbytes):
    """A float32 array that ends exactly where an inaccessible page begins (or None where
    mprotect is not available): a read past its end would crash the process."""
    import ctypes
    import mmap
    page = mmap.PAGESIZE
    buf = mmap.mmap(-1, 2 * page)
    base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    if libc.mprotect(base + page, page, 0) != 0:                  # PROT_NONE
        return None, buf
    return np.frombuffer(buf, np.float32, nbytes // 4, page - nbytes), buf


@pytest.mark.parametrize("nbytes", [4, 60, 64, 68, 4096 - 4])
def test_warm_reads_nothing_past_the_end(nbytes):
    a, keep = _before_a_guard_page(nbytes)
    if a is None:
        pytest.skip("mprotect is not available here")
    a[:] = np.arange(a.size)
    simd.warm(a)
    assert (a == np.arange(a.size)).all()
    del a
    keep.close()


def test_warm_takes_empty_and_refuses_strided_arrays():
    simd.warm(np.ones(0, np.float32))
    simd.warm(np.ones((3, 5, 7), np.float64))
    with pytest.raises(ValueError, match="C-contiguous"):
        simd.warm(np.ones((4, 4), np.float32)[:, 1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_stream_copies_every_number_and_nothing_else(dtype):
    """Every length around a vector, from every start within one: the numbers before the first
    vector-aligned address, the streamed vectors and the tail all land, the neighbours stay."""
    rng = np.random.default_rng(5)
    for n in (0, 1, 3, 7, 8, 9, 17, 33, 100, 1001):
        for start in range(4):
            src = rng.standard_normal(n).astype(dtype)
            buf = np.full(n + 8, np.nan, dtype)
            simd.stream(src, buf[start:start + n])
            np.testing.assert_array_equal(buf[start:start + n], src)
            assert np.isnan(buf[:start]).all() and np.isnan(buf[start + n:]).all()
    src = rng.standard_normal((48, 243)).astype(dtype)
    dst = np.empty_like(src)
    simd.stream(src, dst)
    np.testing.assert_array_equal(dst, src)


def test_stream_to_an_address_between_numbers():
    """A float32 view one byte into a buffer: no vector store can be aligned, all go plainly."""
    dst = np.zeros(4 * 40 + 1, np.uint8)[1:].view(np.float32)
    src = np.arange(40, dtype=np.float32)
    simd.stream(src, dst)
    np.testing.assert_array_equal(dst, src)


@pytest.mark.parametrize("nbytes", [4, 60, 64, 68, 4096 - 4])
def test_stream_touches_nothing_past_the_ends(nbytes):
    src, keep_src = _before_a_guard_page(nbytes)
    dst, keep_dst = _before_a_guard_page(nbytes)
    if src is None or dst is None:
        pytest.skip("mprotect is not available here")
    src[:] = np.arange(src.size)
    simd.stream(src, dst)
    np.testing.assert_array_equal(dst, src)
    del src, dst
    keep_src.close()
    keep_dst.close()


@pytest.mark.skipif(simd.VECTOR_BYTES == 32, reason="this host's kernels have 32-byte vectors "
                                                    "already: the tests above check them")
def test_kernels_with_32_byte_vectors():
    """On an AVX-512 host, this file's tests again as an AVX2 host compiles them (32-byte vectors),
    in a process whose Numba is told the CPU is a Haswell."""
    env = {**os.environ, "NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": "+avx,+avx2,+fma"}
    width = "from lcengine.ops.cpu import simd; print(simd.VECTOR_BYTES)"
    assert subprocess.run([sys.executable, "-c", width], env=env, capture_output=True,
                          text=True, check=True).stdout.strip() == "32"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           __file__, "-k", "not 32_byte"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
