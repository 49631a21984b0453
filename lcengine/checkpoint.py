"""Checkpoints that survive a kill at any instant, and the atomic file writes they are made of.

A checkpoint is a directory RUN_DIR/checkpoints/<tag>/ holding
    arrays.npz      every array of the run's state (parameters, optimiser moments, rule state)
    state.json      everything else (config, position, RNG state, metrics history), with each
                    array replaced by {"__array__": key} pointing into arrays.npz
    MANIFEST.json   written last: each file's byte count and SHA-256.
Every file is written to a temporary name, fsynced and renamed over (os.replace), and the
directory is fsynced, so a checkpoint whose manifest matches its files is complete; anything else
does not count. Tags sort in the order they were written. `save` keeps the newest `KEEP`
complete checkpoints; a save that fails (a full disk) removes what it began and raises a
one-line `StorageError`. `load_latest` takes the newest complete checkpoint whose content also
loads and passes the caller's check (a manifest can be consistent with files that are not: a
`state.json` of `{}`), and says which newer ones it skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np

from .storage import StorageError, explain, file_digest

MANIFEST = "MANIFEST.json"
FILES = ("arrays.npz", "state.json")
KEEP = 2


class CheckpointError(RuntimeError):
    """No usable checkpoint; the message names the directory and what is wrong."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that `path` holds either its old content or all of `data`."""
    _atomic_write(Path(path), lambda f: f.write(data))


def _atomic_write(path: Path, write) -> None:
    """`write(file)` into a temporary sibling, fsync, rename over `path`, fsync the directory."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def checkpoints_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def split_arrays(tree, to_numpy):
    """(JSON-able tree, {key: ndarray}): arrays (NumPy or CuPy) moved out to keys a0, a1, …"""
    arrays = {}

    def walk(node):
        if isinstance(node, dict):
            if not all(isinstance(k, str) for k in node):
                raise TypeError(f"checkpoint state keys must be strings: {list(node)[:5]}")
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, (list, tuple)):
            return [walk(v) for v in node]
        if isinstance(node, np.generic):
            return node.item()
        if hasattr(node, "shape") and hasattr(node, "dtype"):
            key = f"a{len(arrays)}"
            arrays[key] = to_numpy(node)
            return {"__array__": key}
        return node

    return walk(tree), arrays


def join_arrays(tree, arrays):
    """The inverse of `split_arrays`, with NumPy arrays."""
    if isinstance(tree, dict):
        if set(tree) == {"__array__"}:
            return arrays[tree["__array__"]]
        return {k: join_arrays(v, arrays) for k, v in tree.items()}
    if isinstance(tree, list):
        return [join_arrays(v, arrays) for v in tree]
    return tree


def save(run_dir: Path, tag: str, state: dict, to_numpy) -> Path:
    """Commit `state` (nested dicts/lists of scalars and arrays) as checkpoint `tag`."""
    root = checkpoints_dir(run_dir)
    path = root / tag
    try:
        root.mkdir(parents=True, exist_ok=True)
        path.mkdir(exist_ok=True)
        (path / MANIFEST).unlink(missing_ok=True)  # rewriting a tag: it is incomplete until done
        fsync_dir(path)
        tree, arrays = split_arrays(state, to_numpy)
        _atomic_write(path / FILES[0], lambda f: np.savez(f, **arrays))
        atomic_write_text(path / FILES[1], json.dumps(tree))
        manifest = {"files": {name: _describe(path / name) for name in FILES}}
        atomic_write_text(path / MANIFEST, json.dumps(manifest, indent=1))
    except OSError as err:
        shutil.rmtree(path, ignore_errors=True)
        raise StorageError(explain(path, err, f"the previous checkpoint is kept; make room, then "
                                              f"continue with: lcengine train --resume {run_dir}"))
    _prune(root, keep=path.name)
    return path


def _describe(path: Path) -> dict:
    return {"bytes": path.stat().st_size, "sha256": file_digest(path)}


def problem(path: Path) -> str | None:
    """Why checkpoint `path` is not complete, or None if its manifest matches its files."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except FileNotFoundError:
        return "no manifest (the save was interrupted)"
    except (OSError, ValueError) as err:
        return f"unreadable manifest ({err})"
    for name in FILES:
        listed = manifest.get("files", {}).get(name)
        if listed is None:
            return f"manifest does not list {name}"
        if not (path / name).is_file():
            return f"{name} is missing"
        if _describe(path / name) != listed:
            return f"{name} does not match the manifest (damaged)"
    return None


def _prune(root: Path, keep: str) -> None:
    """Remove all but the newest KEEP complete checkpoints, and any incomplete one."""
    tags = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    complete = [t for t in tags if t == keep or (root / t / MANIFEST).is_file()]
    for tag in tags:
        if tag not in complete[-KEEP:]:
            shutil.rmtree(root / tag)


def latest(run_dir: Path) -> tuple[Path, list[str]]:
    """The newest complete checkpoint of a run, and a line for each newer one that was skipped."""
    path, _, skipped = _newest(run_dir, read=False)
    return path, skipped


def load_latest(run_dir: Path, check=None) -> tuple[Path, dict, list[str]]:
    """The newest complete checkpoint whose content loads and passes `check(state)` (which
    raises CheckpointError to refuse it): its path, its state, a line for each newer one
    skipped."""
    return _newest(run_dir, read=True, check=check)


def _newest(run_dir: Path, read: bool, check=None):
    root = checkpoints_dir(run_dir)
    if not Path(run_dir).is_dir():
        raise CheckpointError(f"{run_dir}: no such run directory")
    tags = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  reverse=True) if root.is_dir() else []
    skipped = []
    for path in tags:
        why = problem(path)
        if why is None and not read:
            return path, None, skipped
        if why is None:
            try:
                state = _read(path)
                if check is not None:
                    check(state)
                return path, state, skipped
            except CheckpointError as err:
                why = str(err)
        skipped.append(f"{path}: skipped, {why}")
    raise CheckpointError(f"{root}: no complete checkpoint" + (f" ({'; '.join(skipped)})"
                                                               if skipped else ""))


def load(path: Path) -> dict:
    """The state saved in checkpoint `path`, arrays as NumPy."""
    why = problem(path)
    if why is not None:
        raise CheckpointError(f"{path}: {why}")
    try:
        return _read(path)
    except CheckpointError as err:
        raise CheckpointError(f"{path}: {err}") from None


def _read(path: Path) -> dict:
    try:
        tree = json.loads((path / FILES[1]).read_text())
        with np.load(path / FILES[0], allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        state = join_arrays(tree, arrays)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as err:
        raise CheckpointError(f"unreadable content ({type(err).__name__}: {err})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{FILES[1]} holds no state")
    return state
