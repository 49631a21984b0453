"""Losses on the output pre-activation a_L, averaged over the batch.

Each returns (loss, dloss/da) with the gradient of the *batch-mean* loss, so summing the layer
gradients over the batch (what `backward_weight` does) gives the gradient of the mean loss.
"""

from __future__ import annotations

from ..ops.xp import array_module


def softmax(a):
    xp = array_module(a)
    e = xp.exp(a - a.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def one_hot(labels, n_classes, dtype):
    xp = array_module(labels)
    out = xp.zeros((labels.shape[0], n_classes), dtype=dtype)
    out[xp.arange(labels.shape[0]), labels] = 1
    return out


def softmax_cross_entropy(a, labels):
    """L = -mean_n log softmax(a_n)[y_n];  dL/da = (softmax(a) - onehot(y)) / N."""
    xp = array_module(a)
    n = a.shape[0]
    shifted = a - a.max(axis=1, keepdims=True)
    log_p = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_p[xp.arange(n), labels].mean()
    grad = (xp.exp(log_p) - one_hot(labels, a.shape[1], a.dtype)) / n
    return loss, grad


def squared_error(h, target):
    """L = mean_n Σ_units (h - target)²  (summed over units, batch-mean, as in the DTP code);
    dL/dh = 2 (h - target) / N."""
    n = h.shape[0]
    diff = h - target
    return (diff * diff).sum() / n, 2.0 * diff / n
