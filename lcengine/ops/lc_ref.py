"""Locally-connected 2-D layer (unshared-weight convolution): the NumPy reference.

This is the readable definition every fast face is checked against. Letters:
  N batch, C input channels, H×W input size, O output channels, P×Q output size,
  kh×kw kernel, (sh, sw) stride, pads = (top, bottom, left, right).
Layouts: x (N, C, H, W); W (P, Q, O, C, kh, kw) — one filter bank per output location;
y (N, O, P, Q).

    y[n, o, p, q] = Σ_{c, i, j} W[p, q, o, c, i, j] · x_pad[n, c, p·sh + i, q·sw + j]

`lc_backward_input` is the transpose of that map (scatter-add of per-location patches); it is
also the forward pass of the *transposed LC* inverse layer of the TP family (paper §1.8), with the
inverse's own weights in place of W.
`lc_backward_weight_adam` is Adam's update of W from that weight gradient (`adam_ref`), one op
so that a fast face need not write the gradient out to memory and read it back.
Works on NumPy or CuPy arrays (array module taken from the inputs).
"""

from __future__ import annotations

from .adam_ref import adam_update
from .xp import array_module


def _pad(x, pads):
    top, bottom, left, right = pads
    return array_module(x).pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))


def lc_forward(x, W, stride, pads):
    xp = array_module(x)
    P, Q, O, C, kh, kw = W.shape
    sh, sw = stride
    x_pad = _pad(x, pads)                                              # (N, C, H+t+b, W+l+r)
    y = xp.empty((x.shape[0], O, P, Q), dtype=x.dtype)                 # (N, O, P, Q)
    for p in range(P):
        for q in range(Q):
            patch = x_pad[:, :, p * sh:p * sh + kh, q * sw:q * sw + kw]  # (N, C, kh, kw)
            y[:, :, p, q] = xp.einsum("ncij,ocij->no", patch, W[p, q])
    return y


def lc_backward_input(dy, W, in_hw, stride, pads):
    xp = array_module(dy)
    P, Q, O, C, kh, kw = W.shape
    sh, sw = stride
    top, bottom, left, right = pads
    H, Wd = in_hw
    dx_pad = xp.zeros((dy.shape[0], C, H + top + bottom, Wd + left + right), dtype=dy.dtype)
    for p in range(P):
        for q in range(Q):
            dx_pad[:, :, p * sh:p * sh + kh, q * sw:q * sw + kw] += xp.einsum(
                "no,ocij->ncij", dy[:, :, p, q], W[p, q])              # (N, C, kh, kw)
    return dx_pad[:, :, top:top + H, left:left + Wd]                  # (N, C, H, W)


def lc_backward_weight(x, dy, kernel, stride, pads):
    xp = array_module(x)
    N, O, P, Q = dy.shape
    C = x.shape[1]
    kh, kw = kernel
    sh, sw = stride
    x_pad = _pad(x, pads)
    dW = xp.empty((P, Q, O, C, kh, kw), dtype=x.dtype)                 # (P, Q, O, C, kh, kw)
    for p in range(P):
        for q in range(Q):
            patch = x_pad[:, :, p * sh:p * sh + kh, q * sw:q * sw + kw]  # (N, C, kh, kw)
            dW[p, q] = xp.einsum("no,ncij->ocij", dy[:, :, p, q], patch)
    return dW


def lc_backward_weight_adam(x, dy, kernel, stride, pads, W, m, v, step, beta1, beta2, eps_hat):
    """W, m, v updated in place by `adam_update` with g = lc_backward_weight(x, dy, ...)."""
    adam_update(W, lc_backward_weight(x, dy, kernel, stride, pads), m, v, step, beta1, beta2,
                eps_hat)
