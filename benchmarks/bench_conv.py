"""Benchmark of the conv ops' fast CPU face (`lcengine.ops.conv_cpu`) on the conv twins' layers.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/bench_conv.py [--net cifar-conv]

For each conv layer of mnist-conv and cifar-conv (batch 128) and layers 1 and 3 of imagenet-conv
(batch 32), and each direction, it
  1. checks conv_cpu against conv_ref (the definition) on the first --check-batch examples, with
     the tolerances of tests/test_ops_conv.py;
  2. times conv_cpu (best of --repeats after a warm-up call, and the median; CPU time too) and
     conv_ref — the reference is einsum over a sliding_window_view, what a NumPy user writes —
     timed once when it takes over a second;
  3. prints one JSON line: shape, ms, GFLOP/s with FLOPs = 2·N·P·Q·O·C·kh·kw, % of the float32
     matmul peak measured just before the layer (same threads; `common.MatmulPeak`), and the
     speed-up over conv_ref.
The engine and this script call the same functions (`conv_cpu.conv_*`).
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

from lcengine.ops.cpu.host_threads import blas_threads_sleep_soon

blas_threads_sleep_soon()           # first: OpenBLAS reads its idle timeout when NumPy loads it

import numpy as np

if __package__ in (None, ""):                       # run as a script: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks import common
else:
    from . import common

from lcengine.ops import conv_cpu, conv_ref          # noqa: E402  (after the path fix above)

NETS = ("mnist-conv", "cifar-conv", "imagenet-conv")
DEFAULT_BATCH = {"mnist-conv": 128, "cifar-conv": 128, "imagenet-conv": 32}
DEFAULT_LAYERS = {"imagenet-conv": (1, 3)}          # 1-based; others: every conv layer


def operands(L, N, rng, dtype=np.float32):
    x = rng.standard_normal((N, L["C"], L["H"], L["W"]), dtype=np.float32).astype(dtype)
    K = rng.standard_normal((L["O"], L["C"], L["kh"], L["kw"]), dtype=np.float32).astype(dtype)
    dy = rng.standard_normal((N, L["O"], L["P"], L["Q"]), dtype=np.float32).astype(dtype)
    return x, K, dy


def sum_length(L, direction, N):
    return {"forward": L["C"] * L["kh"] * L["kw"], "backward_input": L["O"] * L["kh"] * L["kw"],
            "backward_weight": N * L["P"] * L["Q"]}[direction]


def check(L, direction, check_batch, dtype=np.float32):
    """Fast face vs reference on this geometry; returns the error record, raises on failure."""
    rng = np.random.default_rng(1234 + L["layer"])
    x, K, dy = operands(L, min(L["N"], check_batch), rng, dtype)
    got, ref = (common.call_direction(ops, "conv", direction, L, x, K, dy)
                for ops in (conv_cpu, conv_ref))
    rtol, atol = common.TOLERANCE[dtype]
    atol *= np.sqrt(sum_length(L, direction, x.shape[0]))
    what = f"conv_cpu.{direction} on {L['net']} layer {L['layer']}"
    return {"check_batch": int(x.shape[0]), **common.compare(got, ref, rtol, atol, what)}


def run(nets=NETS, batch=None, repeats=5, check_batch=8, reference=True, stream=None):
    """Benchmark `nets`; prints JSON lines and returns them as dicts."""
    records = []

    def out(rec):
        records.append(rec)
        common.emit(rec, stream)

    peak = common.MatmulPeak()
    out({"kind": "machine", **common.machine(), "sgemm_gflops": round(peak.measure(), 1),
         "sgemm_shape": "2048x2048x2048", "timing": f"best of {repeats} after a warm-up call"})
    for net in nets:
        n = batch or DEFAULT_BATCH[net]
        for L in common.windowed_layers(net, n, "conv", DEFAULT_LAYERS.get(net)):
            x, K, dy = operands(L, n, np.random.default_rng(L["layer"]))
            adjacent = peak.measure()
            for direction in common.DIRECTIONS:
                err = check(L, direction, check_batch)
                rec, sec, cpu = common.time_op(conv_cpu, "conv", direction, L, x, K, dy, repeats,
                                               adjacent)
                rec.update(err)
                if reference:
                    fn = partial(common.call_direction, conv_ref, "conv", direction, L, x, K, dy)
                    base = common.timings(fn, repeats=1, warmup=0)
                    if base[0] < 1.0:
                        base += common.timings(fn, repeats=repeats - 1, warmup=0)
                    rec["ref_ms"] = round(1e3 * min(base), 3)
                    rec["speedup_vs_ref"] = round(min(base) / min(sec), 2)
                out(rec)
    peak.measure()
    out(peak.record())
    return records


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--net", action="append", choices=NETS, help="repeatable; default: all")
    ap.add_argument("--batch", type=int, help="default: 128 (MNIST, CIFAR), 32 (ImageNet)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--check-batch", type=int, default=8)
    ap.add_argument("--no-reference", action="store_true", help="skip timing conv_ref")
    a = ap.parse_args(argv)
    run(tuple(a.net or NETS), a.batch, a.repeats, a.check_batch, not a.no_reference)


if __name__ == "__main__":
    main()
