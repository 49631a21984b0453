"""Where the CUDA C sources live: `lcengine/kernels/`, inside the package.

    KERNEL_DIR          Path(lcengine.__file__).parent / "kernels"
    kernel_path(name)   KERNEL_DIR / name, or a one-line FileNotFoundError naming the path
    kernel_source(name) its text
    KERNELS             file name -> the `extern "C"` kernels the launchers look up in it
    NVRTC_OPTIONS       what they are compiled with

In a checkout `lcengine/kernels` is a link to the repository's top-level `kernels/` folder; a
wheel carries the files themselves (package data), so a checkout, an editable install and
`pip install .` all find the same sources. Launchers (`*_cuda.py`), tests and benchmarks all read
the files through this module, so the engine and the benchmarks run the same kernels.
"""

from __future__ import annotations

from pathlib import Path

import lcengine

KERNEL_DIR = Path(lcengine.__file__).resolve().parent / "kernels"
#: NVRTC options for every kernel file (lambdas inside device functions need C++14 or later);
#: cuda_common compiles with them, and so does the NVRTC compile test
NVRTC_OPTIONS = ("-std=c++17",)
_PRECISIONS = ("f32", "f64")
#: what lc_cuda, adam_cuda, conv_cuda and feedback_cuda ask each file for (checked by the compile
#: test and by bin/gpu-check, which compiles them through the launchers' own path)
KERNELS = {
    "lc.cu": [f"lc_{d}_{s}" for d in ("forward", "backward_input", "backward_weight")
              for s in _PRECISIONS],
    "adam.cu": [f"adam_update_{s}" for s in _PRECISIONS],
    "conv.cu": [f"conv_{k}_{s}" for k in ("im2col", "col2im") for s in _PRECISIONS],
    "random_feedback.cu": [f"random_feedback_{s}" for s in _PRECISIONS],
}


def kernel_path(name: str) -> Path:
    path = KERNEL_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"CUDA kernel source {path} not found: the installed lcengine "
                                "lacks its kernels (reinstall it, or run from a checkout)")
    return path


def kernel_source(name: str) -> str:
    return kernel_path(name).read_text(encoding="utf-8")
