"""What a converter hands the writer: per split, one task per source image and how to decode it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np


@dataclass(frozen=True)
class Skipped:
    """A source image that could not be used, and why; listed in the manifest."""
    name: str
    reason: str


@dataclass
class Split:
    name: str                  # "train", "test", "val"
    tasks: Sequence            # one per source image, in stored order
    labels: np.ndarray         # int64, one per task (known before decoding)
    decode: Callable           # task -> uint8 (C,H,W) array, JPEG bytes, or Skipped
    parallel: bool = False     # decode in worker processes (image files) or here (arrays)


@dataclass
class Plan:
    dataset: str
    class_names: list
    image_shape: tuple
    storage: str
    source_checksums: dict
    splits: list
    options: dict = field(default_factory=dict)   # every prep option that changes the shards


def limit_per_class(labels: np.ndarray, limit: int | None) -> np.ndarray:
    """Positions of the first `limit` items of each class, in source order (all if None)."""
    if limit is None:
        return np.arange(len(labels))
    keep, seen = [], {}
    for i, label in enumerate(labels.tolist()):
        if seen.get(label, 0) < limit:
            seen[label] = seen.get(label, 0) + 1
            keep.append(i)
    return np.asarray(keep, np.int64)
