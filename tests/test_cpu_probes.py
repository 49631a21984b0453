"""Each probe of the fast CPU face forced to fail: the ops take their plain NumPy paths, warn
once, and give the reference's numbers. And the one switch, LCENGINE_FAST_CPU=0: the same paths,
no warning, no process setting changed, and the op tests pass with it."""

import ctypes.util
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from gradcheck import assert_close

from lcengine.backend import BackendError, get_backend
from lcengine.ops import activation_cpu, activation_ref, feedback_cpu, feedback_ref, lc_ref
from lcengine.ops.cpu import cblas, host_memory, probes, simd, tuning
from lcengine.ops.cpu import lc as lc_cpu

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fresh_probes():
    """The probes run again in the test, and again after it (their answers are kept per
    process)."""
    cblas._openblas.cache_clear()
    simd._probed.cache_clear()
    yield
    cblas._openblas.cache_clear()
    simd._probed.cache_clear()


def _every_op_matches_the_reference():
    """The LC ops in both memory orders (the direct forward too), DFA's hashed feedback and an
    elementwise op on operands of two memory orders, float32, against the references."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((5, 3, 9, 8)).astype(np.float32)
    W = rng.standard_normal((4, 4, 7, 3, 3, 3)).astype(np.float32)
    dy = rng.standard_normal((5, 7, 4, 4)).astype(np.float32)
    stride, pads = (2, 2), (0, 1, 1, 0)
    tol = dict(rtol=1e-4, atol=1e-4, seed=5)
    for xs, dys in ((x, dy), (lc_cpu.batch_last(x), lc_cpu.batch_last(dy))):
        assert_close(lc_cpu.lc_forward(xs, W, stride, pads), lc_ref.lc_forward(x, W, stride, pads),
                     what="forward", **tol)
        assert_close(lc_cpu.lc_forward(xs[:, :1], W[..., :1, :, :], stride, pads),
                     lc_ref.lc_forward(x[:, :1], W[..., :1, :, :], stride, pads),
                     what="direct forward", **tol)
        assert_close(lc_cpu.lc_backward_input(dys, W, (9, 8), stride, pads),
                     lc_ref.lc_backward_input(dy, W, (9, 8), stride, pads), what="input", **tol)
        assert_close(lc_cpu.lc_backward_weight(xs, dys, (3, 3), stride, pads),
                     lc_ref.lc_backward_weight(x, dy, (3, 3), stride, pads), what="weight", **tol)
        got, ref = (W.copy(), np.zeros_like(W), np.ones_like(W)), (W.copy(), np.zeros_like(W),
                                                                    np.ones_like(W))
        lc_cpu.lc_backward_weight_adam(xs, dys, (3, 3), stride, pads, *got, 0.1, 0.9, 0.999, 1e-8)
        lc_ref.lc_backward_weight_adam(x, dy, (3, 3), stride, pads, *ref, 0.1, 0.9, 0.999, 1e-8)
        assert_close(np.stack(got), np.stack(ref), what="weight gradient into Adam", **tol)
    e = rng.standard_normal((6, 31)).astype(np.float32)
    n_units = 2 * feedback_cpu._ROWS + 3
    np.testing.assert_allclose(feedback_cpu._hashed_feedback(e, np.uint64(5), n_units, 0.1),
                               feedback_ref.random_feedback(e, 5, n_units, 0.1),
                               rtol=1e-5, atol=1e-5)
    h = lc_cpu.batch_last(np.tanh(x))
    np.testing.assert_allclose(activation_cpu.tanh_backward(x, h),
                               activation_ref.tanh_backward(x, np.asarray(h)), rtol=1e-6,
                               atol=1e-6)


def _no_warning(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn()


def test_without_openblas_the_ops_take_their_numpy_paths(fresh_probes, monkeypatch):
    monkeypatch.setattr(cblas, "_library_paths", lambda: [])
    with pytest.warns(probes.FastPathWarning, match="OpenBLAS.*batched np.matmul") as seen:
        assert cblas.openblas() is None
    assert len(seen) == 1
    _no_warning(_every_op_matches_the_reference)         # warned once, in the probe above


def test_a_library_without_the_symbols_is_refused(fresh_probes, monkeypatch):
    libc = ctypes.util.find_library("c")
    if libc is None:
        pytest.skip("no C library to offer")
    monkeypatch.setattr(cblas, "_library_paths", lambda: [libc])
    with pytest.warns(probes.FastPathWarning, match="no 64-bit-integer OpenBLAS build"):
        assert cblas.openblas() is None


def test_symbols_that_compute_something_else_are_refused(fresh_probes, monkeypatch):
    """The probe's check: a build whose ?gemm takes other arguments leaves C unwritten."""
    monkeypatch.setattr(cblas, "gemm", lambda *args: None)
    with pytest.warns(probes.FastPathWarning, match="passes its check"):
        assert cblas.openblas() is None
    _no_warning(_every_op_matches_the_reference)


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="Linux's memory map")
def test_without_threadpoolctls_report_the_memory_map_is_read(fresh_probes, monkeypatch):
    import threadpoolctl

    if cblas._openblas() is None:
        pytest.skip("NumPy's BLAS is not an OpenBLAS build")
    cblas._openblas.cache_clear()

    def broken():
        raise RuntimeError("threadpoolctl cannot inspect the libraries")

    monkeypatch.setattr(threadpoolctl, "threadpool_info", broken)
    assert _no_warning(cblas.openblas) is not None


