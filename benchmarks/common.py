"""Helpers every lcengine benchmark shares: the machine's peak, timing, one JSON line per result.

Method (the same for every benchmark, stated in docs/performance.md):
  * peak = the best of several large float32 matmuls (NumPy's BLAS, all cores), re-measured
    before every layer (`MatmulPeak`): an op is compared with the reading next to it, and the
    totals also with the best reading of the run;
  * a timed function is called once to warm up (compilation, page faults of reused buffers), then
    `repeats` times; we report the best (least disturbed by whatever else the machine runs)
    and the median;
  * GFLOP/s = stated FLOPs / best time; GB/s = the bytes each operand must cross memory once
    (inputs read, output written) / best time — a lower bound on the real traffic;
  * we also record the CPU time of each call (all our threads): FLOPs per CPU-second × cores
    is what the op would reach with the cores to itself.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from functools import partial

import numpy as np

from lcengine.ops.cpu import simd
from lcengine.ops.cpu.host_memory import keep_freed_memory
from lcengine.ops.cpu.host_threads import (blas_idle_timeout, blas_threads_sleep_soon,
                                            sleep_when_idle)


def timings(fn, repeats=5, warmup=1, cpu=None):
    """Wall seconds of `repeats` calls of fn() after `warmup` untimed calls; if `cpu` is a list,
    the process CPU seconds of each call (all threads) are appended to it."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        c0 = time.process_time()
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
        if cpu is not None:
            cpu.append(time.process_time() - c0)
    return out


def summary(seconds, cpu_seconds=None):
    """{"ms": best, "ms_median": median[, "cpu_ms": best CPU time]} in milliseconds. The CPU
    time (summed over our threads) is the figure least moved by other processes."""
    out = {"ms": round(1e3 * min(seconds), 4),
           "ms_median": round(1e3 * statistics.median(seconds), 4)}
    if cpu_seconds:
        out["cpu_ms"] = round(1e3 * min(cpu_seconds), 4)
    return out


def copy_bandwidth_gbs(nbytes=256 << 20, repeats=3):
    """Main-memory bandwidth: best (read + write) bytes per second of a large array copy."""
    a = np.ones(nbytes // 8)
    b = np.empty_like(a)
    best = min(timings(lambda: np.copyto(b, a), repeats=repeats))
    return 2 * nbytes / best / 1e9


def matmul_peak_gflops(n=2048, repeats=5, dtype=np.float32, cpu=None):
    """The machine's practical peak: best GFLOP/s of an n×n×n matmul through NumPy's BLAS (all
    cores). If `cpu` is a list, the GFLOP per CPU-second of the best call is appended to it."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    c = np.empty((n, n), dtype=dtype)
    cpu_s = []
    best = min(timings(lambda: np.matmul(a, b, out=c), repeats=repeats, cpu=cpu_s))
    if cpu is not None:
        cpu.append(2.0 * n ** 3 / min(cpu_s) / 1e9)
    return 2.0 * n ** 3 / best / 1e9


class MatmulPeak:
    """The float32 matmul peak, re-measured through a run: on a VM the 2048³ sgemm can move
    by 2× within minutes (docs/performance.md), so one reading at the start would flatter or
    shame every op after it. A benchmark calls `measure()` before
    each layer and compares that layer's ops with the reading just before them (the machine as
    it was then); its totals are also given against `best`, the highest reading of the run,
    which can only lower a percentage."""

    def __init__(self, repeats=3):
        self.repeats = repeats
        self.readings = []

    def measure(self, cpu=None):
        """One more reading (GFLOP/s); `cpu` as in `matmul_peak_gflops`."""
        reading = matmul_peak_gflops(repeats=self.repeats, cpu=cpu)
        self.readings.append(reading)
        return reading

    @property
    def best(self):
        return max(self.readings)

    def record(self):
        """The run's closing "peak" JSON line."""
        return {"kind": "peak", "sgemm_gflops_readings": [round(r, 1) for r in self.readings],
                "sgemm_gflops_best": round(self.best, 1),
                "note": "each op's % uses the reading taken just before its layer"}


def totals(records, peak):
    """The "total" figures of some op records (all directions of some layers together): time,
    GFLOP/s, and % of sgemm two ways: against the readings next to each op (Σ FLOPs / Σ time ×
    that reading: the share of what sgemm would have done in the same time) and against the
    best reading of the run. The worst layer-direction is the lowest % next to its reading
    (`worst`); against the best reading the slowest op is the worst, which may be another."""
    flop = sum(r["gflop"] for r in records)
    seconds = sum(r["ms"] for r in records) / 1e3
    sgemm_equivalent = sum(r["ms"] / 1e3 * r["sgemm_gflops_adjacent"] for r in records)
    worst = min(records, key=lambda r: r["pct_of_sgemm_peak"])
    return {"layers": sorted({r["layer"] for r in records}), "ms": round(1e3 * seconds, 3),
            "gflops": round(flop / seconds, 2),
            "pct_of_sgemm_peak": round(100 * flop / sgemm_equivalent, 1),
            "pct_of_best_sgemm": round(100 * flop / seconds / peak.best, 1),
            "worst": f"layer {worst['layer']} {worst['direction']}",
            "worst_pct_of_sgemm_peak": worst["pct_of_sgemm_peak"],
            "worst_pct_of_best_sgemm": round(100 * min(r["gflops"] for r in records) / peak.best,
                                             1)}


