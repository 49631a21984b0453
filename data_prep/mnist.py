"""MNIST from the four official gzip'ed IDX files (md5-checked against the official values)."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from lcengine.data.errors import DataError

from .checksums import verify_official
from .plan import Plan, Split, limit_per_class

FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
CLASS_NAMES = [str(d) for d in range(10)]


def read_idx(path: Path, magic: int) -> np.ndarray:
    """An IDX file's array: (n, 28, 28) uint8 images or (n,) uint8 labels."""
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: not a readable gzip file, truncated or damaged ({err})") from None
    ndim = 3 if magic == IMAGES_MAGIC else 1
    header = 4 * (1 + ndim)
    if len(data) < header or int.from_bytes(data[:4], "big") != magic:
        raise DataError(f"{path}: not an IDX file with magic {magic}")
    dims = [int.from_bytes(data[4 * (i + 1):4 * (i + 2)], "big") for i in range(ndim)]
    if len(data) != header + int(np.prod(dims)):
        raise DataError(f"{path}: {len(data) - header} data bytes, its header says {dims} "
                        f"= {int(np.prod(dims))} (truncated?)")
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def mnist_plan(source: Path, *, verify: bool, limit: int | None = None,
               head: dict | None = None) -> Plan:
    """`head`: {"train": n, "test": m} keeps the first n, m images (the embedded subset)."""
    checksums, splits = {}, []
    for name, (images_file, labels_file) in FILES.items():
        paths = [source / images_file, source / labels_file]
        for path in paths:
            if not path.is_file():
                raise DataError(f"{path}: missing; --source must hold the four official MNIST "
                                "*-ubyte.gz files (or use --download)")
            checksums[path.name] = verify_official(path, verify)
        images = read_idx(paths[0], IMAGES_MAGIC)
        labels = read_idx(paths[1], LABELS_MAGIC).astype(np.int64)
        if len(images) != len(labels):
            raise DataError(f"{paths[1]}: {len(labels)} labels for {len(images)} images")
        if head is not None:
            images, labels = images[:head[name]], labels[:head[name]]
        keep = limit_per_class(labels, limit)
        images, labels = images[keep][:, None], labels[keep]
        splits.append(Split(name, range(len(labels)), labels, images.__getitem__))
    options = {"limit_per_class": limit, "head": head}
    return Plan("mnist", CLASS_NAMES, (1, 28, 28), "raw", checksums, splits, options)
