"""Every parallel kernel of the CPU faces is ONE parallel region per call.

In a Numba function compiled with `parallel=True`, NumPy calls (np.ones, np.zeros, .max()) and
array expressions outside the `prange` become parallel loops of their own: each is another
region, i.e. another wake-up of the sleeping OpenMP threads per call (`host_threads`;
docs/performance.md). Numba keeps no diagnostics for cached code, so each kernel is compiled
again, uncached, with the signatures the calls below gave it.
"""

import numba
import numpy as np
import pytest
from numba.core.registry import CPUDispatcher
from numba.parfors.parfor import Parfor

from lcengine.ops import activation_cpu, adam_cpu, feedback_cpu, targets_cpu
from lcengine.ops.cpu import lc as lc_cpu

MODULES = (lc_cpu, feedback_cpu, adam_cpu, activation_cpu, targets_cpu)


def _parallel_kernels():
    """(name, dispatcher) of every module-level parallel Numba function of the CPU faces."""
    return [(f"{module.__name__.rsplit('.', 1)[1]}.{name}", value)
            for module in MODULES for name, value in vars(module).items()
            if isinstance(value, CPUDispatcher) and value.targetoptions.get("parallel")]


def _run_every_kernel():
    """Calls that compile every kernel of `_parallel_kernels` (and the direct forward)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3, 9, 8), dtype=np.float32)
    W = rng.standard_normal((4, 4, 7, 3, 3, 3), dtype=np.float32)
    dy = rng.standard_normal((5, 7, 4, 4), dtype=np.float32)
    stride, pads = (2, 2), (0, 1, 1, 0)
    lc_cpu.lc_forward(x, W, stride, pads)
    lc_cpu.lc_backward_input(dy, W, (9, 8), stride, pads)
    lc_cpu.lc_backward_weight(x, dy, (3, 3), stride, pads)
    lc_cpu.lc_forward(x[:, :1], W[:, :, :, :1], stride, pads)          # K = 9: the direct kernel
    e = rng.standard_normal((5, 10), dtype=np.float32)
    feedback_cpu._hashed_feedback(e, np.uint64(1), 300, 0.1)
    out_t = np.empty((300, 5), dtype=np.float32)
    feedback_cpu._random_feedback_unblocked(e, np.uint64(1), 300, 0.1, out_t)
    p, g = rng.standard_normal((2, 50), dtype=np.float32)
    adam_cpu.adam_update(p, g, np.zeros_like(p), np.zeros_like(p), 0.01, 0.9, 0.999, 1e-8)
    h = activation_cpu.tanh(p)
    activation_cpu.tanh_backward(g, h)
    targets_cpu.difference_target(h, p, g)
    targets_cpu.tanh_regression(h.reshape(5, 10), g.reshape(5, 10))


def _regions(py_func, signature):
    fresh = numba.njit(parallel=True)(py_func)
    fresh.compile(signature)
    func_ir = fresh.get_metadata(signature)["parfor_diagnostics"].func_ir
    return sum(isinstance(stmt, Parfor) for block in func_ir.blocks.values()
               for stmt in block.body)


@pytest.fixture(scope="module")
def compiled():
    _run_every_kernel()


@pytest.mark.parametrize("name, kernel", _parallel_kernels(),
                         ids=[name for name, _ in _parallel_kernels()])
def test_one_parallel_region(compiled, name, kernel):
    assert kernel.signatures, f"{name}: no call above compiled it"
    assert _regions(kernel.py_func, kernel.signatures[0]) == 1, name


def test_the_direct_forward_is_one_parallel_region(compiled):
    op = lc_cpu._direct_forward(1, 3, 3)
    assert op.signatures
    assert _regions(op.py_func, op.signatures[0]) == 1
