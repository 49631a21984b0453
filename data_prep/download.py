"""Fetch the official files for users who are online: from mirrors in order, resumable,
checksummed, atomic.

A download goes to `<name>.part`; a rerun asks the server for the rest (HTTP Range) and, where it
sends the whole file instead (or for file:// URLs), skips the bytes it already has. The finished
file is md5-checked, then renamed to its final name. Each file is tried on each mirror in turn
until one serves it with the right md5, as torchvision does: a mirror that is down, lacks the
file or serves a damaged copy costs one attempt, and a `.part` left by one mirror is finished
from the next (the md5 is the same everywhere).
"""

from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from lcengine.data.errors import DataError

from .checksums import OFFICIAL_MD5, md5_file

#: the AWS copy torchvision reads first, the Google Cloud copy TensorFlow's tutorials read, and
#: the original host last: it has refused or throttled downloads for years
MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://storage.googleapis.com/cvdf-datasets/mnist/",
                 "http://yann.lecun.com/exdb/mnist/")
MNIST_FILES = tuple(name for name in OFFICIAL_MD5 if "ubyte" in name)
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
BLOCK = 1 << 20
RANGE_NOT_SATISFIABLE = 416
PARTIAL_CONTENT = 206


class AttemptFailed(Exception):
    """One URL did not give the file; the message says why, in a few words."""


def fetch(urls, dest: Path, md5: str | None) -> Path:
    """`dest`, downloaded from the first of `urls` that serves it with the right `md5`."""
    if dest.is_file() and (md5 is None or md5_file(dest) == md5):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        try:
            _attempt(url, dest, md5)
            return dest
        except AttemptFailed as err:
            failures.append(f"{url} ({err})")
    where = "every mirror failed: " if len(failures) > 1 else "download failed: "
    raise DataError(f"{dest}: {where}{'; '.join(failures)}; rerun to resume, or fetch it "
                    "by hand and pass --source")


def _attempt(url: str, dest: Path, md5: str | None) -> None:
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            resumed = getattr(response, "status", None) == PARTIAL_CONTENT
            if have and not resumed and not _skipped(response, have):
                part.unlink()
                raise AttemptFailed("the file is shorter than the part already downloaded; "
                                    "deleted the part")
            length = response.headers.get("Content-Length")
            total = int(length) + (have if resumed else 0) if length else None
            with open(part, "ab") as out, tqdm(total=total, initial=have, unit="B",
                                               unit_scale=True, desc=dest.name, disable=None,
                                               leave=False) as bar:
                for block in iter(lambda: response.read(BLOCK), b""):
                    out.write(block)
                    bar.update(len(block))
                out.flush()
                os.fsync(out.fileno())
    except urllib.error.HTTPError as err:
        err.close()
        if not (have and err.code == RANGE_NOT_SATISFIABLE):   # 416: the part is the whole file
            raise AttemptFailed(f"HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
        raise AttemptFailed(str(getattr(err, "reason", err))) from None
    got = md5_file(part)
    if md5 is not None and got != md5:
        part.unlink()
        raise AttemptFailed(f"md5 {got}, expected {md5}; the damaged copy was deleted")
    os.replace(part, dest)


def _skipped(response, count: int) -> bool:
    """Read and drop the first `count` bytes (the server sent the whole file); False if the file
    is shorter than that."""
    while count:
        block = response.read(min(BLOCK, count))
        if not block:
            return False
        count -= len(block)
    return True


def fetch_mnist(base_urls, into: Path) -> Path:
    """The four MNIST files, each from the first of `base_urls` (folders) that serves it."""
    for name in MNIST_FILES:
        fetch([base.rstrip("/") + "/" + name for base in base_urls], into / name,
              OFFICIAL_MD5[name])
    return into


def fetch_cifar(url: str, into: Path) -> Path:
    name = url.rstrip("/").rsplit("/", 1)[-1]
    return fetch([url], into / name, OFFICIAL_MD5.get(name))
