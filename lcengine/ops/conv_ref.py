"""2-D convolution (shared weights, cross-correlation as in every DL framework): NumPy reference.

Letters as in `lc_ref`; the kernel K has layout (O, C, kh, kw) and is the same at every output
location, so each function is the LC one with W[p, q] = K (and dK summed over locations):

    y[n, o, p, q] = Σ_{c, i, j} K[o, c, i, j] · x_pad[n, c, p·sh + i, q·sw + j]
"""

from __future__ import annotations

from .xp import array_module


def _pad(x, pads):
    top, bottom, left, right = pads
    return array_module(x).pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))


def _windows(x_pad, kernel, stride):
    """View of all patches: (N, C, P, Q, kh, kw), no copy."""
    xp = array_module(x_pad)
    sh, sw = stride
    win = xp.lib.stride_tricks.sliding_window_view(x_pad, tuple(kernel), axis=(2, 3))
    return win[:, :, ::sh, ::sw]


def conv_forward(x, K, stride, pads):
    patches = _windows(_pad(x, pads), K.shape[2:], stride)             # (N, C, P, Q, kh, kw)
    return array_module(x).einsum("ncpqij,ocij->nopq", patches, K)     # (N, O, P, Q)


def conv_backward_input(dy, K, in_hw, stride, pads):
    xp = array_module(dy)
    O, C, kh, kw = K.shape
    sh, sw = stride
    top, bottom, left, right = pads
    H, Wd = in_hw
    dx_pad = xp.zeros((dy.shape[0], C, H + top + bottom, Wd + left + right), dtype=dy.dtype)
    for i in range(kh):
        for j in range(kw):
            # every output location (p, q) sends K[:, :, i, j]ᵀ dy to input (p·sh + i, q·sw + j)
            dx_pad[:, :, i:i + sh * dy.shape[2]:sh, j:j + sw * dy.shape[3]:sw] += xp.einsum(
                "nopq,oc->ncpq", dy, K[:, :, i, j])
    return dx_pad[:, :, top:top + H, left:left + Wd]


def conv_backward_weight(x, dy, kernel, stride, pads):
    P, Q = dy.shape[2:]
    patches = _windows(_pad(x, pads), kernel, stride)[:, :, :P, :Q]    # (N, C, P, Q, kh, kw)
    return array_module(x).einsum("nopq,ncpqij->ocij", dy, patches)    # (O, C, kh, kw)
