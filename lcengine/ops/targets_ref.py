"""Target-propagation elementwise math: the NumPy reference.

Every TP-family layer (and every learned inverse, whose output nonlinearity is tanh) regresses a
tanh output h = tanh(a) onto a target t with the loss  L = (1/N) Σ_n Σ_units (h − t)²  (summed over
units, averaged over the batch, as in the original DTP code). Both the forward loss
`||h_l − ĥ_l||²` and the inverse loss `||h_{l−1} − g(f(h̃_{l−1}))||²` are of that form.

    difference_target(h, a_rec, a_hat_rec)
        ĥ_l = h_l − g_{l+1}(h_{l+1}) + g_{l+1}(ĥ_{l+1})     (paper eq. 2), g(·) = tanh(V · + c)
        given by its pre-activations a_rec = V h_{l+1} + c and a_hat_rec = V ĥ_{l+1} + c
    tanh_regression(h, t)             (L, dL/da) with dL/da = 2 (h − t)(1 − h²) / N
"""

from __future__ import annotations

from .xp import array_module


def difference_target(h, a_rec, a_hat_rec):
    """ĥ = h − tanh(a_rec) + tanh(a_hat_rec): a_rec = V h_{l+1} + c, a_hat_rec = V ĥ_{l+1} + c."""
    xp = array_module(h)
    return h - xp.tanh(a_rec) + xp.tanh(a_hat_rec)


def tanh_regression(h, t):
    """Loss (a float) and its gradient with respect to the pre-activation of h = tanh(a)."""
    n = h.shape[0]
    diff = h - t
    return float((diff * diff).sum()) / n, (2.0 / n) * diff * (1.0 - h * h)
