"""Test helpers: a fixed subset of the real MNIST (read from the official gzipped IDX files), the
paper's mnist-fc net, and a minimal training loop for the rule tests."""

from __future__ import annotations

import gzip
import struct

import numpy as np

from lcengine.nets import build_network
from lcengine.optim import Adam


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


def mnist_fc(backend, rng, dtype="float32", **kw):
    """The paper's MNIST FC net (784-256×5-10, tanh hidden, identity top) from `nets`; `kw`:
    width, input_shape, n_classes (for small gradient-check nets)."""
    return build_network("mnist-fc", backend, rng, dtype=dtype, **kw)


def train(rule, x, labels, steps, *, lr, inv_lr=None, schedule="parallel", batch=100,
          epoch_batches=None):
    """`steps` Adam steps of `rule` over (x, labels) in fixed order, minibatches of `batch`.
    parallel: phase "both" every step; alternating: whole epochs (`epoch_batches` minibatches,
    default one pass) of "inverse", then of "forward", inverse first. Returns the step losses."""
    backend = rule.net.backend
    forward = Adam(rule.forward_params(), lr, backend=backend)
    inverse = Adam(rule.inverse_params(), inv_lr if inv_lr is not None else lr, backend=backend)
    per_epoch = epoch_batches or x.shape[0] // batch
    losses = []
    for s in range(steps):
        b = s % per_epoch
        if schedule == "parallel":
            phase = "both"
        else:
            phase = "inverse" if (s // per_epoch) % 2 == 0 else "forward"
        rows = slice(b * batch, (b + 1) * batch)
        step = rule.gradients(x[rows], labels[rows], phase)
        inverse.step(step.inverse)
        if step.forward:
            rule.apply_weight_decay()
        forward.step(step.forward)
        losses.append(step.loss)
    return losses


def mean_loss(net, x, labels):
    return float(net.loss(net.predict(x), labels)[0])
