"""Test helpers: a fixed subset of the real MNIST (read from the official gzipped IDX files) and
the paper's mnist-fc net (784-256×5-10, tanh hidden, identity top) built from Dense layers."""

from __future__ import annotations

import gzip
import struct

import numpy as np

from lcengine.layers import Dense, activation
from lcengine.network import Network


def read_idx(path, count):
    """The first `count` items of an IDX file (gzipped): uint8 array of shape (count, *dims)."""
    with gzip.open(path, "rb") as f:
        magic, n = struct.unpack(">II", f.read(8))
        ndim = magic & 0xFF
        if magic >> 8 != 0x08 or ndim < 1:
            raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {magic:#x})")
        dims = struct.unpack(f">{ndim - 1}I", f.read(4 * (ndim - 1)))
        if count > n:
            raise ValueError(f"{path}: holds {n} items, asked for {count}")
        size = int(np.prod(dims, dtype=np.int64))
        data = np.frombuffer(f.read(count * size), dtype=np.uint8)
    return data.reshape((count,) + dims)


def mnist_subset(mnist_dir, count=1000):
    """(x float32 (count, 1, 28, 28) in [0, 1], labels int64): the first `count` training images."""
    x = read_idx(mnist_dir / "train-images-idx3-ubyte.gz", count).astype(np.float32) / 255.0
    labels = read_idx(mnist_dir / "train-labels-idx1-ubyte.gz", count).astype(np.int64)
    return x[:, None, :, :], labels


def mnist_fc(backend, rng, dtype="float32", hidden=(256,) * 5, in_shape=(1, 28, 28), n_classes=10):
    """The paper's MNIST FC net: in_shape → hidden… (tanh) → n_classes (identity; logits)."""
    sizes = list(hidden) + [n_classes]
    layers, acts, shape = [], [], in_shape
    for i, n in enumerate(sizes):
        layers.append(Dense(shape, n, backend, rng, dtype=dtype))
        acts.append(activation("tanh" if i < len(sizes) - 1 else "identity"))
        shape = (n,)
    return Network("mnist-fc", layers, acts, backend)
