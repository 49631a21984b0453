"""The backend: chosen once (CLI `--device`), then passed down as a frozen object.

It holds the array module (NumPy or CuPy), the face of every op family (`ref`, `cpu`, `cuda`), and
the random-number source. Nothing below this module asks which device it runs on, and nothing
else imports CuPy.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType, SimpleNamespace

import numpy as np

from .ops import FAMILIES

DEVICES = ("cpu", "gpu")
FACES = ("ref", "cpu", "cuda")


class BackendError(RuntimeError):
    """The requested backend cannot run on this machine."""


@dataclass(frozen=True)
class Backend:
    name: str                  # "cpu", "cpu-ref", "gpu"
    xp: ModuleType             # numpy or cupy
    ops: SimpleNamespace       # lc_forward, conv_forward, ... of the chosen faces
    faces: dict                # family -> face actually used

    def asarray(self, a, dtype=None):
        return self.xp.asarray(a, dtype=dtype)

    def to_numpy(self, a) -> np.ndarray:
        return a.get() if hasattr(a, "get") else np.asarray(a)

    def rng(self, seed) -> "Rng":
        return Rng(self.xp, seed)


class Rng:
    """Seeded random source on the backend's device; its state is checkpointable."""

    def __init__(self, xp, seed):
        self.xp = xp
        self.generator = xp.random.Generator(xp.random.PCG64(seed)) if xp is np \
            else xp.random.default_rng(seed)

    def normal(self, shape, scale=1.0, dtype=np.float32):
        return (self.generator.standard_normal(shape, dtype=np.float64) * scale).astype(dtype)

    def uniform(self, shape, low, high, dtype=np.float32):
        return self.generator.uniform(low, high, size=shape).astype(dtype)

    @property
    def state(self):
        return self.generator.bit_generator.state

    @state.setter
    def state(self, value):
        self.generator.bit_generator.state = value


def _load_ops(face: str) -> tuple[SimpleNamespace, dict]:
    """Functions of `face` for every family that has it; the reference for the others."""
    functions, used = {}, {}
    for family, names in FAMILIES.items():
        try:
            module = importlib.import_module(f"lcengine.ops.{family}_{face}")
        except ModuleNotFoundError as err:
            if err.name != f"lcengine.ops.{family}_{face}":
                raise
            module, face_used = importlib.import_module(f"lcengine.ops.{family}_ref"), "ref"
        else:
            face_used = face
        used[family] = face_used
        functions.update({name: getattr(module, name) for name in names})
    return SimpleNamespace(**functions), used


def get_backend(device: str = "cpu", kernels: str = "fast") -> Backend:
    """`device`: "cpu" or "gpu"; `kernels`: "fast" (the device's fast faces) or "ref"."""
    if device not in DEVICES:
        raise BackendError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if kernels not in ("fast", "ref"):
        raise BackendError(f"unknown kernels {kernels!r}; choose 'fast' or 'ref'")
    if device == "gpu":
        xp = _import_cupy()
        face = "cuda" if kernels == "fast" else "ref"
    else:
        xp, face = np, ("cpu" if kernels == "fast" else "ref")
    ops, used = _load_ops(face)
    name = device if kernels == "fast" else f"{device}-ref"
    return Backend(name=name, xp=xp, ops=ops, faces=used)


def _import_cupy():
    try:
        import cupy
    except ImportError as err:
        raise BackendError("--device gpu needs CuPy: pip install 'lcengine[gpu]' "
                           f"(import failed: {err})") from None
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise BackendError("--device gpu: CuPy found no CUDA device on this machine")
    except cupy.cuda.runtime.CUDARuntimeError as err:
        raise BackendError(f"--device gpu: no usable CUDA device ({err})") from None
    return cupy
