"""The file system, said plainly: one writer per directory, and every OS error as one line.

`hold(directory, command)` takes an exclusive advisory lock (flock) on DIRECTORY/.lock and keeps
it while the block runs; the file holds the holder's PID and command. The kernel drops a flock
when its process dies, however it dies, so a killed run never leaves a stale lock. A second
writer gets `Busy`, naming the holder's PID. The holder removes the file on the way out while
still holding the lock; a taker checks that the file it locked is still the one at the path, so
no two processes ever believe they hold it.

`reporting(path, hint)` turns an OSError (ENOSPC, EROFS, EACCES, ENOTDIR; h5py's long
"file write failed ... errno = 28" messages too) into `StorageError`: the path, the cause, what
to do. `file_digest` hashes a file: checkpoints, downloads and shards are checked with it.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import time
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = ".lock"


class StorageError(RuntimeError):
    """A file could not be written or read; the message names the path, the cause and the fix."""


class Busy(StorageError):
    """Another live process writes the directory; the message names its PID."""


def cause(err: OSError) -> str:
    """The OS's words for `err`, also when h5py buries the errno inside its own message."""
    code = err.errno
    if code is None:
        found = re.search(r"errno = (\d+)", str(err))
        code = int(found.group(1)) if found else None
    if code:
        return os.strerror(code)
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def explain(path, err: OSError, hint: str = "") -> str:
    """'PATH: cannot write (CAUSE); HINT', the hint for a full disk unless the caller has one."""
    if not hint and cause(err) == os.strerror(errno.ENOSPC):
        hint = "free some space, then rerun: what was finished is kept"
    return f"{path}: cannot write ({cause(err)})" + (f"; {hint}" if hint else "")


@contextmanager
def reporting(path, hint: str = ""):
    """Any OSError in the block becomes a one-line StorageError about `path`."""
    try:
        yield
    except OSError as err:
        raise StorageError(explain(path, err, hint)) from None


def make_directory(path: Path, hint: str) -> None:
    """`path` and its parents, made if missing (an existing one unwritable shows at `hold`)."""
    with reporting(path, hint):
        Path(path).mkdir(parents=True, exist_ok=True)


@contextmanager
def hold(directory: Path, command: str):
    """Be the only writer of `directory` while the block runs (Busy if another process is)."""
    path = Path(directory) / LOCK_FILE
    with reporting(path, "choose another directory (--out)"):
        fd = _acquire(path, command)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def _acquire(path: Path, command: str) -> int:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = _holder(path)
            raise Busy(f"{path.parent}: in use by another lcengine process ({holder}); "
                       f"wait for it to end, or stop it, then rerun") from None
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {command}\n".encode())
            return fd
        os.close(fd)        # the holder removed the file as we opened it: take the new one


def _holder(path: Path) -> str:
    """'PID 1234, lcengine train' from the lock file (the holder writes it just after locking)."""
    for _ in range(50):
        try:
            text = path.read_text().strip()
        except FileNotFoundError:
            text = ""
        if text:
            pid, _, command = text.partition(" ")
            return f"PID {pid}, {command}" if command else f"PID {pid}"
        time.sleep(0.01)
    return "PID unknown"


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """The hex digest of a file's bytes, read in 4 MiB blocks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()
