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
from .ops.cpu.host_memory import keep_freed_memory
from .ops.cpu.host_threads import sleep_when_idle
from .ops.cpu.probes import fast_cpu_enabled

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

    def to_floats(self, values) -> list[float]:
        """Python floats of scalars (floats, or 0-d arrays of `xp`), with at most one
        device→host copy: reading a GPU scalar waits for the GPU, so many are read at once."""
        values = list(values)
        on_device = [i for i, v in enumerate(values) if isinstance(v, self.xp.ndarray)]
        if self.xp is not np and on_device:
            read = self.xp.stack([values[i].astype(np.float64) for i in on_device]).get()
            for i, v in zip(on_device, read):
                values[i] = v
        return [float(v) for v in values]

    def synchronize(self) -> None:
        """Wait until the device has finished all work queued so far (for timing)."""
        if self.xp is not np:
            self.xp.cuda.get_current_stream().synchronize()

    def device_batches(self, batches):
        """Yield each tuple of host arrays of `batches` as arrays of `xp`: on the CPU the arrays
        themselves; on the GPU copied asynchronously (see `_pinned_feed`)."""
        if self.xp is np:
            for batch in batches:
                yield tuple(np.asarray(a) for a in batch)
        else:
            yield from _pinned_feed(self.xp, batches)

    def rng(self, seed) -> "Rng":
        return Rng(self.xp, seed)


class Rng:
    """Seeded random source on the backend's device; its state is checkpointable (plain JSON).

    On the CPU: NumPy's PCG64, and its state. CuPy's generators keep their state on the device
    (XORWOW: one per thread), where a checkpoint cannot read it; so on the GPU every draw reseeds
    one counter-based generator (cuRAND's Philox, no set-up kernel) from (seed, draws so far).
    Its state is those two integers, and a resumed run draws what the uninterrupted one drew."""

    def __init__(self, xp, seed):
        self.xp = xp
        if xp is np:
            self.generator = np.random.Generator(np.random.PCG64(seed))
        else:
            self.seed, self.draws = int(seed), 0
            self.device_generator = xp.random.RandomState(
                method=xp.cuda.curand.CURAND_RNG_PSEUDO_PHILOX4_32_10)

    def _source(self):
        if self.xp is np:
            return self.generator
        key = np.random.SeedSequence([self.seed, self.draws]).generate_state(1, np.uint64)[0]
        self.draws += 1
        self.device_generator.seed(int(key))
        return self.device_generator

    def normal(self, shape, scale=1.0, dtype=np.float32):
        """N(0, scale²) drawn directly in `dtype`: no float64 temporary on the TP noise path."""
        out = self._source().standard_normal(shape, dtype=dtype)
        out *= scale
        return out

    def normal_like(self, a, scale=1.0):
        """N(0, scale²) of a's shape and dtype, drawn in a's memory order: noise for a batch-last
        activation is batch-last too, so a + noise is (NumPy otherwise returns it batch-first,
        for every op after it to transpose, or takes 34 ms instead of 13 to keep it batch-last on
        ImageNet-LC's layer 1 at batch 32)."""
        if self.xp is not np:
            return self.normal(a.shape, scale, a.dtype)          # the CUDA faces' arrays: C order
        out = np.empty_like(a)                                   # a's memory order, compact
        self.generator.standard_normal(dtype=a.dtype, out=out.ravel(order="K"))
        out *= scale
        return out

    def uniform(self, shape, low, high, dtype=np.float32):
        return self._source().uniform(low, high, size=shape).astype(dtype)

    def uniform_below(self, shape, high, dtype=np.float32):
        """U(0, high) drawn directly in `dtype`: no float64 temporary on brSF's per-batch draw
        (its MNIST-LC step at batch 100: 41-44 ms of CPU time through `uniform`, 38-40 ms)."""
        source = self._source()
        out = source.random(shape, dtype=dtype) if self.xp is np else \
            source.random_sample(shape, dtype=dtype)             # cupy's RandomState names it so
        out *= high
        return out

    @property
    def state(self):
        if self.xp is np:
            return self.generator.bit_generator.state
        return {"seed": self.seed, "draws": self.draws}

    @state.setter
    def state(self, value):
        if self.xp is np:
            self.generator.bit_generator.state = value
        else:
            self.seed, self.draws = int(value["seed"]), int(value["draws"])


def _pinned_feed(cupy, batches):
    """Host batches to the GPU without stalling it: batch k+1 is copied on a side stream while
    step k runs (pageable memory would make every copy synchronous), through two pinned host
    buffers used in turn (double buffering). The ordering, by CUDA events:
      * the compute stream waits for batch k's copy before its first use of batch k;
      * the copy of batch k+1 waits for everything the compute stream had queued when batch k
        was asked for (the steps before k): CuPy's pool may hand batch k+1 memory freed by an
        earlier batch whose step the GPU is still running;
      * a pinned buffer is refilled only after the copy that read it last has finished.
    Blocks of batches <= k-1 are the only memory batch k+1 can reuse, because the consumer still
    holds batch k-1 while it asks for batch k."""
    import cupyx

    side = cupy.cuda.Stream(non_blocking=True)
    pinned, copied = [None, None], [None, None]        # per buffer: host arrays, their copy event

    def upload(batch, slot):
        if copied[slot] is not None:
            copied[slot].synchronize()
        if pinned[slot] is None or [p.shape for p in pinned[slot]] != [a.shape for a in batch]:
            pinned[slot] = [cupyx.empty_pinned(a.shape, a.dtype) for a in batch]
        out = []
        with side:
            for host, staging in zip(batch, pinned[slot]):
                np.copyto(staging, host)
                device = cupy.empty(host.shape, host.dtype)
                device.set(staging, stream=side)
                out.append(device)
        copied[slot] = side.record()
        return tuple(out), copied[slot]

    batches = iter(batches)
    try:
        first = next(batches, None)
        ahead = None if first is None else upload(first, 0)
        slot = 1
        while ahead is not None:
            current, ready = ahead
            compute = cupy.cuda.get_current_stream()
            side.wait_event(compute.record())
            following = next(batches, None)
            ahead = None if following is None else upload(following, slot)
            slot ^= 1
            compute.wait_event(ready)
            yield current
    finally:
        side.synchronize()                 # no copy may still read a pinned buffer we drop


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
        try:
            fast_cpu_enabled()     # LCENGINE_FAST_CPU: a bad value is one line here
        except ValueError as err:
            raise BackendError(str(err)) from None
        keep_freed_memory()        # NumPy's per-step temporaries: no page faults (host_memory)
        sleep_when_idle()          # no OpenMP thread spinning between regions (host_threads)
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
