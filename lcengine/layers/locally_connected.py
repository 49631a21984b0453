"""Locally-connected 2-D layer (a convolution without weight sharing) and its transposed inverse.

Letters: C, H×W input channels and size; O, P×Q output channels and size; kh×kw kernel; (sh, sw)
stride; pads (top, bottom, left, right) from the TensorFlow "same"/"valid" rule.

    LocallyConnected2D:  a[o, p, q] = Σ_{c,i,j} W[p, q, o, c, i, j] · x_pad[c, p·sh+i, q·sw+j]
                                       + b[o, p, q]
    TransposedLC:        a[c, h, w] = Σ_{p,q,o,i,j : p·sh + i = h + top, q·sw + j = w + left}
                                       V[p, q, o, c, i, j] · y[o, p, q]  +  c[c, h, w]

Every output unit owns its filter *and* its bias (untied, paper §1.1): W (P, Q, O, C, kh, kw),
b (O, P, Q). The transposed LC is the TP family's inverse g (paper §1.8): its own learned V in
W's layout, so V has the sparsity pattern of Wᵀ, and its own untied bias c (C, H, W).
All arithmetic goes through `backend.ops.lc_*`, so the backend's face (ref, cpu, cuda) is used.
"""

from __future__ import annotations

from .base import DeferredGradient
from .windowed import WindowGeometry, WindowedLayer


class _LCWeightGradient(WindowedLayer):
    """Both LC layers' weight gradient: dW = `lc_backward_weight(x, dy)` of the layer's own
    (x, dy) (`_operands`), deferred to Adam's update where asked (`ops.lc_backward_weight_adam`)."""

    def _operands(self, da, cache):
        raise NotImplementedError

    def deferred_backward_weight(self, da, cache):
        g, ops = self.geometry, self.backend.ops
        args = (*self._operands(da, cache), g.kernel, g.stride, g.pads)
        dW = DeferredGradient(lambda: ops.lc_backward_weight(*args),
                              lambda *adam: ops.lc_backward_weight_adam(*args, *adam))
        return {"W": dW, "b": da.sum(axis=0)}

    def backward_weight(self, da, cache):
        grads = self.deferred_backward_weight(da, cache)
        grads["W"] = grads["W"].value()
        return grads


class LocallyConnected2D(_LCWeightGradient):
    """a = W ⊛_untied x + b, with Glorot-uniform W: fan_in = C·kh·kw, fan_out = O·kh·kw
    (the Keras convention for windowed layers), and b = 0 of shape (O, P, Q)."""

    def __init__(self, in_shape, out_channels, kernel_size, stride, padding="same", *,
                 backend, rng, dtype="float32"):
        self.geometry = WindowGeometry.of(in_shape, out_channels, kernel_size, stride, padding)
        self.in_shape, self.out_shape = self.geometry.in_shape, self.geometry.out_shape
        self.backend = backend
        O, P, Q = self.out_shape
        C, kh, kw = self.in_shape[0], *self.geometry.kernel
        limit = self.glorot_limit()
        self.params = {"W": rng.uniform((P, Q, O, C, kh, kw), -limit, limit, dtype=dtype),
                       "b": backend.xp.zeros((O, P, Q), dtype=dtype)}

    @property
    def W(self):
        return self.params["W"]

    def forward(self, x):
        g = self.geometry
        a = self.backend.ops.lc_forward(x, self.params["W"], g.stride, g.pads)   # (N, O, P, Q)
        return a + self.params["b"], x

    def backward_input(self, da, cache, weights=None):
        g = self.geometry
        W = self.params["W"] if weights is None else weights
        return self.backend.ops.lc_backward_input(da, W, g.in_hw, g.stride, g.pads)  # (N, C, H, W)

    def _operands(self, da, cache):
        return cache, da                                        # x, dy

    def inverse(self, rng):
        return TransposedLC(self.geometry, backend=self.backend, rng=rng,
                            dtype=self.params["W"].dtype)


class TransposedLC(_LCWeightGradient):
    """The inverse's affine part, (O, P, Q) -> (C, H, W):  a = V y + c  where V y is
    `lc_backward_input(y, V)` (the map whose matrix is the transpose of an LC map with weights V).

    `params["W"]` holds the paper's V (layout (P, Q, O, C, kh, kw), Glorot-uniform with
    fan_in = O·kh·kw, fan_out = C·kh·kw); `params["b"]` the paper's c (C, H, W), zero at start.
    With M_V the matrix of the LC map with weights V, this layer is y ↦ M_Vᵀ y + c; so its
    feedback is da ↦ M_V da = `lc_forward(da, V)` and its weight gradient is
    dV = `lc_backward_weight(x=da, dy=y)`.
    """

    def __init__(self, geometry: WindowGeometry, *, backend, rng, dtype="float32"):
        self.geometry = geometry                        # the forward twin's geometry
        self.in_shape, self.out_shape = geometry.out_shape, geometry.in_shape
        self.backend = backend
        O, P, Q = self.in_shape
        C, kh, kw = self.out_shape[0], *geometry.kernel
        limit = self.glorot_limit()
        self.params = {"W": rng.uniform((P, Q, O, C, kh, kw), -limit, limit, dtype=dtype),
                       "b": backend.xp.zeros(self.out_shape, dtype=dtype)}

    @property
    def V(self):
        return self.params["W"]

    def forward(self, y):
        g = self.geometry
        a = self.backend.ops.lc_backward_input(y, self.params["W"], g.in_hw, g.stride, g.pads)
        return a + self.params["b"], y                                          # (N, C, H, W)

    def backward_input(self, da, cache, weights=None):
        g = self.geometry
        V = self.params["W"] if weights is None else weights
        return self.backend.ops.lc_forward(da, V, g.stride, g.pads)            # (N, O, P, Q)

    def _operands(self, da, cache):
        return da, cache                                        # dV = lc_backward_weight(da, y)

    def inverse(self, rng):
        raise NotImplementedError("TransposedLC is already an inverse; the TP family never "
                                  "inverts an inverse")
