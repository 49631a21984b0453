"""The paper's architectures (§2): shape paths, weight counts, the width factor and overrides."""

import numpy as np
import pytest

from lcengine.backend import get_backend
from lcengine.layers import Conv2D, Dense, LocallyConnected2D
from lcengine.nets import ARCHS, build_network, describe, describe_arch

BACKEND = get_backend("cpu", kernels="ref")

# Paper §2: the shape path of every LC net (the conv twins share it) and its weights per layer.
SHAPES = {
    "mnist-lc": [(1, 28, 28), (32, 14, 14), (64, 7, 7), (1024,), (10,)],
    "cifar-lc": [(3, 32, 32), (64, 16, 16), (128, 8, 8), (256, 8, 8), (1024,), (10,)],
    "imagenet-lc": [(3, 224, 224), (48, 56, 56), (48, 28, 28), (96, 28, 28), (96, 14, 14),
                    (192, 14, 14), (192, 7, 7), (384, 7, 7), (1000,)],
    "mnist-fc": [(1, 28, 28)] + [(256,)] * 5 + [(10,)],
    "cifar-fc": [(3, 32, 32)] + [(1024,)] * 3 + [(10,)],
}
SHAPES.update({a.replace("-lc", "-conv"): s for a, s in SHAPES.items() if a.endswith("-lc")})

# Total weights (biases excluded), checked against the paper's ≈ figures.
WEIGHTS = {
    "mnist-fc": (465_408, 0.47e6),
    "mnist-lc": (4_181_120, 4.2e6),
    "cifar-fc": (5_253_120, 5.25e6),
    "cifar-lc": (49_997_824, 50e6),
    "imagenet-lc": (259_510_272, 260e6),
}
SMALL = [a for a in ARCHS if not a.startswith("imagenet")]


@pytest.mark.parametrize("arch", ARCHS)
def test_shape_path(arch):
    rows = describe_arch(arch)
    assert [r.in_shape for r in rows] + [rows[-1].out_shape] == SHAPES[arch]
    assert all(r.out_shape == nxt.in_shape for r, nxt in zip(rows, rows[1:]))


@pytest.mark.parametrize("arch", list(WEIGHTS))
def test_weight_counts_match_the_paper(arch):
    exact, paper = WEIGHTS[arch]
    total = sum(r.n_weights for r in describe_arch(arch))
    assert total == exact
    assert abs(total - paper) < 0.01 * paper


def test_imagenet_lc_per_layer_weights():
    millions = [round(r.n_weights / 1e6, 1) for r in describe_arch("imagenet-lc")]
    assert millions == [36.6, 16.3, 90.3, 16.3, 32.5, 16.3, 32.5, 18.8]


def test_conv_twins_share_weights_across_locations():
    lc, conv = describe_arch("cifar-lc"), describe_arch("cifar-conv")
    assert [r.name.replace("lc", "conv") for r in lc] == [r.name for r in conv]
    for r_lc, r_conv in zip(lc, conv):
        locations = int(np.prod(r_lc.out_shape[1:])) if r_lc.name.startswith("lc") else 1
        assert r_lc.n_weights == r_conv.n_weights * locations


@pytest.mark.parametrize("arch", SMALL)
def test_built_net_matches_its_description_and_runs(arch):
    net = build_network(arch, BACKEND, BACKEND.rng(0))
    assert describe(net) == describe_arch(arch)
    assert net.name == arch and len(net) == len(SHAPES[arch]) - 1
    assert [a.name for a in net.activations] == ["tanh"] * (len(net) - 1) + ["identity"]
    kinds = {type(layer) for layer in net.layers[:-1]} - {Dense}
    assert kinds == ({LocallyConnected2D} if arch.endswith("-lc") else
                     {Conv2D} if arch.endswith("-conv") else set())
    x = np.random.default_rng(1).standard_normal((2,) + SHAPES[arch][0]).astype(np.float32)
    logits = net.predict(x)
    assert logits.shape == (2, 10) and logits.dtype == np.float32
    assert all(p.dtype == np.float32 for p in net.parameters().values())


def test_width_scales_hidden_layers_but_not_classes():
    rows = describe_arch("imagenet-lc", width=1 / 16)
    assert [r.out_shape[0] for r in rows] == [3, 3, 6, 6, 12, 12, 24, 1000]
    assert [r.out_shape[0] for r in describe_arch("mnist-fc", width=0.001)] == [1] * 5 + [10]


def test_reduced_imagenet_lc_runs_on_cpu_with_overrides():
    net = build_network("imagenet-lc", BACKEND, BACKEND.rng(2), dtype="float64", width=1 / 16,
                        input_shape=(3, 40, 36), n_classes=7)
    assert describe(net)[0].out_shape == (3, 10, 9)
    x = np.random.default_rng(3).standard_normal((1, 3, 40, 36))
    trace = net.forward(x)
    assert trace.logits.shape == (1, 7) and trace.logits.dtype == np.float64
    assert [h.shape[1:] for h in trace.h[1:-1]] == [(3, 10, 9), (3, 5, 5), (6, 5, 5), (6, 3, 3),
                                                     (12, 3, 3), (12, 2, 2), (24, 2, 2)]


def test_same_seed_same_net():
    a = build_network("mnist-lc", BACKEND, BACKEND.rng(5))
    b = build_network("mnist-lc", BACKEND, BACKEND.rng(5))
    assert all(np.array_equal(a.parameters()[k], v) for k, v in b.parameters().items())


def test_unknown_arch_names_the_choices():
    with pytest.raises(ValueError, match="unknown architecture 'mnist-cnn'; choose one of "
                                         "mnist-fc, mnist-lc, mnist-conv"):
        build_network("mnist-cnn", BACKEND, BACKEND.rng(0))
