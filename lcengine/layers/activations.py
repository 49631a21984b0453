"""Elementwise nonlinearities h = f(a); f' is written from (a, h) so that tanh reuses h."""

from __future__ import annotations

from ..ops.xp import array_module


class Tanh:
    name = "tanh"

    def __call__(self, a):
        return array_module(a).tanh(a)

    @staticmethod
    def derivative(a, h):
        return 1.0 - h * h


class Relu:
    name = "relu"

    def __call__(self, a):
        return a * (a > 0)

    @staticmethod
    def derivative(a, h):
        return (a > 0).astype(a.dtype)


class Identity:
    name = "identity"

    def __call__(self, a):
        return a

    @staticmethod
    def derivative(a, h):
        return array_module(a).ones_like(a)


ACTIVATIONS = {cls.name: cls for cls in (Tanh, Relu, Identity)}


def activation(name: str):
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}") from None
