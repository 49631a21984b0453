"""Gradient oracles for the tests: float64 finite differences along random directions.

    check_directional(f, x, grad, seed)    f(x) -> scalar; `grad` is the claimed ∂f/∂x.
                                           x and grad: one array, or dicts with the same keys
                                           (e.g. all parameters of a network).
    assert_close(got, ref, rtol, atol, ...) elementwise |got − ref| ≤ atol + rtol·|ref|
                                           (atol a number, or one per element)
    sum_rounding(dtype, depth, magnitude)  that atol for sums of `depth` products in `dtype`

For each random unit-variance direction u (one draw per key, all seeded by `seed`), the
central difference (f(x + εu) − f(x − εu)) / 2ε is compared with Σ ⟨grad, u⟩. Checking a few
directions instead of every coordinate keeps a whole-network check cheap. A failure names the
worst element, both values, the shape and the seed. Call `f` on float64 inputs: the tolerances
assume it.
"""

from __future__ import annotations

import numpy as np


def assert_close(got, ref, *, rtol, atol, seed=None, what="value"):
    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        raise AssertionError(f"{what}: shape {got.shape} != expected {ref.shape}")
    excess = np.abs(got - ref) - (atol + rtol * np.abs(ref))
    if excess.size and excess.max() > 0:
        worst = np.unravel_index(np.argmax(excess), excess.shape)
        raise AssertionError(
            f"{what}: {np.count_nonzero(excess > 0)}/{excess.size} elements off; worst at "
            f"{tuple(int(i) for i in worst)}: got {float(got[worst])!r}, "
            f"expected {float(ref[worst])!r} "
            f"(|diff| {abs(got[worst] - ref[worst]):.3g} > atol "
            f"{float(np.broadcast_to(atol, ref.shape)[worst]):.3g} + rtol {rtol}·|ref|); "
            f"shape {ref.shape}, seed {seed}")


def check_directional(f, x, grad, seed, *, n_directions=3, eps=1e-6, rtol=1e-6, atol=1e-9):
    """Assert that `grad` is the gradient of the scalar function f at x (see module docstring)."""
    as_dict = isinstance(x, dict)
    xs = x if as_dict else {"x": x}
    grads = grad if as_dict else {"x": grad}
    if xs.keys() != grads.keys():
        raise AssertionError(f"gradient keys {sorted(grads)} != input keys {sorted(xs)}")
    for k in xs:
        if np.shape(grads[k]) != np.shape(xs[k]):
            raise AssertionError(f"gradient {k!r} has shape {np.shape(grads[k])}, "
                                 f"input has {np.shape(xs[k])}; seed {seed}")

    def f_at(step):
        moved = {k: xs[k] + step[k] for k in xs}
        return float(f(moved if as_dict else moved["x"]))

    rng = np.random.default_rng(seed)
    claimed, numeric = [], []
    for _ in range(n_directions):
        u = {k: rng.standard_normal(np.shape(v)) for k, v in xs.items()}
        claimed.append(sum(float(np.vdot(np.asarray(grads[k], dtype=np.float64), u[k]))
                           for k in xs))
        numeric.append((f_at({k: eps * u[k] for k in xs})
                        - f_at({k: -eps * u[k] for k in xs})) / (2 * eps))
    assert_close(claimed, numeric, rtol=rtol, atol=atol, seed=seed,
                 what=f"directional derivative along {n_directions} random directions")


def sum_rounding(dtype, depth, magnitude):
    """Per-element atol for a sum of `depth` products summed in `dtype` in another order than the
    reference: 2·√depth·ε·Σ|terms| (`magnitude`: the op applied to the inputs' absolute values).
    Rounding grows with the depth of the sum, so a fixed atol fails near zero on deep sums (and
    FMA on a GPU rounds differently from NumPy); this bound is still about ten standard
    deviations of the rounding error. benchmarks/bench_cuda.py checks with the same bound."""
    return 2 * np.sqrt(depth) * np.finfo(dtype).eps * np.asarray(magnitude, np.float64) + 1e-30
