"""The array module (NumPy or CuPy) of an array, without importing CuPy."""

import sys

import numpy


def array_module(a):
    cupy = sys.modules.get("cupy")
    if cupy is not None and isinstance(a, cupy.ndarray):
        return cupy
    return numpy
