"""Layers: affine maps with forward, feedback (backward_input), weight-gradient and inverse
passes."""

from .activations import activation
from .base import Layer
from .conv import Conv2D, TransposedConv2D
from .dense import Dense
from .locally_connected import LocallyConnected2D, TransposedLC

__all__ = ["Layer", "Dense", "LocallyConnected2D", "TransposedLC", "Conv2D", "TransposedConv2D",
           "activation"]
