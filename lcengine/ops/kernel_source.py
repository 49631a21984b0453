"""Where the CUDA C sources live: the repository's `kernels/` folder, next to the package.

    KERNEL_DIR          Path(lcengine.__file__).parents[1] / "kernels"
    kernel_path(name)   KERNEL_DIR / name, or a one-line FileNotFoundError naming the path
    kernel_source(name) its text

The sources are found through the package's location, so this works from a checkout and from an
editable install (`pip install -e .`); a non-editable wheel does not ship `kernels/` (they are not
package data), and the error then says so. Launchers (`*_cuda.py`), tests and benchmarks all read
the files through this module, so the engine and the benchmarks run the same kernels.
"""

from __future__ import annotations

from pathlib import Path

import lcengine

KERNEL_DIR = Path(lcengine.__file__).resolve().parents[1] / "kernels"


def kernel_path(name: str) -> Path:
    path = KERNEL_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"CUDA kernel source {path} not found: run from a checkout of "
                                "lcengine or install it editable (pip install -e .)")
    return path


def kernel_source(name: str) -> str:
    return kernel_path(name).read_text(encoding="utf-8")
