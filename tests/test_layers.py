"""Every layer's passes: finite differences of backward_input and backward_weight on awkward
shapes, FA's `weights=B`, dtypes, and the identities tied-LC == conv and
transposed LC == the transpose of the LC's explicit matrix."""

import numpy as np
import pytest
from gradcheck import assert_close, check_directional

from lcengine.backend import get_backend
from lcengine.layers import Conv2D, Dense, LocallyConnected2D, TransposedConv2D, TransposedLC
from lcengine.ops.cpu import lc as lc_cpu

BACKEND = get_backend("cpu", kernels="ref")

# (batch, in_shape (C, H, W), out channels, kernel, stride, padding)
WINDOW_CASES = [
    (1, (1, 5, 7), 2, 3, 2, "same"),
    (2, (3, 6, 5), 4, (3, 2), (3, 1), "valid"),
    (1, (2, 7, 4), 3, 4, 3, "same"),
    (3, (2, 9, 6), 2, 5, 2, "valid"),
    (2, (2, 5, 5), 3, 3, 1, "same"),
]
WINDOW_IDS = [f"n{n}-{'x'.join(map(str, s))}-o{o}-k{k}-s{st}-{p}".replace(" ", "")
              for n, s, o, k, st, p in WINDOW_CASES]
KINDS = ["lc", "transposed-lc", "conv", "transposed-conv"]


def _windowed(kind, case, seed, dtype="float64"):
    """The layer of `kind` for `case` and the batch size; transposed kinds are the inverse of
    their forward twin, so they map the case's output shape back to its input shape."""
    batch, in_shape, out_channels, kernel, stride, padding = case
    rng = BACKEND.rng(seed)
    cls = LocallyConnected2D if kind.endswith("lc") else Conv2D
    layer = cls(in_shape, out_channels, kernel, stride, padding, backend=BACKEND, rng=rng,
                dtype=dtype)
    if kind.startswith("transposed"):
        layer = layer.inverse(rng)
    _randomise_biases(layer, rng)
    return layer, batch


def _randomise_biases(layer, rng):
    """Biases start at zero; give them values so that a bias mix-up cannot hide."""
    b = layer.params["b"]
    b[...] = rng.normal(b.shape, dtype=b.dtype)


def _dense(batch, seed, dtype="float64"):
    rng = BACKEND.rng(seed)
    layer = Dense((2, 3, 5), 7, BACKEND, rng, dtype=dtype)
    _randomise_biases(layer, rng)
    return layer, batch


def _all_layers():
    yield "dense-n1", lambda seed: _dense(1, seed)
    yield "dense-n3", lambda seed: _dense(3, seed)
    for kind in KINDS:
        for case, case_id in zip(WINDOW_CASES, WINDOW_IDS):
            yield (f"{kind}-{case_id}",
                   lambda seed, kind=kind, case=case: _windowed(kind, case, seed))


LAYERS = dict(_all_layers())


def _inputs(layer, batch, seed, dtype="float64"):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch,) + layer.in_shape).astype(dtype)
    r = rng.standard_normal((batch,) + layer.out_shape).astype(dtype)
    return x, r


@pytest.mark.parametrize("name", LAYERS)
def test_backward_input_matches_finite_differences(name):
    layer, batch = LAYERS[name](seed=10)
    x, r = _inputs(layer, batch, seed=11)
    a, cache = layer.forward(x)
    assert a.shape == (batch,) + layer.out_shape
    dx = layer.backward_input(r, cache)
    check_directional(lambda x_: np.vdot(layer.forward(x_)[0], r), x, dx, seed=12)


@pytest.mark.parametrize("name", LAYERS)
def test_backward_weight_matches_finite_differences(name):
    layer, batch = LAYERS[name](seed=20)
    x, r = _inputs(layer, batch, seed=21)
    grads = layer.backward_weight(r, layer.forward(x)[1])
    params = dict(layer.params)

    def loss(p):
        layer.params = p
        return np.vdot(layer.forward(x)[0], r)

    check_directional(loss, params, grads, seed=22)


