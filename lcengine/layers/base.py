"""The small interface every layer offers; learning rules see layers only through it.

A layer is an affine map `a = W x + b` (the pre-activation; the nonlinearity is a separate
`Activation`). Shapes are per example, without the batch axis (`in_shape`, `out_shape`).

    forward(x)                          -> (a, cache)
    backward_input(da, cache, weights)  -> dx    through W, or through any array of W's shape
                                                 (FA's fixed random B) given as `weights`
    backward_weight(da, cache)          -> {"W": dW, "b": db}   summed over the batch
    deferred_backward_weight(da, cache) -> the same, with a gradient that an optimiser can compute
                                           inside its own update left as a `DeferredGradient`
    inverse(rng)                        -> a new layer out_shape -> in_shape with its own learned
                                           weights (the TP family's g, pre-activation)
    feedback_like(rng, scale)           -> a fixed random array of W's shape (FA's B)

Parameters live in `params` ({"W": ..., "b": ...}); optimisers update them in place.
"""

from __future__ import annotations

import math


class DeferredGradient:
    """A weight gradient left for the optimiser: `value()` computes it; `adam_update(p, m, v,
    step, beta1, beta2, eps_hat)` computes it inside Adam's update of p, as `ops.adam_update(p,
    value(), m, v, ...)` would, but without writing it out to memory and reading it back (the
    LC layers' W: `ops.lc_backward_weight_adam`)."""

    def __init__(self, value, adam_update):
        self.value = value
        self.adam_update = adam_update


class Layer:
    in_shape: tuple
    out_shape: tuple
    params: dict

    def forward(self, x):
        raise NotImplementedError

    def backward_input(self, da, cache, weights=None):
        raise NotImplementedError

    def backward_weight(self, da, cache):
        raise NotImplementedError

    def deferred_backward_weight(self, da, cache):
        return self.backward_weight(da, cache)

    def inverse(self, rng):
        raise NotImplementedError

    @property
    def fan_in(self) -> int:
        raise NotImplementedError

    @property
    def fan_out(self) -> int:
        raise NotImplementedError

    def glorot_limit(self) -> float:
        """Glorot & Bengio's uniform limit sqrt(6 / (fan_in + fan_out)) (paper §1.1)."""
        return math.sqrt(6.0 / (self.fan_in + self.fan_out))

    def feedback_like(self, rng, scale=None):
        """A fixed random matrix of W's shape: FA's B. Glorot-uniform unless `scale` is given."""
        limit = self.glorot_limit() if scale is None else scale
        W = self.params["W"]
        return rng.uniform(W.shape, -limit, limit, dtype=W.dtype)


def size(shape) -> int:
    return math.prod(shape)
