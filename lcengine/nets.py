"""The paper's architectures (§2, App. 5.2 Table 3) as a table, and the builder that reads it.

Every hidden layer is followed by tanh; the top layer is a fully-connected map to the classes
with the identity (logits; the softmax lives in the loss). Windowed layers use TensorFlow "same"
padding, so stride s maps H to ceil(H / s); there is no pooling anywhere. All weights are
Glorot-uniform, all biases zero.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .backend import get_backend
from .layers import Conv2D, Dense, LocallyConnected2D, activation
from .network import Network

INPUT_SHAPES = {"mnist": (1, 28, 28), "cifar": (3, 32, 32), "imagenet": (3, 224, 224)}
N_CLASSES = {"mnist": 10, "cifar": 10, "imagenet": 1000}

#: Hidden layers, in the paper's notation: ("fc", units) or ("lc", kernel, out channels, stride).
HIDDEN = {
    "mnist-fc": [("fc", 256)] * 5,
    "mnist-lc": [("lc", 3, 32, 2), ("lc", 3, 64, 2), ("fc", 1024)],
    "cifar-fc": [("fc", 1024)] * 3,
    "cifar-lc": [("lc", 5, 64, 2), ("lc", 5, 128, 2), ("lc", 3, 256, 1), ("fc", 1024)],
    "imagenet-lc": [("lc", 9, 48, 4), ("lc", 3, 48, 2), ("lc", 5, 96, 1), ("lc", 3, 96, 2),
                    ("lc", 3, 192, 1), ("lc", 3, 192, 2), ("lc", 3, 384, 1)],
}


def _conv_twin(specs):
    """The "BP ConvNet" baseline: the same net with weight-shared convolutions in place of LC."""
    return [("conv", *spec[1:]) if spec[0] == "lc" else spec for spec in specs]


HIDDEN["mnist-conv"] = _conv_twin(HIDDEN["mnist-lc"])
HIDDEN["cifar-conv"] = _conv_twin(HIDDEN["cifar-lc"])
HIDDEN["imagenet-conv"] = _conv_twin(HIDDEN["imagenet-lc"])

ARCHS = ("mnist-fc", "mnist-lc", "mnist-conv", "cifar-fc", "cifar-lc", "cifar-conv",
         "imagenet-lc", "imagenet-conv")
WINDOWED = {"lc": LocallyConnected2D, "conv": Conv2D}


def build_network(arch, backend, rng, dtype="float32", width=1.0, *, input_shape=None,
                  n_classes=None) -> Network:
    """The net `arch` (one of ARCHS). `width` scales every hidden layer's units or channels
    (rounded, at least 1; the class count is never scaled); `input_shape` (C, H, W) and
    `n_classes` override the dataset's."""
    if arch not in HIDDEN:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
    dataset = arch.split("-")[0]
    shape = tuple(input_shape or INPUT_SHAPES[dataset])
    layers = []
    for spec in HIDDEN[arch]:
        layers.append(_make_layer(spec, shape, width, backend, rng, dtype))
        shape = layers[-1].out_shape
    layers.append(Dense(shape, n_classes or N_CLASSES[dataset], backend, rng, dtype=dtype))
    activations = ([activation("tanh", backend.ops)] * (len(layers) - 1)
                   + [activation("identity", backend.ops)])
    return Network(arch, layers, activations, backend)


def _make_layer(spec, in_shape, width, backend, rng, dtype):
    kind = spec[0]
    if kind == "fc":
        return Dense(in_shape, _scaled(spec[1], width), backend, rng, dtype=dtype)
    kernel, channels, stride = spec[1:]
    return WINDOWED[kind](in_shape, _scaled(channels, width), kernel, stride, "same",
                          backend=backend, rng=rng, dtype=dtype)


def _scaled(n, width):
    return max(1, round(n * width))


class LayerRow(NamedTuple):
    name: str           # "lc (3x3, 32, 2)", "conv (...)", "fc 1024": the paper's notation
    in_shape: tuple
    out_shape: tuple
    n_weights: int      # entries of W (biases not counted, as in the paper's counts)


def describe(net) -> list[LayerRow]:
    return [LayerRow(_name(layer), layer.in_shape, layer.out_shape, int(layer.params["W"].size))
            for layer in net.layers]


def describe_arch(arch, width=1.0, *, input_shape=None, n_classes=None) -> list[LayerRow]:
    """`describe` of the net `arch` without allocating its weights (ImageNet LC is ~1 GB)."""
    return describe(build_network(arch, get_backend("cpu", kernels="ref"), _ShapeOnlyRng(),
                                  width=width, input_shape=input_shape, n_classes=n_classes))


def _name(layer):
    if isinstance(layer, Dense):
        return f"fc {layer.out_shape[0]}"
    kind = next(k for k, cls in WINDOWED.items() if isinstance(layer, cls))
    return f"{kind} ({layer.geometry.label()})"


class _ShapeOnlyRng:
    """Stands in for `Rng` when only shapes matter: every "random" array is a zero-stride view
    of a single zero, so a layer of any size costs no memory."""

    def uniform(self, shape, low, high, dtype=np.float32):
        return np.broadcast_to(np.zeros((), dtype=dtype), shape)
