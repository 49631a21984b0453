"""Open a prepared shard set: check every file against the manifest, then read images by index.

The manifest lists each shard's SHA-256. Reading a split into memory reads every byte anyway, so
it checks them there (about 1 GB/s); sets read per batch are checked by `verify_shard_set`
(`lcengine prep --verify DIR`)."""

from __future__ import annotations

import io
import json
from importlib.resources import files
from pathlib import Path

import h5py
import numpy as np
from PIL import Image

from .errors import DataError
from ..storage import file_digest
from .shard_format import FORMAT_VERSION, MANIFEST, read_shard_attrs, reading

EMBEDDED = {"mnist-mini": "embedded"}


def resolve_source(source) -> Path:
    """A prepared directory, or the name of an embedded set ("mnist-mini")."""
    if str(source) in EMBEDDED:
        return Path(str(files("lcengine.data") / EMBEDDED[str(source)]))
    return Path(source)


def read_manifest(directory: Path) -> dict:
    path = directory / MANIFEST
    if not directory.is_dir():
        raise DataError(f"{directory}: no such directory of prepared shards "
                        f"(run: lcengine prep DATASET --source ... --out {directory})")
    if not path.is_file():
        raise DataError(f"{path}: missing, so the shard set is incomplete (prep was interrupted "
                        "or never run); rerun lcengine prep with the same --out to finish it")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: unreadable manifest ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("magic") != "lcengine-shards":
        raise DataError(f"{path}: not an lcengine shard manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise DataError(f"{path}: format version {manifest.get('format_version')}, this lcengine "
                        f"reads version {FORMAT_VERSION}; prepare the data again")
    return manifest


def decode_jpeg(blob) -> np.ndarray:
    """JPEG bytes -> uint8 (3, H, W)."""
    with Image.open(io.BytesIO(bytes(blob))) as img:
        return np.asarray(img.convert("RGB")).transpose(2, 0, 1)