@pytest.mark.parametrize("name", LAYERS)
def test_feedback_weights_replace_W(name):
    """FA: backward_input(da, cache, weights=B) is the same map with B in W's place."""
    layer, batch = LAYERS[name](seed=30)
    x, r = _inputs(layer, batch, seed=31)
    cache = layer.forward(x)[1]
    B = layer.feedback_like(BACKEND.rng(32))
    assert B.shape == layer.params["W"].shape and B.dtype == layer.params["W"].dtype
    through_B = layer.backward_input(r, cache, weights=B)
    through_W = layer.backward_input(r, cache)
    layer.params["W"] = B
    assert_close(through_B, layer.backward_input(r, cache), rtol=1e-12, atol=1e-12, seed=30,
                 what="backward_input with weights=B vs with W := B")
    assert not np.allclose(through_B, through_W)


@pytest.mark.parametrize("name", ["dense-n3"] + [f"{k}-{WINDOW_IDS[0]}" for k in KINDS])
def test_float32_matches_float64(name):
    layer64, batch = LAYERS[name](seed=40)
    layer32, _ = LAYERS[name](seed=40)
    for key in layer32.params:
        layer32.params[key] = layer64.params[key].astype(np.float32)
    x, r = _inputs(layer64, batch, seed=41)
    a64, cache64 = layer64.forward(x)
    a32, cache32 = layer32.forward(x.astype(np.float32))
    r32 = r.astype(np.float32)
    pairs = [("forward", a32, a64),
             ("backward_input", layer32.backward_input(r32, cache32),
              layer64.backward_input(r, cache64))]
    grads32, grads64 = layer32.backward_weight(r32, cache32), layer64.backward_weight(r, cache64)
    pairs += [(f"backward_weight {k}", grads32[k], grads64[k]) for k in grads64]
    for what, got, ref in pairs:
        assert got.dtype == np.float32, what
        assert_close(got, ref, rtol=1e-4, atol=1e-5, seed=40, what=what)


@pytest.mark.parametrize("kind", ["lc", "conv"])
def test_init_is_glorot_uniform_with_zero_biases(kind):
    cls = LocallyConnected2D if kind == "lc" else Conv2D
    layer = cls((3, 12, 10), 8, 5, 2, backend=BACKEND, rng=BACKEND.rng(0), dtype="float32")
    W, b = layer.params["W"], layer.params["b"]
    limit = np.sqrt(6.0 / ((3 + 8) * 5 * 5))          # fan_in = C·kh·kw, fan_out = O·kh·kw
    assert W.shape == ((6, 5, 8, 3, 5, 5) if kind == "lc" else (8, 3, 5, 5))
    assert b.shape == ((8, 6, 5) if kind == "lc" else (8,))
    assert W.dtype == np.float32 and not b.any()
    assert np.abs(W).max() <= limit and np.abs(W).max() > 0.9 * limit
    assert abs(W.std() - limit / np.sqrt(3)) < 0.05 * limit  # the std of U(−limit, limit)


@pytest.mark.parametrize("kind", ["lc", "conv"])
def test_inverse_has_own_weights_and_swapped_shapes(kind):
    layer, _ = _windowed(kind, WINDOW_CASES[0], seed=50)
    inverse = layer.inverse(BACKEND.rng(51))
    assert isinstance(inverse, TransposedLC if kind == "lc" else TransposedConv2D)
    assert (inverse.in_shape, inverse.out_shape) == (layer.out_shape, layer.in_shape)
    assert inverse.params["W"].shape == layer.params["W"].shape
    assert not np.array_equal(inverse.params["W"], layer.params["W"])
    assert inverse.params["b"].shape == ((1, 5, 7) if kind == "lc" else (1,))
    with pytest.raises(NotImplementedError):
        inverse.inverse(BACKEND.rng(52))


