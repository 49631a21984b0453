"""Activation ops: the NumPy reference (the definition; CuPy arrays work too).

    tanh(a)              h = tanh(a)
    tanh_backward(dh, h) dL/da = dL/dh ⊙ (1 − h²),  h = tanh(a): the derivative from h, so the
                         backward pass needs no a
"""

from __future__ import annotations

from .xp import array_module


def tanh(a):
    return array_module(a).tanh(a)


def tanh_backward(dh, h):
    return dh * (1 - h * h)
