"""Target-propagation elementwise ops: the Numba CPU face and the numba.cuda face against the
reference. The CUDA face runs here under Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1), in a
subprocess because the simulator must be chosen before numba.cuda is first imported and must not
leak into the rest of the suite; on a GPU it is also run for real by tests/test_ops_cuda.py."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from gradcheck import assert_close

from lcengine.ops import targets_cpu, targets_ref
from lcengine.ops.cpu import lc as lc_cpu

# |got − ref| ≤ atol + rtol·|ref|: the fast float32 tanh is within 4e-7 (tanh_math); the loss is
# summed in float64 by the fast faces and in the input dtype by the reference
TOL = {np.float32: dict(rtol=1e-6, atol=1e-6), np.float64: dict(rtol=1e-13, atol=1e-13)}
LOSS_RTOL = {np.float32: 1e-5, np.float64: 1e-12}
SHAPES = [(1, 1), (3, 5, 7), (2, 3, 17, 19), (5, 1001)]
REPO = Path(__file__).resolve().parents[1]


def _inputs(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    h = np.tanh(rng.standard_normal(shape)).astype(dtype)
    return h, *(rng.standard_normal(shape).astype(dtype) for _ in range(2))


def check_face(face, shapes, dtypes):
    """Asserts `face` (a module exporting the target ops) matches the reference."""
    for dtype in dtypes:
        for shape in shapes:
            seed = sum(shape)
            h, a_rec, a_hat_rec = _inputs(shape, dtype, seed)
            got = face.difference_target(h, a_rec, a_hat_rec)
            assert got.dtype == dtype and got.shape == shape
            assert_close(got, targets_ref.difference_target(h, a_rec, a_hat_rec), **TOL[dtype],
                         seed=seed, what=f"difference_target {shape} {dtype.__name__}")
            t = np.tanh(a_rec)
            loss, grad = face.tanh_regression(h, t)
            ref_loss, ref_grad = targets_ref.tanh_regression(h, t)
            assert isinstance(loss, float) and grad.dtype == dtype and grad.shape == shape
            assert abs(loss - ref_loss) <= LOSS_RTOL[dtype] * abs(ref_loss), \
                f"tanh_regression loss {loss!r} != {ref_loss!r} ({shape}, {dtype.__name__})"
            assert_close(grad, ref_grad, **TOL[dtype], seed=seed,
                         what=f"tanh_regression grad {shape} {dtype.__name__}")


def test_cpu_face_matches_reference():
    check_face(targets_cpu, SHAPES, [np.float32, np.float64])


def test_cpu_face_takes_noncontiguous_inputs():
    h, a_rec, a_hat_rec = _inputs((6, 4), np.float64, 0)
    got = targets_cpu.difference_target(h.T, a_rec.T, a_hat_rec.T)
    assert_close(got, targets_ref.difference_target(h.T, a_rec.T, a_hat_rec.T), **TOL[np.float64])


def test_cpu_face_keeps_the_first_operands_memory_order():
    """Batch-last activations (the LC faces' order) stay batch-last, in any mix of orders and
    strides of the other operands, with the reference's values."""
    h, a_rec, a_hat_rec = _inputs((5, 3, 4, 6), np.float64, 1)
    h_last = lc_cpu.batch_last(h)
    others = ((a_rec, a_hat_rec), (lc_cpu.batch_last(a_rec), a_hat_rec[:, ::-1].copy()[:, ::-1]))
    for r, r_hat in others:
        got = targets_cpu.difference_target(h_last, r, r_hat)
        assert lc_cpu.is_batch_last(got)
        assert_close(got, targets_ref.difference_target(h, a_rec, a_hat_rec), **TOL[np.float64])
        loss, grad = targets_cpu.tanh_regression(h_last, np.tanh(r))
        ref_loss, ref_grad = targets_ref.tanh_regression(h, np.tanh(a_rec))
        assert lc_cpu.is_batch_last(grad) and abs(loss - ref_loss) <= 1e-12 * abs(ref_loss)
        assert_close(grad, ref_grad, **TOL[np.float64])


def test_cuda_face_under_simulator():
    # tiny shapes (the simulator runs each CUDA thread as a Python thread); (3, 101) spans two
    # blocks of 256 threads, exercising the grid-stride loop and the per-block loss reduction
    script = ("import numpy as np, test_targets as t\n"
              "from lcengine.ops import targets_cuda\n"
              "t.check_face(targets_cuda, [(1, 1), (2, 3, 5), (3, 101)], "
              "[np.float32, np.float64])\n")
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1",
               PYTHONPATH=os.pathsep.join([str(REPO / "tests"), str(REPO),
                                           os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run([sys.executable, "-W", "error", "-c", script], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"numba.cuda target kernels under the simulator:\n{run.stderr}"
