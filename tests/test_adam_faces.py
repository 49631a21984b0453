"""Adam's fused CPU face (Numba) against the reference, over several steps with the bias
corrections folded into the scalars as the optimiser does, and its argument checks."""

import math

import numpy as np
import pytest
from gradcheck import assert_close

from lcengine.ops import adam_cpu, adam_ref

# |got − ref| ≤ atol + rtol·|ref|; the arithmetic is the same, so float32 agrees to a few ulps
TOL = {np.float32: dict(rtol=1e-6, atol=1e-7), np.float64: dict(rtol=1e-14, atol=1e-15)}
SHAPES = [(1,), (7,), (3, 5, 7), (2, 2, 3, 1, 3, 3), (1001,)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_cpu_face_matches_reference(shape, dtype):
    seed = len(shape) * 1000 + math.prod(shape)
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(shape).astype(dtype)
    m, v = np.zeros(shape, dtype), np.zeros(shape, dtype)
    ref = [p.copy(), m.copy(), v.copy()]
    lr, beta1, beta2, eps = 1e-3, 0.9, 0.999, 1e-8
    for t in range(1, 4):
        g = rng.standard_normal(shape).astype(dtype)
        step = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
        eps_hat = eps * math.sqrt(1 - beta2**t)
        adam_cpu.adam_update(p, g, m, v, step, beta1, beta2, eps_hat)
        adam_ref.adam_update(ref[0], g, ref[1], ref[2], step, beta1, beta2, eps_hat)
    for name, got, want in zip("pmv", (p, m, v), ref):
        assert got.dtype == dtype
        assert_close(got, want, **TOL[dtype], seed=seed, what=f"adam_update {name} {shape}")


def test_rejects_bad_arguments():
    p = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="adam_update: g"):
        adam_cpu.adam_update(p, np.zeros((4, 3), np.float64), p.copy(), p.copy(), 1, .9, .9, 1)
    with pytest.raises(ValueError, match="adam_update: m must be C-contiguous"):
        adam_cpu.adam_update(p, p.copy(), np.zeros((3, 4), np.float32).T, p.copy(), 1, .9, .9, 1)
