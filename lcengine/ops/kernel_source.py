"""Where the CUDA C sources live: `lcengine/kernels/`, inside the package.

    KERNEL_DIR          Path(lcengine.__file__).parent / "kernels"
    kernel_path(name)   KERNEL_DIR / name, or a one-line FileNotFoundError naming the path
    kernel_source(name) its text

In a checkout `lcengine/kernels` is a link to the repository's top-level `kernels/` folder; a
wheel carries the files themselves (package data), so a checkout, an editable install and
`pip install .` all find the same sources. Launchers (`*_cuda.py`), tests and benchmarks all read
the files through this module, so the engine and the benchmarks run the same kernels.
"""

from __future__ import annotations

from pathlib import Path

import lcengine

KERNEL_DIR = Path(lcengine.__file__).resolve().parent / "kernels"


def kernel_path(name: str) -> Path:
    path = KERNEL_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"CUDA kernel source {path} not found: the installed lcengine "
                                "lacks its kernels (reinstall it, or run from a checkout)")
    return path


def kernel_source(name: str) -> str:
    return kernel_path(name).read_text(encoding="utf-8")