@pytest.mark.parametrize("case", WINDOW_CASES, ids=WINDOW_IDS)
def test_lc_with_tied_filters_equals_conv(case):
    """The Chainer oracle: an LC layer whose filters are the same at every location is a conv."""
    conv, batch = _windowed("conv", case, seed=60)
    lc, _ = _windowed("lc", case, seed=61)
    lc.params["W"][...] = conv.params["W"]                      # broadcast K to every (p, q)
    lc.params["b"][...] = conv.params["b"][:, None, None]
    x, r = _inputs(conv, batch, seed=62)
    a_lc, cache_lc = lc.forward(x)
    a_conv, cache_conv = conv.forward(x)
    assert_close(a_lc, a_conv, rtol=1e-12, atol=1e-12, seed=60, what="forward")
    assert_close(lc.backward_input(r, cache_lc), conv.backward_input(r, cache_conv),
                 rtol=1e-12, atol=1e-12, seed=60, what="backward_input")
    g_lc, g_conv = lc.backward_weight(r, cache_lc), conv.backward_weight(r, cache_conv)
    assert_close(g_lc["W"].sum(axis=(0, 1)), g_conv["W"], rtol=1e-12, atol=1e-12, seed=60,
                 what="dW summed over locations vs dK")
    assert_close(g_lc["b"].sum(axis=(1, 2)), g_conv["b"], rtol=1e-12, atol=1e-12, seed=60,
                 what="db summed over locations vs conv db")


def _dense_matrix(layer):
    """M (out × in) of the linear part of `layer`: column k is f(e_k) − f(0), e_k the basis."""
    n_in = int(np.prod(layer.in_shape))
    basis = np.eye(n_in).reshape((n_in,) + layer.in_shape)
    responses = layer.forward(basis)[0] - layer.forward(np.zeros_like(basis[:1]))[0]
    return responses.reshape(n_in, -1).T


@pytest.mark.parametrize("kind", ["lc", "conv"])
@pytest.mark.parametrize("case", WINDOW_CASES, ids=WINDOW_IDS)
def test_transposed_layer_is_the_transposed_matrix(kind, case):
    """Paper §1.8: with V = A, the inverse computes M_Aᵀ y + c, M_A the forward map's matrix."""
    forward, batch = _windowed(kind, case, seed=70)
    inverse, _ = _windowed(f"transposed-{kind}", case, seed=71)
    inverse.params["W"][...] = forward.params["W"]              # V = A
    M = _dense_matrix(forward)                                  # (out, in)
    y = np.random.default_rng(72).standard_normal((batch,) + inverse.in_shape)
    b = inverse.params["b"]
    c = b if kind == "lc" else b[:, None, None]                # untied (C, H, W) or per channel
    expected = (y.reshape(batch, -1) @ M).reshape((batch,) + inverse.out_shape) + c
    assert_close(inverse.forward(y)[0], expected, rtol=1e-12, atol=1e-12, seed=70,
                 what="transposed forward vs M_Aᵀ y + c")


def test_dense_keeps_the_inputs_memory_order():
    """Below a Dense layer sits an LC layer whose fast CPU face returns batch-last activations
    (ops/cpu/lc.py); a and dx come back in that order, with the same values as for a
    batch-first x (so a TP inverse mapping back onto an LC layer's output matches its order)."""
    layer, batch = _dense(4, 31)
    x, r = _inputs(layer, batch, 31)
    x_last = lc_cpu.batch_last(x)
    da = r.reshape(batch, -1)
    (a_first, cache_first), (a_last, cache_last) = layer.forward(x), layer.forward(x_last)
    assert a_first.flags.c_contiguous and lc_cpu.is_batch_last(a_last)
    np.testing.assert_allclose(a_last, a_first, rtol=1e-12, atol=1e-12)
    dx_first = layer.backward_input(da, cache_first)
    dx_last = layer.backward_input(da, cache_last)
    assert dx_first.flags.c_contiguous
    assert lc_cpu.is_batch_last(dx_last)
    np.testing.assert_allclose(dx_last, dx_first, rtol=1e-12, atol=1e-12)
    inverse = layer.inverse(BACKEND.rng(32))                 # out_shape → in_shape, as TP's g
    y_last = lc_cpu.batch_last(a_first)
    assert lc_cpu.is_batch_last(inverse.forward(y_last)[0])