def machine():
    """A short description of where the numbers were taken. It also sets glibc's malloc and
    OpenMP's idle threads as a training process has them (`keep_freed_memory`, `sleep_when_idle`),
    so that the ops are timed without the page faults glibc's default can add to every call and
    as they run in a training step, without a spinning thread waiting for the next region."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"cpu": model, "cores": cores, "loadavg_1min": load, "numpy": np.__version__,
            "python": platform.python_version(), "malloc_kept": keep_freed_memory(),
            "omp_idle_threads_sleep": sleep_when_idle(), "simd_vector_bytes": simd.VECTOR_BYTES,
            "openblas_thread_timeout": (blas_idle_timeout() if blas_threads_sleep_soon()
                                        else "unknown: NumPy was loaded before it was set")}


def emit(record, stream=None):
    """Print one JSON line (flushed, so a long run can be followed)."""
    stream = stream or sys.stdout
    stream.write(json.dumps(record, separators=(", ", ": ")) + "\n")
    stream.flush()


def max_abs_rel_error(got, ref):
    """(worst |got − ref|, the worst of |got − ref| / (1 + |ref|)) as floats."""
    diff = np.abs(np.asarray(got, dtype=np.float64) - np.asarray(ref, dtype=np.float64))
    return float(diff.max()), float((diff / (1.0 + np.abs(ref))).max())


DIRECTIONS = ("forward", "backward_input", "backward_weight")
#: fast face vs reference in the windowed-op benchmarks, as in their tests:
#: (rtol, atol per √(length of the sum))
TOLERANCE = {np.float32: (1e-4, 1e-5), np.float64: (1e-10, 1e-12)}


def windowed_layers(net, batch, kind, layers=None):
    """The leading `kind` ("lc" or "conv") layers of `net` (shapes from `lcengine.nets`, SAME
    padding) at batch size `batch`, 1-based `layers` only if given: dicts of every size an op
    needs (N, C, H, W, O, kh, kw, sh, sw, P, Q, pads)."""
    from lcengine.nets import HIDDEN, INPUT_SHAPES
    from lcengine.ops.geometry import window_geometry

    shape = INPUT_SHAPES[net.split("-")[0]]
    out = []
    for index, spec in enumerate(HIDDEN[net], start=1):
        if spec[0] != kind:
            break
        _, k, o, s = spec
        C, H, W = shape
        (P, Q), pads = window_geometry((H, W), k, s, "same")
        if layers is None or index in layers:
            out.append(dict(net=net, layer=index, N=batch, C=C, H=H, W=W, O=o, kh=k, kw=k,
                            sh=s, sw=s, P=P, Q=Q, pads=pads))
        shape = (o, P, Q)
    return out


def window_flops(L):
    """FLOPs of one direction of a windowed op: 2·N·P·Q·O·C·kh·kw."""
    return 2 * L["N"] * L["P"] * L["Q"] * L["O"] * L["C"] * L["kh"] * L["kw"]


def call_direction(ops, family, direction, L, x, weights, dy):
    """One direction of a windowed op family ("lc" or "conv") through `ops`, a face module with the
    reference's signatures (`lc_forward`, `conv_backward_input`, ...)."""
    stride, pads = (L["sh"], L["sw"]), L["pads"]
    if direction == "forward":
        return getattr(ops, f"{family}_forward")(x, weights, stride, pads)
    if direction == "backward_input":
        in_hw = (L["H"], L["W"])
        return getattr(ops, f"{family}_backward_input")(dy, weights, in_hw, stride, pads)
    return getattr(ops, f"{family}_backward_weight")(x, dy, (L["kh"], L["kw"]), stride, pads)


def compare(got, ref, rtol, atol, what):
    """|got − ref| ≤ atol + rtol·|ref| everywhere, else AssertionError naming `what` and the
    worst element; returns the error record a benchmark line carries."""
    bad = np.abs(got - ref) > atol + rtol * np.abs(ref)
    if got.shape != ref.shape or got.dtype != ref.dtype or bad.any():
        worst = tuple(int(i) for i in np.unravel_index(np.argmax(np.abs(got - ref)), ref.shape))
        raise AssertionError(f"{what} differs from the reference at {worst}: "
                             f"{got[worst]} vs {ref[worst]}")
    return {"max_abs_err": float(np.abs(got - ref).max())}


def time_op(ops, family, direction, L, x, weights, dy, repeats, peak):
    """Time one direction of a windowed op through `ops`; returns (record, wall seconds, CPU
    seconds), the record as `op_record` makes it."""
    cpu = []
    sec = timings(partial(call_direction, ops, family, direction, L, x, weights, dy), repeats,
                  cpu=cpu)
    return op_record(L, direction, x.dtype, sec, cpu, peak), sec, cpu


def op_record(L, direction, dtype, sec, cpu, peak):
    """The JSON line's shared fields for calls that took `sec` wall and `cpu` CPU seconds: shape,
    ms, GFLOP/s (FLOPs = `window_flops`) and % of `peak`, the float32 matmul GFLOP/s measured
    just before this layer."""
    flop = window_flops(L)
    gflops = flop / min(sec) / 1e9
    return {"kind": "op", "net": L["net"], "layer": L["layer"], "direction": direction,
            "shape": f"N{L['N']} {L['C']}x{L['H']}x{L['W']} -> {L['O']}x{L['P']}x{L['Q']}"
                     f" k{L['kh']}x{L['kw']} s{L['sh']}",
            "dtype": str(np.dtype(dtype)), **summary(sec, cpu), "gflop": flop / 1e9,
            "gflops": round(gflops, 2), "sgemm_gflops_adjacent": round(peak, 1),
            "pct_of_sgemm_peak": round(100 * gflops / peak, 1)}