class ShardSet:
    """One split of a prepared dataset. Labels are read at open; images on demand or all at once."""

    def __init__(self, directory: Path, split: str, manifest: dict, source):
        entry = manifest["splits"][split]
        self.source = source
        self.directory = directory
        self.split = split
        self.dataset = manifest["dataset"]
        self.storage = manifest["storage"]
        self.image_shape = tuple(manifest["image_shape"])
        self.class_names = list(manifest["class_names"])
        self.n_classes = len(self.class_names)
        self.count = int(entry["count"])
        self.skipped = entry["skipped"]
        self.listed = entry["shards"]
        self.paths = [directory / s["file"] for s in entry["shards"]]
        self.nbytes = sum(int(s["bytes"]) for s in entry["shards"])
        counts = [self._check_shard(path, s) for path, s in zip(self.paths, entry["shards"])]
        if sum(counts) != self.count:
            raise DataError(f"{directory / MANIFEST}: split {split} lists {self.count} images, "
                            f"its shards hold {sum(counts)}")
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.labels = np.concatenate([self._read(p, "labels") for p in self.paths]
                                     or [np.zeros(0, np.int64)]).astype(np.int64)
        bad = (self.labels < 0) | (self.labels >= self.n_classes)
        if bad.any():
            raise DataError(f"{directory}: split {split} has label {self.labels[bad][0]} outside "
                            f"0..{self.n_classes - 1}")
        self._handles: dict[int, h5py.File] = {}
        self._ram = None

    def _check_shard(self, path: Path, listed: dict) -> int:
        if not path.is_file():
            raise DataError(f"{path}: shard listed in the manifest is missing")
        size = path.stat().st_size
        if size != int(listed["bytes"]):
            raise DataError(f"{path}: {size} bytes, the manifest says {listed['bytes']} "
                            "(truncated or replaced); prepare the data again")
        attrs = read_shard_attrs(path)
        expected = {"dataset": self.dataset, "split": self.split, "storage": self.storage,
                    "count": int(listed["count"]), "image_shape": list(self.image_shape)}
        for key, value in expected.items():
            if attrs[key] != value:
                raise DataError(f"{path}: shard says {key}={attrs[key]!r}, the manifest "
                                f"{value!r}; the file belongs to another shard set")
        return attrs["count"]

    @staticmethod
    def _read(path: Path, name: str):
        with reading(path), h5py.File(path, "r") as f:
            return f[name][()]

    def verify(self) -> None:
        """Every shard's bytes against the manifest's SHA-256 (DataError names a damaged one)."""
        for path, listed in zip(self.paths, self.listed):
            check_digest(path, listed)

    def load_into_memory(self) -> None:
        """Read every image once (raw: one uint8 array; jpeg: the encoded bytes)."""
        if self._ram is None:
            self.verify()
            parts = [self._read(p, "images") for p in self.paths]
            if self.storage == "raw":
                self._ram = np.concatenate(parts) if parts else np.zeros((0,) + self.image_shape,
                                                                         np.uint8)
            else:
                self._ram = [blob for part in parts for blob in part]

    def read(self, indices) -> np.ndarray:
        """uint8 (n, C, H, W) images at global `indices`, in that order."""
        indices = np.asarray(indices, np.int64)
        if self._ram is not None:
            if self.storage == "raw":
                return self._ram[indices]
            return self._decode([self._ram[i] for i in indices])
        out = [None] * len(indices)
        shard_of = np.searchsorted(self.offsets, indices, side="right") - 1
        for s in np.unique(shard_of):
            where = np.nonzero(shard_of == s)[0]
            local = indices[where] - self.offsets[s]
            order = np.argsort(local)
            with reading(self.paths[s]):
                chunk = self._handle(int(s))["images"][local[order]]
            for k, w in enumerate(where[order]):
                out[w] = chunk[k]
        if self.storage == "raw":
            return np.stack(out) if out else np.zeros((0,) + self.image_shape, np.uint8)
        return self._decode(out)

    def _decode(self, blobs) -> np.ndarray:
        out = np.empty((len(blobs),) + self.image_shape, np.uint8)
        for i, blob in enumerate(blobs):
            out[i] = decode_jpeg(blob)
        return out

    def _handle(self, s: int) -> h5py.File:
        if s not in self._handles:
            self._handles[s] = h5py.File(self.paths[s], "r")
        return self._handles[s]

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()


def check_digest(path: Path, listed: dict) -> None:
    """DataError unless the file's SHA-256 is the one the manifest lists (if it lists one)."""
    if "sha256" in listed and file_digest(path) != listed["sha256"]:
        raise DataError(f"{path}: content differs from the checksum in the manifest (damaged); "
                        "prepare the data again")


def verify_shard_set(directory: Path) -> tuple[int, list[str]]:
    """Check every shard of a prepared directory against its manifest: size, header, SHA-256.
    Returns how many shards it lists and a line for each damaged one."""
    manifest = read_manifest(directory)
    entries = [s for split in manifest["splits"].values() for s in split["shards"]]
    if entries and not all("sha256" in s for s in entries):
        raise DataError(f"{directory / MANIFEST}: lists no shard checksums (made by an older "
                        "lcengine prep); prepare the data again to add them")
    problems = []
    for split in manifest["splits"]:
        try:
            shards = ShardSet(directory, split, manifest, directory)
        except DataError as err:
            problems.append(str(err))
            continue
        for path, listed in zip(shards.paths, shards.listed):
            try:
                check_digest(path, listed)
            except DataError as err:
                problems.append(str(err))
    return len(entries), problems


def open_shards(source, split: str) -> ShardSet:
    """`source`: a directory made by `lcengine prep`, or "mnist-mini"; `split`: "train", "test"…"""
    directory = resolve_source(source)
    manifest = read_manifest(directory)
    if split not in manifest["splits"]:
        raise DataError(f"{directory / MANIFEST}: no split {split!r}; it has "
                        f"{', '.join(sorted(manifest['splits']))}")
    return ShardSet(directory, split, manifest, source)
