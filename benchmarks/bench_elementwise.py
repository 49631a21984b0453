"""Benchmark of the memory-bound ops' fast CPU faces: tanh and its backward pass, TP targets,
fused Adam (alone, and fused into the LC weight gradient), DFA feedback, and the copy past the
cache that the LC weight gradient writes its result with.

    python benchmarks/bench_elementwise.py [--repeats 5]

For each op on the paper's sizes it
  1. checks the fast face (`activation_cpu`, `targets_cpu`, `adam_cpu`, `feedback_cpu` — what
     the engine runs)
     against its reference (`*_ref`);
  2. times both (best of --repeats after a warm-up call);
  3. prints one JSON line: shape, ms, GB/s (each operand read or written once: tanh moves 2
     arrays, tanh_backward 3, difference_target 4, tanh_regression 3, Adam 7 — p, g, m, v
     read, p, m, v written; the copy 2) and the speed-up over the reference (for
     `simd.stream`, NumPy's plain copy).
The LC weight gradient fused into Adam (`lc_cpu.lc_backward_weight_adam`, batch 128 for
CIFAR-LC and 32 for ImageNet-LC, as in `bench_lc.py`) is timed against what it replaces, the
weight gradient then `adam_cpu.adam_update`; its GB/s counts W, m and v read and written.
DFA feedback is compute-bound (N·M·K multiply-adds, plus M·K hashes when B is not stored): its
line gives GFLOP/s = 2·N·M·K / time instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lcengine.ops.cpu.host_threads import blas_threads_sleep_soon

blas_threads_sleep_soon()           # first: OpenBLAS reads its idle timeout when NumPy loads it

import numpy as np

if __package__ in (None, ""):                       # run as a script: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks import common
else:
    from . import common

from lcengine.ops import (activation_cpu, activation_ref, adam_cpu, adam_ref,  # noqa: E402
                          feedback_cpu, feedback_ref, targets_cpu, targets_ref)
from lcengine.ops.cpu import lc as lc_cpu, simd  # noqa: E402
from lcengine.ops.geometry import window_geometry  # noqa: E402

#: (name, per-example shape) of hidden layers whose activations the tanh and target ops touch
LAYERS = (("mnist-fc hidden", (256,)), ("cifar-lc layer 1", (64, 16, 16)),
          ("imagenet-lc layer 1", (48, 56, 56)))
#: (name, parameter count) of weight tensors the optimiser updates
PARAMS = (("mnist-fc (all)", 465_408), ("cifar-lc layer 2", 13_107_200),
          ("imagenet-lc layer 1", 36_578_304))
#: (name, units M, classes K) of DFA feedback targets
FEEDBACK = (("mnist-fc hidden (B stored)", 256, 10),
            ("imagenet-lc layer 1 (B hashed)", 150_528, 1000))
#: (name, number count) of LC weight gradients larger than the last-level cache, which
#: `lc_cpu` writes out with `simd.stream`
STREAMED = (("cifar-lc layer 2 dW", 13_107_200), ("imagenet-lc layer 3 dW", 90_316_800))
#: (name, batch, input (C, H, W), out channels, kernel, stride) of LC layers whose weight
#: gradient the fused Adam takes: the big ones of the paper's nets, "same" padding
FUSED = (("cifar-lc layer 2", 128, (64, 16, 16), 128, 5, 2),
         ("imagenet-lc layer 3", 32, (48, 28, 28), 96, 5, 1))
TOL = dict(rtol=1e-5, atol=1e-5)                    # float32, as in the faces' tests


def _line(op, name, shape, fast, ref, repeats, nbytes=None, flop=None):
    sec = common.timings(fast, repeats)
    base = common.timings(ref, repeats)
    rec = {"kind": "op", "op": op, "case": name, "shape": shape, "dtype": "float32",
           **common.summary(sec), "ref_ms": round(1e3 * min(base), 4),
           "speedup_vs_ref": round(min(base) / min(sec), 2)}
    if nbytes is not None:
        rec["gbs"] = round(nbytes / min(sec) / 1e9, 2)
    if flop is not None:
        rec["gflops"] = round(flop / min(sec) / 1e9, 2)
    return rec


def run(repeats=5, batch=32, stream=None):
    rng = np.random.default_rng(0)
    common.emit({"kind": "machine", **common.machine(),
                 "timing": f"best of {repeats} after a warm-up call"}, stream)
    for name, shape in LAYERS:
        h, a_rec, a_hat = (np.tanh(rng.standard_normal((batch, *shape), dtype=np.float32))
                           for _ in range(3))
        common.compare(activation_cpu.tanh(a_rec), activation_ref.tanh(a_rec), **TOL, what=name)
        common.emit(_line("tanh", name, [batch, *shape], lambda: activation_cpu.tanh(a_rec),
                          lambda: activation_ref.tanh(a_rec), repeats, nbytes=2 * h.nbytes),
                    stream)
        common.compare(activation_cpu.tanh_backward(a_hat, h),
                       activation_ref.tanh_backward(a_hat, h), **TOL, what=name)
        common.emit(_line("tanh_backward", name, [batch, *shape],
                          lambda: activation_cpu.tanh_backward(a_hat, h),
                          lambda: activation_ref.tanh_backward(a_hat, h), repeats,
                          nbytes=3 * h.nbytes), stream)
        common.compare(targets_cpu.difference_target(h, a_rec, a_hat),
                       targets_ref.difference_target(h, a_rec, a_hat), **TOL, what=name)
        common.emit(_line("difference_target", name, [batch, *shape],
                          lambda: targets_cpu.difference_target(h, a_rec, a_hat),
                          lambda: targets_ref.difference_target(h, a_rec, a_hat), repeats,
                          nbytes=4 * h.nbytes), stream)
        common.compare(targets_cpu.tanh_regression(h, a_rec)[1],
                       targets_ref.tanh_regression(h, a_rec)[1], **TOL, what=name)
        common.emit(_line("tanh_regression", name, [batch, *shape],
                          lambda: targets_cpu.tanh_regression(h, a_rec),
                          lambda: targets_ref.tanh_regression(h, a_rec), repeats,
                          nbytes=3 * h.nbytes), stream)
    for name, size in PARAMS:
        p, g = (rng.standard_normal(size, dtype=np.float32) for _ in range(2))
        m, v = np.zeros_like(p), np.zeros_like(p)
        fast, ref = ([a.copy() for a in (p, m, v)] for _ in range(2))   # one step on copies
        adam_cpu.adam_update(fast[0], g, *fast[1:], 1e-3, 0.9, 0.999, 1e-8)
        adam_ref.adam_update(ref[0], g, *ref[1:], 1e-3, 0.9, 0.999, 1e-8)
        common.compare(fast[0], ref[0], **TOL, what=name)
        common.emit(_line("adam_update", name, [size],
                          lambda: adam_cpu.adam_update(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8),
                          lambda: adam_ref.adam_update(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8),
                          repeats, nbytes=7 * p.nbytes), stream)
    for name, batch_size, (C, H, W), O, k, s in FUSED:
        (P, Q), pads = window_geometry((H, W), k, s, "same")
        x = lc_cpu.batch_last(rng.standard_normal((batch_size, C, H, W), dtype=np.float32))
        dy = lc_cpu.batch_last(rng.standard_normal((batch_size, O, P, Q), dtype=np.float32))
        p = rng.standard_normal((P, Q, O, C, k, k), dtype=np.float32)
        m, v = np.zeros_like(p), np.zeros_like(p)
        args = (x, dy, (k, k), (s, s), pads)
        adam = (1e-3, 0.9, 0.999, 1e-8)
        fast, ref = ([a.copy() for a in (p, m, v)] for _ in range(2))   # one step on copies
        lc_cpu.lc_backward_weight_adam(*args, *fast, *adam)
        adam_cpu.adam_update(ref[0], lc_cpu.lc_backward_weight(*args), *ref[1:], *adam)
        common.compare(fast[0], ref[0], **TOL, what=name)
        common.emit(_line("lc_backward_weight_adam", name, [batch_size, *p.shape],
                          lambda: lc_cpu.lc_backward_weight_adam(*args, p, m, v, *adam),
                          lambda: adam_cpu.adam_update(p, lc_cpu.lc_backward_weight(*args), m, v,
                                                       *adam),
                          repeats, nbytes=6 * p.nbytes), stream)
    for name, size in STREAMED:
        src = rng.standard_normal(size, dtype=np.float32)
        fast, ref = np.empty_like(src), np.empty_like(src)
        simd.stream(src, fast)
        common.compare(fast, src, rtol=0, atol=0, what=name)
        common.emit(_line("stream", name, [size], lambda: simd.stream(src, fast),
                          lambda: np.copyto(ref, src), repeats, nbytes=2 * src.nbytes), stream)
    for name, units, classes in FEEDBACK:
        e = rng.standard_normal((batch, classes), dtype=np.float32)
        common.compare(feedback_cpu.random_feedback(e, 7, units, 0.01),
                       feedback_ref.random_feedback(e, 7, units, 0.01), **TOL, what=name)
        common.emit(_line("random_feedback", name, [batch, units, classes],
                          lambda: feedback_cpu.random_feedback(e, 7, units, 0.01),
                          lambda: feedback_ref.random_feedback(e, 7, units, 0.01), repeats,
                          flop=2 * batch * units * classes), stream)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=32)
    a = ap.parse_args(argv)
    run(a.repeats, a.batch)


if __name__ == "__main__":
    main()
