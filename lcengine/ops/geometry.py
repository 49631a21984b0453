"""Output sizes and paddings of windowed ops (LC, conv), TensorFlow semantics.

`"same"`:  H_out = ceil(H / stride); the total padding max((H_out - 1)·stride + k - H, 0) is split
           with the smaller half on top/left (TensorFlow puts the odd pixel at the bottom/right).
`"valid"`: H_out = floor((H - k) / stride) + 1; no padding.
Paddings travel as a 4-tuple `pads = (top, bottom, left, right)` of ints.
"""

from __future__ import annotations

import math


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def output_size(in_size: int, kernel: int, stride: int, padding: str) -> int:
    if padding == "same":
        return math.ceil(in_size / stride)
    if padding == "valid":
        if in_size < kernel:
            raise ValueError(f"kernel {kernel} is larger than the input ({in_size}) "
                             "with padding='valid'")
        return (in_size - kernel) // stride + 1
    raise ValueError(f"padding must be 'same' or 'valid', not {padding!r}")


def padded_output_size(in_size: int, kernel: int, stride: int, before: int, after: int) -> int:
    """Windows of `kernel` with `stride` that fit an input padded by explicit amounts."""
    return (in_size + before + after - kernel) // stride + 1


def _split(in_size: int, kernel: int, stride: int, padding: str) -> tuple[int, int]:
    if padding == "valid":
        return 0, 0
    total = max((output_size(in_size, kernel, stride, padding) - 1) * stride + kernel - in_size, 0)
    return total // 2, total - total // 2


def window_geometry(in_hw, kernel, stride, padding: str):
    """Returns (out_hw, pads) for an input of spatial size in_hw."""
    (H, W), (kh, kw), (sh, sw) = _pair(in_hw), _pair(kernel), _pair(stride)
    out_hw = (output_size(H, kh, sh, padding), output_size(W, kw, sw, padding))
    pads = _split(H, kh, sh, padding) + _split(W, kw, sw, padding)
    return out_hw, pads
