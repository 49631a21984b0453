"""Layers: affine maps with forward, feedback (backward_input), weight-gradient and inverse passes."""

from .activations import activation
from .base import Layer
from .dense import Dense

__all__ = ["Layer", "Dense", "activation"]
