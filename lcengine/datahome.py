"""The data home: where `lcengine prep DATASET` writes its shards when no --out is given
(`<home>/DATASET`), and where `lcengine train --dataset DATASET` reads them when no --data is.

The home is `$LCENGINE_DATA` when set, else the per-user data directory of the platform
(platformdirs: `$XDG_DATA_HOME/lcengine`, i.e. `~/.local/share/lcengine`, on Linux;
`~/Library/Application Support/lcengine` on macOS; `%LOCALAPPDATA%\\lcengine` on Windows).
A data directory rather than a cache directory: prepared ImageNet takes hours to rebuild, and
cache directories are the ones that cleaners and `rm -rf ~/.cache` empty.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import platformdirs

from .data.errors import DataError
from .data.shard_format import MANIFEST

ENV = "LCENGINE_DATA"
#: the command that prepares each dataset into the home (ImageNet needs the user's own copy)
PREP_COMMANDS = {"mnist": "lcengine prep mnist --download",
                 "cifar10": "lcengine prep cifar10 --download",
                 "imagenet": "lcengine prep imagenet --source ILSVRC2012_DIR"}


def data_home() -> Path:
    """`$LCENGINE_DATA` (made absolute), else the per-user data directory."""
    given = os.environ.get(ENV)
    if given:
        return Path(given).expanduser().resolve()
    return Path(platformdirs.user_data_dir("lcengine", appauthor=False))


def home_origin() -> str:
    return f"${ENV}" if os.environ.get(ENV) else f"the per-user default; set ${ENV} to move it"


def dataset_dir(dataset: str) -> Path:
    return data_home() / dataset


def prepared_dir(dataset: str) -> Path:
    """`<home>/DATASET` if a prep finished there; else a one-line error with the command to run."""
    directory = dataset_dir(dataset)
    if (directory / MANIFEST).is_file():
        return directory
    state = "holds an unfinished prep" if directory.is_dir() else "is not prepared"
    raise DataError(f"{directory}: {dataset} {state} in the data home ({home_origin()}); run: "
                    f"{PREP_COMMANDS[dataset]}  (or give --data DIR)")


def describe_prepared() -> list[str]:
    """One line per dataset directory in the home: its splits and their image counts."""
    home = data_home()
    if not home.is_dir():
        return []
    lines = []
    for directory in sorted(p for p in home.iterdir() if p.is_dir()):
        manifest_path = directory / MANIFEST
        if not manifest_path.is_file():
            hint = PREP_COMMANDS.get(directory.name, "lcengine prep with --out " + str(directory))
            lines.append(f"{directory.name}: unfinished prep (no {MANIFEST}); rerun: {hint}")
            continue
        try:
            manifest = json.loads(manifest_path.read_text())
            splits = ", ".join(f"{name} {manifest['splits'][name]['count']:,}"
                               for name in sorted(manifest["splits"], key=lambda n: n != "train"))
            lines.append(f"{directory.name}: {manifest['dataset']} ({manifest['storage']}), "
                         f"{splits}")
        except (OSError, ValueError, KeyError, TypeError) as err:
            lines.append(f"{directory.name}: unreadable {MANIFEST} ({type(err).__name__}: {err})")
    return lines
