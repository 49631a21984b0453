"""Geometry shared by the windowed layers (locally-connected, convolution and their transposes).

A windowed layer maps (C, H, W) to (O, P, Q) by sliding a kh×kw window with stride (sh, sw) over
the zero-padded input; `padding` follows TensorFlow ("same": P = ceil(H / sh); "valid": no
padding), see `ops/geometry.window_geometry`. The transposed layer of the TP family's inverse
(paper §1.8) keeps its forward twin's geometry and swaps in and out.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ops.geometry import window_geometry
from .base import Layer


def pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


@dataclass(frozen=True)
class WindowGeometry:
    in_shape: tuple     # (C, H, W) per example
    out_shape: tuple    # (O, P, Q) per example
    kernel: tuple       # (kh, kw)
    stride: tuple       # (sh, sw)
    padding: str        # "same" | "valid"
    pads: tuple         # (top, bottom, left, right)

    @classmethod
    def of(cls, in_shape, out_channels, kernel_size, stride, padding) -> "WindowGeometry":
        C, H, W = (int(d) for d in in_shape)
        kernel, stride = pair(kernel_size), pair(stride)
        (P, Q), pads = window_geometry((H, W), kernel, stride, padding)
        return cls((C, H, W), (int(out_channels), P, Q), kernel, stride, padding, pads)

    @property
    def in_hw(self) -> tuple:
        return self.in_shape[1:]

    @property
    def window_size(self) -> int:
        return self.kernel[0] * self.kernel[1]

    def label(self) -> str:
        """The paper's (kernel, out channels, stride) notation, e.g. "3x3, 32, 2"."""
        (kh, kw), (sh, sw) = self.kernel, self.stride
        stride = str(sh) if sh == sw else f"{sh}x{sw}"
        return f"{kh}x{kw}, {self.out_shape[0]}, {stride}"


class WindowedLayer(Layer):
    """A layer with a `geometry`: its fans count the window (the Keras convention), so a forward
    layer has fan_in = C·kh·kw and fan_out = O·kh·kw, and a transposed one the same swapped."""

    geometry: WindowGeometry

    @property
    def fan_in(self):
        return self.in_shape[0] * self.geometry.window_size

    @property
    def fan_out(self):
        return self.out_shape[0] * self.geometry.window_size
