"""CIFAR-10 from the official python or binary archives (or a directory of their batch files),
or from an image-folder tree `{train,test}/<class>/*.{png,jpg}` (a directory or a tar archive)."""

from __future__ import annotations

import io
import pickle
import posixpath
import re
from functools import partial
from pathlib import Path

import numpy as np

from lcengine.data.errors import DataError

from .archive import read_tree
from .checksums import tree_digest, verify_official
from .images import Geometry, decode_image, is_image_name
from .plan import Plan, Split, limit_per_class

CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck"]
SHAPE = (3, 32, 32)
RECORD = 1 + 3 * 32 * 32
PICKLE_BATCH = re.compile(r"(data_batch_\d+|test_batch)")
BINARY_BATCH = re.compile(r"(data_batch_\d+|test_batch).*\.bin")
FOLDER_IMAGE = re.compile(r"(?:.*/)?(train|test)/([^/]+)/[^/]+")
SAFE_GLOBALS = {("numpy.core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}


class BatchUnpickler(pickle.Unpickler):
    """Loads the CIFAR batch dicts and numpy arrays, nothing else (no code from the file runs)."""

    def find_class(self, module, name):
        if (module, name) in SAFE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def wanted(name: str) -> bool:
    base = posixpath.basename(name)
    return bool(PICKLE_BATCH.fullmatch(base) or BINARY_BATCH.fullmatch(base)
                or base in ("batches.meta", "batches.meta.txt")
                or (is_image_name(base) and FOLDER_IMAGE.fullmatch(name)))


def split_of(name: str) -> str:
    return "test" if posixpath.basename(name).startswith("test_batch") else "train"


def read_pickle_batch(where: str, blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = BatchUnpickler(io.BytesIO(blob), encoding="bytes").load()
        batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
        data = np.asarray(batch["data"], np.uint8).reshape(-1, *SHAPE)
        labels = np.asarray(batch["labels"], np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, AttributeError,
            TypeError) as err:
        raise DataError(f"{where}: not a CIFAR-10 python batch ({type(err).__name__}: {err})") \
            from None
    if len(data) != len(labels):
        raise DataError(f"{where}: {len(labels)} labels for {len(data)} images")
    return data, labels


def read_binary_batch(where: str, blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    if len(blob) % RECORD:
        raise DataError(f"{where}: {len(blob)} bytes is not a whole number of {RECORD}-byte "
                        "CIFAR-10 records (truncated?)")
    records = np.frombuffer(blob, np.uint8).reshape(-1, RECORD)
    return records[:, 1:].reshape(-1, *SHAPE), records[:, 0].astype(np.int64)


def class_names_from(files: dict, source: Path) -> list:
    for name, blob in files.items():
        base = posixpath.basename(name)
        if base == "batches.meta":
            try:
                meta = BatchUnpickler(io.BytesIO(blob), encoding="bytes").load()
                names = [n.decode() if isinstance(n, bytes) else n
                         for n in meta.get(b"label_names", meta.get("label_names", []))]
            except (pickle.UnpicklingError, EOFError, AttributeError, TypeError) as err:
                raise DataError(f"{source}/{name}: unreadable CIFAR-10 metadata ({err})") from None
        elif base == "batches.meta.txt":
            names = blob.decode().split()
        else:
            continue
        if names != CLASS_NAMES:
            raise DataError(f"{source}/{name}: class names {names} are not CIFAR-10's")
    return CLASS_NAMES


def cifar_plan(source: Path, *, verify: bool, limit: int | None = None, storage: str = "raw",
               quality: int = 90) -> Plan:
    files, dirs = read_tree(source, wanted)
    checksums = ({source.name: verify_official(source, verify)} if source.is_file()
                 else {"tree-sha256": tree_digest(files)})
    pickles = sorted(n for n in files if PICKLE_BATCH.fullmatch(posixpath.basename(n)))
    binaries = sorted(n for n in files if BINARY_BATCH.fullmatch(posixpath.basename(n)))
    folder = sorted(n for n in files if is_image_name(n) and FOLDER_IMAGE.fullmatch(n))
    if pickles or binaries:
        reader = read_pickle_batch if pickles else read_binary_batch
        parts = {"train": [], "test": []}
        for name in pickles or binaries:
            parts[split_of(name)].append(reader(f"{source}/{name}", files[name]))
        splits = [_array_split(split, batches, limit) for split, batches in parts.items()
                  if batches]
        kind = "python" if pickles else "binary"
    elif folder:
        splits = _folder_splits(source, files, dirs, folder, limit, storage, quality)
        kind = "image-folder"
    else:
        raise DataError(f"{source}: no CIFAR-10 batches (data_batch_N, test_batch, *.bin) or "
                        "{train,test}/<class>/ images found")
    names = class_names_from(files, source)
    options = {"limit_per_class": limit, "cifar_source": kind,
               "jpeg_quality": quality if storage == "jpeg" else None}
    return Plan("cifar10", names, SHAPE, storage, checksums, splits, options)


def _array_split(name: str, batches, limit) -> Split:
    images = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"CIFAR-10 {name} batches hold labels outside 0..9")
    keep = limit_per_class(labels, limit)
    return Split(name, range(len(keep)), labels[keep], images[keep].__getitem__)


def _folder_splits(source, files, dirs, folder, limit, storage, quality) -> list:
    by_split: dict[str, list] = {"train": [], "test": []}
    for name in folder:
        split, cls = FOLDER_IMAGE.fullmatch(name).groups()
        if cls not in CLASS_NAMES:
            raise DataError(f"{source}/{posixpath.dirname(name)}: class folder {cls!r} is not a "
                            f"CIFAR-10 class ({', '.join(CLASS_NAMES)})")
        by_split[split].append((CLASS_NAMES.index(cls), name))
    filled = {posixpath.dirname(n) for n in folder}
    for d in sorted(dirs - filled):
        if re.fullmatch(r"(?:.*/)?(train|test)/([^/]+)", d):
            raise DataError(f"{source}/{d}: class folder holds no images (incomplete copy?)")
    geometry = Geometry(resize=32, crop=32, storage=storage, quality=quality)
    splits = []
    for split, items in by_split.items():
        if not items:
            continue
        items.sort()
        labels = np.asarray([label for label, _ in items], np.int64)
        keep = limit_per_class(labels, limit)
        tasks = [(f"{source}/{items[i][1]}", files[items[i][1]]) for i in keep]
        splits.append(Split(split, tasks, labels[keep], partial(decode_image, geometry),
                            parallel=True))
    return splits
