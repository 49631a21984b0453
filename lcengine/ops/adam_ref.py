"""Adam's in-place update of one parameter tensor: the NumPy reference.

    m ← β1 m + (1 − β1) g;   v ← β2 v + (1 − β2) g²;   p ← p − step · m / (√v + ε̂)

with the bias corrections folded into the scalars by the caller (Kingma & Ba, §2 end):
step = lr · √(1 − β2ᵗ) / (1 − β1ᵗ) and ε̂ = ε · √(1 − β2ᵗ).
"""

from __future__ import annotations

from .xp import array_module


def adam_update(p, g, m, v, step, beta1, beta2, eps_hat):
    xp = array_module(p)
    m *= beta1
    m += (1.0 - beta1) * g
    v *= beta2
    v += (1.0 - beta2) * (g * g)
    p -= (step * m / (xp.sqrt(v) + eps_hat)).astype(p.dtype, copy=False)