def test_without_the_llvm_kernels_the_lc_ops_take_their_numpy_paths(fresh_probes, monkeypatch):
    monkeypatch.setattr(simd, "_check_in_child",
                        lambda: ("compiling them crashed the process (signal 11)", True))
    monkeypatch.setattr(simd, "_answer_name", lambda: "simd-probe-test-of-a-failure.json")
    answer = simd.kernel_cache.cache_directory() / "simd-probe-test-of-a-failure.json"
    try:
        with pytest.warns(probes.FastPathWarning, match="simd.*signal 11") as seen:
            assert not simd.usable()
        assert len(seen) == 1
        seen_by = []
        monkeypatch.setattr(lc_cpu, "_numpy_forward",
                            lambda *a, f=lc_cpu._numpy_forward: seen_by.append(1) or f(*a))
        _no_warning(_every_op_matches_the_reference)
        assert seen_by, "the forward did not take its NumPy path"
    finally:
        answer.unlink(missing_ok=True)


def test_the_llvm_kernels_check_catches_wrong_numbers(monkeypatch):
    monkeypatch.setattr(simd, "gemm_nt", lambda A, B, C: C.fill(0))
    assert "differs from NumPy's" in simd.check()
    monkeypatch.setattr(simd, "gemm_nn", lambda *a: (_ for _ in ()).throw(TypeError("refused")))
    assert simd.check() == "TypeError: refused"


def test_the_llvm_kernels_pass_their_check_here():
    assert simd.check() is None
    assert simd._check_in_child() == (None, True)


def test_a_kernel_that_crashes_the_compiler_is_a_failed_probe():
    """An intrinsic name this LLVM does not know takes the compiler down (a segfault, measured):
    the probe runs the check in a child, and the parent lives on to take the NumPy path."""
    crash = ("import numpy as np\nfrom lcengine.ops.cpu import simd\n"
             "simd.PREFETCH = 'llvm.no.such.intrinsic'\n"
             "bad = simd._outer_kernel(6, 2, prefetching=True)\n"
             "simd.gemm_nn = simd.njit(lambda A, B, C, then: bad(np.float32(1), 1, 1, 1, "
             "A.ctypes.data, 1, 1, B.ctypes.data, 16, C.ctypes.data, 16, A.ctypes.data, 1))\n"
             + simd.CHECK)
    why, keep = simd._check_in_child(crash)
    assert keep and why is not None and "crashed the process (signal" in why, why


def test_without_sysfs_the_cache_sizes_are_the_defaults(tmp_path):
    assert tuning.cache_sizes(tmp_path / "absent") == (tuning.DEFAULT_L2_BYTES,
                                                       tuning.DEFAULT_LAST_LEVEL_BYTES)
    for index, (level, kind, size) in enumerate([(1, "Data", "48K"), (1, "Instruction", "32K"),
                                                 (2, "Unified", "2048K"), (3, "Unified", "96M")]):
        entry = tmp_path / f"index{index}"
        entry.mkdir()
        for name, value in (("level", level), ("type", kind), ("size", size)):
            (entry / name).write_text(f"{value}\n")
    assert tuning.cache_sizes(tmp_path) == (2 << 20, 96 << 20)
    (tmp_path / "index3" / "size").write_text("garbled\n")
    assert tuning.cache_sizes(tmp_path) == (tuning.DEFAULT_L2_BYTES,
                                            tuning.DEFAULT_LAST_LEVEL_BYTES)


def test_without_mallopt_the_backend_runs_on_glibcs_defaults(monkeypatch):
    def no_library(*args):
        raise OSError("no C library here")

    monkeypatch.setattr(host_memory, "_done", None)
    monkeypatch.setattr(host_memory, "_libc_mallopt", no_library)
    assert host_memory.keep_freed_memory() is False
    assert get_backend("cpu").faces["lc"] == "cpu"
    _every_op_matches_the_reference()


def test_switched_off_every_probe_says_no_and_nothing_warns(monkeypatch):
    monkeypatch.setenv(probes.SWITCH, "0")
    assert _no_warning(cblas.openblas) is None
    assert _no_warning(simd.usable) is False
    assert host_memory.keep_freed_memory() is False
    _no_warning(_every_op_matches_the_reference)


def test_a_bad_switch_value_is_one_line(monkeypatch):
    monkeypatch.setenv(probes.SWITCH, "fast")
    with pytest.raises(BackendError, match=r"^LCENGINE_FAST_CPU='fast': expected 1 .* or 0"):
        get_backend("cpu")


def test_switched_off_the_backend_changes_no_process_setting():
    script = ("import os\nenv = dict(os.environ)\nfrom lcengine.backend import get_backend\n"
              "get_backend('cpu')\nassert dict(os.environ) == env\nprint('unchanged')\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env={**os.environ, probes.SWITCH: "0"})
    assert run.stdout.strip() == "unchanged", run.stderr


#: the op test modules: every CPU face against its reference
OP_TESTS = ("test_ops_cpu.py", "test_ops_conv.py", "test_activations.py", "test_targets.py",
            "test_feedback.py", "test_adam_faces.py")


@pytest.mark.slow
def test_the_op_tests_pass_with_the_fast_face_off():
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                          *(str(ROOT / "tests" / name) for name in OP_TESTS)],
                         capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, probes.SWITCH: "0"})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout.splitlines()[-1]
