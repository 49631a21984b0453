"""Elementwise nonlinearities h = f(a), and their backward pass dL/da = dL/dh ⊙ f'(a), written
from (a, h) so that tanh's reuses h. tanh runs as a backend op (`ops.tanh`, `ops.tanh_backward`:
one fused pass each on the CPU)."""

from __future__ import annotations


class Activation:
    name: str

    def __init__(self, ops):
        self.ops = ops


class Tanh(Activation):
    name = "tanh"

    def __call__(self, a):
        return self.ops.tanh(a)

    def backward(self, dh, a, h):
        return self.ops.tanh_backward(dh, h)                            # dh ⊙ (1 − h²)


class Relu(Activation):
    name = "relu"

    def __call__(self, a):
        return a * (a > 0)

    def backward(self, dh, a, h):
        return dh * (a > 0)


class Identity(Activation):
    name = "identity"

    def __call__(self, a):
        return a

    def backward(self, dh, a, h):
        return dh


ACTIVATIONS = {cls.name: cls for cls in (Tanh, Relu, Identity)}


def activation(name: str, ops):
    """The activation `name`, computing with the backend's `ops`."""
    try:
        return ACTIVATIONS[name](ops)
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; "
                         f"choose one of {', '.join(ACTIVATIONS)}") from None
