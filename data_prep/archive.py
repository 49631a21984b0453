"""Read a tree of files from a directory or a tar archive (any compression) into memory."""

from __future__ import annotations

import tarfile
import zlib
from pathlib import Path

from lcengine.data.errors import DataError


def read_tree(source: Path, wanted) -> tuple[dict[str, bytes], set[str]]:
    """({relative path: bytes} of files for which `wanted(path)` holds, {directory paths})."""
    files, dirs = {}, set()
    if source.is_dir():
        for path in sorted(source.rglob("*")):
            rel = path.relative_to(source).as_posix()
            if path.is_dir():
                dirs.add(rel)
            elif wanted(rel):
                files[rel] = path.read_bytes()
        return files, dirs
    if not source.is_file():
        raise DataError(f"{source}: no such file or directory")
    try:
        with tarfile.open(source, "r:*") as tar:
            for member in tar:
                if member.isdir():
                    dirs.add(member.name.rstrip("/"))
                elif member.isfile() and wanted(member.name):
                    files[member.name] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise DataError(f"{source}: not a readable tar archive, truncated or damaged "
                        f"({type(err).__name__}: {err})") from None
    return files, dirs
