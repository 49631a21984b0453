"""The shard format, written by `data_prep` and read by `lcengine.data.shards`.

A prepared directory holds, per split, HDF5 files `{split}-{index:05d}.h5` of bounded size, and one
`manifest.json` written last: a directory without it is not a complete shard set. Every shard has

    images   uint8 (n, C, H, W)                  storage "raw"
             or vlen uint8 (n,), one JPEG each   storage "jpeg"
    labels   int64 (n,)

and the attributes in `SHARD_ATTRS`. A shard is written to `<name>.tmp`, fsynced and renamed, so a
file with the final name is always whole; a write that fails (a full disk) removes its `.tmp` and
raises a one-line `StorageError`. Any error h5py raises while reading a shard (a damaged header:
"incorrect metadata checksum", KeyError, RuntimeError, OSError) becomes a DataError naming it.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from ..storage import StorageError, explain
from .errors import DataError

FORMAT_VERSION = 1
MAGIC = "lcengine-shard"
MANIFEST = "manifest.json"
STORAGES = ("raw", "jpeg")
SHARD_ATTRS = ("magic", "format_version", "dataset", "split", "index", "count", "image_shape",
               "dtype", "storage", "class_names", "source_checksums", "prep_config",
               "source_start", "source_stop", "skipped")


def shard_name(split: str, index: int) -> str:
    return f"{split}-{index:05d}.h5"


def fsync_replace(tmp: Path, final: Path) -> None:
    """Make `tmp` durable, then give it its final name in one step."""
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, final)
    dir_fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


#: what to do when a prep cannot write
PREP_WRITE_HINT = "make room (or choose another --out), then rerun: finished shards are kept"


@contextmanager
def writing(path: Path):
    """Write `path` through its `.tmp` sibling; on an OS error remove that, say it in one line."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        fsync_replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise StorageError(explain(path, err, PREP_WRITE_HINT)) from None


@contextmanager
def reading(path: Path):
    """h5py's errors while reading shard `path` as one DataError naming it."""
    try:
        yield
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path}: shard file is missing (rerun lcengine prep)") from None
    except (OSError, RuntimeError, KeyError, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"{path}: not a readable HDF5 shard, truncated or damaged ({reason}); "
                        "prepare the data again") from None


def write_json_atomic(path: Path, obj) -> None:
    with writing(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")


def write_shard(path: Path, attrs: dict, images, labels: np.ndarray, compress: bool) -> None:
    """Write one shard atomically. `images`: uint8 (n,C,H,W) for raw, a list of bytes for jpeg."""
    with writing(path) as tmp:
        _write_h5(tmp, attrs, images, labels, compress)


def _write_h5(tmp: Path, attrs: dict, images, labels: np.ndarray, compress: bool) -> None:
    with h5py.File(tmp, "w", track_order=True) as f:
        if attrs["storage"] == "raw":
            gzip = compress and len(images) > 0
            f.create_dataset("images", data=images, track_times=False,
                             chunks=(min(len(images), 1024),) + images.shape[1:] if gzip else None,
                             compression="gzip" if gzip else None,
                             compression_opts=9 if gzip else None)
        else:
            ds = f.create_dataset("images", (len(images),), dtype=h5py.vlen_dtype(np.uint8),
                                  track_times=False)
            for i, blob in enumerate(images):
                ds[i] = np.frombuffer(blob, np.uint8)
        f.create_dataset("labels", data=np.asarray(labels, np.int64), track_times=False)
        for key in SHARD_ATTRS:
            value = attrs[key]
            f.attrs[key] = json.dumps(value) if isinstance(value, (dict, list, tuple)) else value


def read_shard_attrs(path: Path) -> dict:
    """The attributes of a shard, checked for magic and version; DataError names what is wrong."""
    with reading(path), h5py.File(path, "r") as f:
        raw = dict(f.attrs)
        shapes = {k: f[k].shape for k in ("images", "labels") if k in f}
    if raw.get("magic") != MAGIC:
        raise DataError(f"{path}: not an lcengine shard (no '{MAGIC}' magic attribute)")
    version = int(raw.get("format_version", -1))
    if version != FORMAT_VERSION:
        raise DataError(f"{path}: shard format version {version}, this lcengine reads version "
                        f"{FORMAT_VERSION}; prepare the data again with this version")
    missing = [k for k in SHARD_ATTRS if k not in raw]
    if missing:
        raise DataError(f"{path}: shard lacks attributes {', '.join(missing)}")
    attrs = {}
    for key in SHARD_ATTRS:
        value = raw[key]
        with reading(path):
            if isinstance(value, bytes):
                value = value.decode()
            if key in ("image_shape", "class_names", "source_checksums", "prep_config",
                       "skipped"):
                value = json.loads(value)
            elif isinstance(value, np.integer):
                value = int(value)
        attrs[key] = value
    count, shape = attrs["count"], tuple(attrs["image_shape"])
    expected_images = (count,) + shape if attrs["storage"] == "raw" else (count,)
    if shapes.get("images") != expected_images or shapes.get("labels") != (count,):
        raise DataError(f"{path}: shard holds images {shapes.get('images')} and labels "
                        f"{shapes.get('labels')}, its header says {count} images of {shape}")
    return attrs
