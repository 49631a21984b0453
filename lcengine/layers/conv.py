"""2-D convolution (weight-shared; the paper's "BP ConvNet" baseline) and its transposed inverse.

Letters and padding as in `locally_connected`; K (O, C, kh, kw) is the same at every location:

    Conv2D:           a[o, p, q] = Σ_{c,i,j} K[o, c, i, j] · x_pad[c, p·sh + i, q·sw + j] + b[o]
    TransposedConv2D: a[c, h, w] = Σ_{p,q,o,i,j : p·sh + i = h + top, q·sw + j = w + left}
                                   V[o, c, i, j] · y[o, p, q]  +  c[c]

Biases are per channel, as the weights are shared. The transposed conv is the weight-shared twin
of `TransposedLC`: its own learned V in K's layout. All arithmetic goes through
`backend.ops.conv_*`.
"""

from __future__ import annotations

from .windowed import WindowGeometry, WindowedLayer


def _per_channel(bias):
    return bias[:, None, None]                          # (channels, 1, 1): broadcast over space


class Conv2D(WindowedLayer):
    """a = K ⋆ x + b, with Glorot-uniform K (fan_in = C·kh·kw, fan_out = O·kh·kw) and b = 0 (O,)."""

    def __init__(self, in_shape, out_channels, kernel_size, stride, padding="same", *,
                 backend, rng, dtype="float32"):
        self.geometry = WindowGeometry.of(in_shape, out_channels, kernel_size, stride, padding)
        self.in_shape, self.out_shape = self.geometry.in_shape, self.geometry.out_shape
        self.backend = backend
        O, C, (kh, kw) = self.out_shape[0], self.in_shape[0], self.geometry.kernel
        limit = self.glorot_limit()
        self.params = {"W": rng.uniform((O, C, kh, kw), -limit, limit, dtype=dtype),
                       "b": backend.xp.zeros(O, dtype=dtype)}

    @property
    def W(self):
        return self.params["W"]

    def forward(self, x):
        g = self.geometry
        a = self.backend.ops.conv_forward(x, self.params["W"], g.stride, g.pads)  # (N, O, P, Q)
        return a + _per_channel(self.params["b"]), x

    def backward_input(self, da, cache, weights=None):
        g = self.geometry
        K = self.params["W"] if weights is None else weights
        return self.backend.ops.conv_backward_input(da, K, g.in_hw, g.stride, g.pads)

    def backward_weight(self, da, cache):
        g = self.geometry
        dK = self.backend.ops.conv_backward_weight(cache, da, g.kernel, g.stride, g.pads)
        return {"W": dK, "b": da.sum(axis=(0, 2, 3))}

    def inverse(self, rng):
        return TransposedConv2D(self.geometry, backend=self.backend, rng=rng,
                                dtype=self.params["W"].dtype)


class TransposedConv2D(WindowedLayer):
    """The inverse's affine part, (O, P, Q) -> (C, H, W): a = `conv_backward_input(y, V)` + c.

    `params["W"]` holds V (O, C, kh, kw), Glorot-uniform with fan_in = O·kh·kw and
    fan_out = C·kh·kw; `params["b"]` holds c (C,), zero at start. Feedback:
    da ↦ `conv_forward(da, V)`; weight gradient: dV = `conv_backward_weight(x=da, dy=y)`.
    """

    def __init__(self, geometry: WindowGeometry, *, backend, rng, dtype="float32"):
        self.geometry = geometry                        # the forward twin's geometry
        self.in_shape, self.out_shape = geometry.out_shape, geometry.in_shape
        self.backend = backend
        O, C, (kh, kw) = self.in_shape[0], self.out_shape[0], geometry.kernel
        limit = self.glorot_limit()
        self.params = {"W": rng.uniform((O, C, kh, kw), -limit, limit, dtype=dtype),
                       "b": backend.xp.zeros(C, dtype=dtype)}

    @property
    def V(self):
        return self.params["W"]

    def forward(self, y):
        g = self.geometry
        a = self.backend.ops.conv_backward_input(y, self.params["W"], g.in_hw, g.stride, g.pads)
        return a + _per_channel(self.params["b"]), y                            # (N, C, H, W)

    def backward_input(self, da, cache, weights=None):
        g = self.geometry
        V = self.params["W"] if weights is None else weights
        return self.backend.ops.conv_forward(da, V, g.stride, g.pads)          # (N, O, P, Q)

    def backward_weight(self, da, cache):
        g = self.geometry
        dV = self.backend.ops.conv_backward_weight(da, cache, g.kernel, g.stride, g.pads)
        return {"W": dV, "b": da.sum(axis=(0, 2, 3))}

    def inverse(self, rng):
        raise NotImplementedError("TransposedConv2D is already an inverse; the TP family never "
                                  "inverts an inverse")
