"""Fully-connected layer: a = W x + b, W of shape (n_out, n_in), x flattened from any in_shape."""

from __future__ import annotations

from .base import Layer, size


def _batch_last(x_flat):
    """Whether x (N, n_in) is batch-last memory: the flattened view of what the windowed CPU
    ops return (lcengine/ops/cpu/lc.py), which the layers below read fastest in that order."""
    return x_flat.flags.f_contiguous and not x_flat.flags.c_contiguous


class Dense(Layer):
    def __init__(self, in_shape, n_out, backend, rng, dtype="float32", out_shape=None):
        self.in_shape = tuple(in_shape) if not isinstance(in_shape, int) else (in_shape,)
        self.out_shape = tuple(out_shape) if out_shape is not None else (int(n_out),)
        self.backend = backend
        limit = self.glorot_limit()
        self.params = {"W": rng.uniform((self.fan_out, self.fan_in), -limit, limit, dtype=dtype),
                       "b": backend.xp.zeros(self.fan_out, dtype=dtype)}

    @property
    def fan_in(self):
        return size(self.in_shape)

    @property
    def fan_out(self):
        return size(self.out_shape)

    def forward(self, x):
        x_flat = x.reshape(x.shape[0], -1)                            # (N, n_in)
        W, b = self.params["W"], self.params["b"]
        if _batch_last(x_flat):           # keep x's memory order: (W xᵀ + b)ᵀ is a, batch last
            a = (W @ x_flat.T + b[:, None]).T                          # (N, n_out) view
        else:
            a = x_flat @ W.T + b                                       # (N, n_out)
        return a.reshape((x.shape[0],) + self.out_shape), x_flat

    def backward_input(self, da, cache, weights=None):
        W = self.params["W"] if weights is None else weights
        da_flat = da.reshape(da.shape[0], -1)
        if _batch_last(cache):            # keep x's memory order: (Wᵀ daᵀ)ᵀ is dx, batch last
            dx = (W.T @ da_flat.T).T                                   # (N, n_in) view
        else:
            dx = da_flat @ W                                           # (N, n_in)
        return dx.reshape((da.shape[0],) + self.in_shape)

    def backward_weight(self, da, cache):
        da_flat = da.reshape(da.shape[0], -1)                          # (N, n_out)
        return {"W": da_flat.T @ cache, "b": da_flat.sum(axis=0)}

    def inverse(self, rng):
        W = self.params["W"]
        return Dense(self.out_shape, None, self.backend, rng, dtype=W.dtype,
                     out_shape=self.in_shape)
