"""The LC and conv reference ops: forward against a literal scalar loop, backward_input as the
exact adjoint of forward, backward_weight against finite differences, and the TensorFlow window
geometry they all rely on."""

import math

import numpy as np
import pytest
from gradcheck import assert_close, check_directional

from lcengine.backend import get_backend
from lcengine.ops.geometry import window_geometry

OPS = get_backend("cpu", kernels="ref").ops

# (N, C, (H, W), O, (kh, kw), (sh, sw), padding): batch 1, odd and non-square sizes, stride 2
# and 3, kernels wider than the stride and narrower, both paddings.
CASES = [
    (1, 1, (5, 7), 2, (3, 3), (2, 2), "same"),
    (2, 3, (6, 5), 4, (3, 2), (3, 1), "valid"),
    (1, 2, (7, 4), 3, (4, 4), (3, 3), "same"),
    (3, 2, (9, 6), 2, (5, 5), (2, 2), "valid"),
    (2, 2, (5, 5), 3, (1, 1), (2, 2), "same"),
]
IDS = [f"n{n}c{c}{h}x{w}o{o}k{kh}x{kw}s{sh}x{sw}{pad}"
       for n, c, (h, w), o, (kh, kw), (sh, sw), pad in CASES]


def _setup(case, seed, shared):
    N, C, hw, O, kernel, stride, padding = case
    (P, Q), pads = window_geometry(hw, kernel, stride, padding)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C) + hw)
    w_shape = (O, C) + kernel if shared else (P, Q, O, C) + kernel
    return x, rng.standard_normal(w_shape), rng.standard_normal((N, O, P, Q)), stride, pads


def _ops(shared):
    if shared:
        return OPS.conv_forward, OPS.conv_backward_input, OPS.conv_backward_weight
    return OPS.lc_forward, OPS.lc_backward_input, OPS.lc_backward_weight


def _literal_forward(x, W, stride, pads, shared):
    """y[n,o,p,q] = Σ W[(p,q),o,c,i,j] x[n,c,p·sh+i−top,q·sw+j−left]; x = 0 off the image."""
    N, C, H, Wd = x.shape
    kh, kw = W.shape[-2:]
    O = W.shape[0] if shared else W.shape[2]
    P, Q = _out_hw(x.shape[2:], (kh, kw), stride, pads)
    y = np.zeros((N, O, P, Q))
    for n, o, p, q, c, i, j in np.ndindex(N, O, P, Q, C, kh, kw):
        h, w = p * stride[0] + i - pads[0], q * stride[1] + j - pads[2]
        if 0 <= h < H and 0 <= w < Wd:
            weight = W[o, c, i, j] if shared else W[p, q, o, c, i, j]
            y[n, o, p, q] += weight * x[n, c, h, w]
    return y


def _out_hw(hw, kernel, stride, pads):
    return tuple((hw[d] + pads[2 * d] + pads[2 * d + 1] - kernel[d]) // stride[d] + 1
                 for d in (0, 1))


@pytest.mark.parametrize("shared", [False, True], ids=["lc", "conv"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_matches_literal_loop(case, shared):
    x, W, _, stride, pads = _setup(case, seed=1, shared=shared)
    forward = _ops(shared)[0]
    assert_close(forward(x, W, stride, pads), _literal_forward(x, W, stride, pads, shared),
                 rtol=1e-12, atol=1e-12, seed=1, what="forward")


@pytest.mark.parametrize("shared", [False, True], ids=["lc", "conv"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_backward_input_is_adjoint_of_forward(case, shared):
    """<forward(x), dy> = <x, backward_input(dy)> for every x, dy: backward_input = Mᵀ."""
    x, W, dy, stride, pads = _setup(case, seed=2, shared=shared)
    forward, backward_input, _ = _ops(shared)
    dx = backward_input(dy, W, x.shape[2:], stride, pads)
    assert dx.shape == x.shape
    assert_close(np.vdot(x, dx), np.vdot(forward(x, W, stride, pads), dy),
                 rtol=1e-12, atol=1e-12, seed=2, what="<x, Mᵀdy> vs <Mx, dy>")


@pytest.mark.parametrize("shared", [False, True], ids=["lc", "conv"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_backward_weight_matches_finite_differences(case, shared):
    x, W, dy, stride, pads = _setup(case, seed=3, shared=shared)
    forward, _, backward_weight = _ops(shared)
    dW = backward_weight(x, dy, W.shape[-2:], stride, pads)
    check_directional(lambda w: np.vdot(forward(x, w, stride, pads), dy), W, dW, seed=3)


# (in size, kernel, stride, padding) -> (out size, (before, after)), from TensorFlow's rule:
# "same": out = ceil(n / s), total pad = max((out − 1)·s + k − n, 0), the odd pixel after.
GEOMETRY = [
    ((7, 3, 2, "same"), (4, (1, 1))),
    ((8, 3, 2, "same"), (4, (0, 1))),        # asymmetric: the extra pixel goes after
    ((5, 4, 1, "same"), (5, (1, 2))),
    ((224, 9, 4, "same"), (56, (2, 3))),     # ImageNet LC's first layer
    ((6, 1, 2, "same"), (3, (0, 0))),        # stride larger than the kernel: no padding needed
    ((28, 3, 2, "same"), (14, (0, 1))),
    ((7, 3, 2, "valid"), (3, (0, 0))),
    ((9, 5, 3, "valid"), (2, (0, 0))),
]


@pytest.mark.parametrize("args, expected", GEOMETRY, ids=[str(a) for a, _ in GEOMETRY])
def test_window_geometry_tensorflow_semantics(args, expected):
    n, k, s, padding = args
    (out, _), pads = window_geometry((n, 5), (k, 1), (s, 1), padding)
    assert (out, pads[:2]) == expected
    if padding == "same":
        assert out == math.ceil(n / s)


def test_window_geometry_non_square_and_per_axis():
    (P, Q), pads = window_geometry((8, 5), (3, 4), (2, 3), "same")
    assert (P, Q) == (4, 2)
    # H: total (4−1)·2 + 3 − 8 = 1 → (0, 1); W: (2−1)·3 + 4 − 5 = 2 → (1, 1)
    assert pads == (0, 1, 1, 1)


def test_window_geometry_rejects_bad_arguments():
    with pytest.raises(ValueError, match="larger than the input"):
        window_geometry((3, 3), 5, 1, "valid")
    with pytest.raises(ValueError, match="padding must be"):
        window_geometry((3, 3), 3, 1, "full")


def test_every_face_exports_its_familys_functions():
    """What `backend._load_ops` takes from a face (CUDA faces read as source: no CuPy here)."""
    import ast
    from pathlib import Path

    from lcengine.ops import FAMILIES
    ops_dir = Path(__file__).resolve().parents[1] / "lcengine" / "ops"
    for family, names in FAMILIES.items():
        for face in ("ref", "cpu", "cuda"):
            path = ops_dir / f"{family}_{face}.py"
            if face != "ref" and not path.exists():
                continue                                # the backend falls back to the reference
            tree = ast.parse(path.read_text())
            defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
            defined |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
                        if isinstance(t, ast.Name)}
            defined |= {a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom)
                        for a in n.names}                       # a face that re-exports
            missing = set(names) - defined
            assert not missing, f"{path.name} lacks {sorted(missing)}"
