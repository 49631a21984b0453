"""Checksums of source files, and the official values they are checked against."""

from __future__ import annotations

import hashlib
from pathlib import Path

from lcengine.data.errors import DataError
from lcengine.storage import file_digest

OFFICIAL_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    "cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a",
    "cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530",
}


def md5_file(path: Path) -> str:
    return file_digest(path, "md5")


def verify_official(path: Path, verify: bool) -> str:
    """md5 of `path`; when its name is an official file's, it must match unless `verify` is off."""
    md5 = md5_file(path)
    expected = OFFICIAL_MD5.get(path.name)
    if verify and expected and md5 != expected:
        raise DataError(f"{path}: md5 {md5} differs from the official {expected} (damaged or "
                        "altered copy; fetch it again, or pass --no-verify to use it anyway)")
    return md5


def listing_digest(paths: list[Path], root: Path) -> str:
    """sha256 over the relative names and sizes of many files (cheap stand-in for hashing them)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(f"{path.relative_to(root)}\t{path.stat().st_size}\n".encode())
    return digest.hexdigest()


def tree_digest(files: dict[str, bytes]) -> str:
    """sha256 over the names and contents of files read into memory, in sorted name order."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}\t{len(files[name])}\n".encode())
        digest.update(files[name])
    return digest.hexdigest()
