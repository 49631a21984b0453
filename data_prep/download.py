"""Fetch the official files for users who are online: resumable, checksummed, atomic.

A download goes to `<name>.part`; a rerun asks the server for the rest (HTTP Range) and, where it
sends the whole file instead (or for file:// URLs), skips the bytes it already has. The finished
file is md5-checked, then renamed to its final name.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from lcengine.data.errors import DataError

from .checksums import OFFICIAL_MD5, md5_file

MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "http://yann.lecun.com/exdb/mnist/")
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
BLOCK = 1 << 20


def fetch(url: str, dest: Path, md5: str | None) -> Path:
    """Download `url` to `dest` (resuming a `.part` left by an earlier try); check `md5`."""
    if dest.is_file() and (md5 is None or md5_file(dest) == md5):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response, open(part, "ab") as out:
            if have and getattr(response, "status", None) != 206:
                _skip(response, have)
            total = response.headers.get("Content-Length")
            with tqdm(total=have + int(total) if total else None, initial=have, unit="B",
                      unit_scale=True, desc=dest.name, disable=None, leave=False) as bar:
                for block in iter(lambda: response.read(BLOCK), b""):
                    out.write(block)
                    bar.update(len(block))
            out.flush()
            os.fsync(out.fileno())
    except (urllib.error.URLError, OSError) as err:
        raise DataError(f"{url}: download failed ({err}); rerun to resume, or fetch it by hand "
                        "and pass --source") from None
    got = md5_file(part)
    if md5 is not None and got != md5:
        part.unlink()
        raise DataError(f"{url}: downloaded file has md5 {got}, expected {md5}; deleted it, "
                        "rerun to fetch it again")
    os.replace(part, dest)
    return dest


def _skip(response, count: int) -> None:
    """Read and drop the first `count` bytes (the server sent the whole file)."""
    while count:
        block = response.read(min(BLOCK, count))
        if not block:
            raise OSError("the file is shorter than the part already downloaded")
        count -= len(block)


def fetch_mnist(base_urls, into: Path) -> Path:
    """The four MNIST files from the first of `base_urls` that answers."""
    names = [n for n in OFFICIAL_MD5 if "ubyte" in n]
    for base in base_urls:
        try:
            for name in names:
                fetch(base.rstrip("/") + "/" + name, into / name, OFFICIAL_MD5[name])
            return into
        except DataError as err:
            last = err
    raise last


def fetch_cifar(url: str, into: Path) -> Path:
    name = url.rstrip("/").rsplit("/", 1)[-1]
    return fetch(url, into / name, OFFICIAL_MD5.get(name))

