"""Optimisers against steps computed by hand from the textbook formulas."""

import numpy as np
import pytest
from gradcheck import assert_close

from lcengine.backend import get_backend
from lcengine.optim import SGD, Adam, make_optimizer

BACKEND = get_backend("cpu")


def problem(seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    params = {"0.W": rng.standard_normal((3, 4)).astype(dtype),
              "0.b": rng.standard_normal(3).astype(dtype)}
    grads = [{k: rng.standard_normal(v.shape).astype(dtype) for k, v in params.items()}
             for _ in range(3)]
    return params, grads


def test_adam_matches_the_textbook_update():
    """m̂ = m / (1 − β1ᵗ), v̂ = v / (1 − β2ᵗ), p ← p − lr m̂ / (√v̂ + ε): three steps by hand."""
    lr, b1, b2, eps = 1e-2, 0.9, 0.99, 1e-3                        # ε large enough to matter
    params, grads = problem(0)
    expected = {k: v.copy() for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    arrays = dict(params)
    opt = Adam(params, lr, b1, b2, eps, backend=BACKEND)
    for t, g in enumerate(grads, start=1):
        opt.step(g)
        for k in expected:
            m[k] = b1 * m[k] + (1 - b1) * g[k]
            v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2
            m_hat, v_hat = m[k] / (1 - b1 ** t), v[k] / (1 - b2 ** t)
            expected[k] = expected[k] - lr * m_hat / (np.sqrt(v_hat) + eps)
            assert_close(params[k], expected[k], rtol=1e-12, atol=1e-15, what=f"{k} after step {t}")
    assert all(params[k] is arrays[k] for k in params)            # updated in place


def test_adam_first_step_moves_every_entry_by_lr():
    params, grads = problem(1, np.float32)
    before = {k: v.copy() for k, v in params.items()}
    Adam(params, 1e-3, backend=BACKEND).step(grads[0])
    for k in params:
        assert params[k].dtype == np.float32
        assert_close(before[k] - params[k], 1e-3 * np.sign(grads[0][k]), rtol=1e-4, atol=1e-9)


def test_sgd_momentum_matches_by_hand():
    params, grads = problem(2)
    expected = {k: v.copy() for k, v in params.items()}
    u = {k: np.zeros_like(v) for k, v in params.items()}
    opt = SGD(params, 0.1, momentum=0.9, backend=BACKEND)
    for g in grads:
        opt.step(g)
        for k in expected:
            u[k] = 0.9 * u[k] + g[k]
            expected[k] = expected[k] - 0.1 * u[k]
            assert_close(params[k], expected[k], rtol=1e-12, atol=1e-15)


def test_step_with_a_subset_and_unknown_names():
    params, grads = problem(3)
    before = params["0.b"].copy()
    opt = Adam(params, 1e-3, backend=BACKEND)
    opt.step({"0.W": grads[0]["0.W"]})
    assert np.array_equal(params["0.b"], before)
    opt.step({})
    with pytest.raises(KeyError, match="unknown parameters"):
        opt.step({"inv.1.W": grads[0]["0.W"]})


@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_state_round_trip_continues_identically(kind):
    params_a, grads = problem(4)
    params_b = {k: v.copy() for k, v in params_a.items()}
    a = make_optimizer(kind, params_a, BACKEND, lr=1e-2)
    a.step(grads[0])
    a.step(grads[1])
    for k in params_b:
        params_b[k][...] = params_a[k]
    b = make_optimizer(kind, params_b, BACKEND, lr=1e-2)
    b.load_state({k: np.array(v) for k, v in a.state().items()})
    assert int(b.state()["t"]) == 2
    a.step(grads[2])
    b.step(grads[2])
    for k in params_a:
        assert np.array_equal(params_a[k], params_b[k])
    with pytest.raises(ValueError, match="keys differ"):
        b.load_state({"t": np.array(1)})


def test_make_optimizer_errors():
    params, _ = problem(5)
    assert isinstance(make_optimizer("adam", params, BACKEND, lr=1e-3, beta2=0.95, eps=1e-4), Adam)
    with pytest.raises(ValueError, match="unknown optimiser 'rmsprop'"):
        make_optimizer("rmsprop", params, BACKEND, lr=1e-3)
