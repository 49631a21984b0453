"""Benchmark of the CUDA faces: the LC kernels on the paper's ImageNet-LC layers, and fused Adam.

    python benchmarks/bench_cuda.py [--batch 32 128 256] [--layers 1 3] [--op lc|adam|all]
                                    [--dtype float32] [--repeats 20]

For every configuration it first checks the CUDA face against the reference (`lc_ref` /
`adam_ref` run with CuPy on the same inputs; tolerances at `check`), then times it with CUDA
events, flushing the L2 cache before every timed launch, and prints one JSON line: shape, median ms,
TFLOP/s from the formula 2·N·O·(C·kh·kw)·P·Q per direction, GB/s from the bytes each direction must
move at least, % of the device's FP32 (or FP64) peak from the table below, the ratio to the
reference face and, when PyTorch is importable, the ratio to the PyTorch CUDA baseline a user would
otherwise write (F.unfold/F.fold + torch.bmm per location). Our kernels are SIMT FP32 (no tensor
cores, so never TF32); each line records whether TF32 was allowed for PyTorch's bmm.

The engine's kernels are loaded through the same launchers the engine calls (lcengine.ops.lc_cuda,
adam_cuda); nothing is copied here. Without CuPy or a GPU it exits at once with a one-line message.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

if __package__ in (None, ""):                       # run as a script: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from lcengine.nets import HIDDEN, INPUT_SHAPES  # noqa: E402
from lcengine.ops.geometry import window_geometry  # noqa: E402

#: dense FP32 / FP64 (non-tensor-core) peaks in TFLOP/s and memory bandwidth in GB/s, by name
PEAKS = {
    "H200": dict(fp32=67.0, fp64=34.0, gbps=4800.0),
    "H100": dict(fp32=67.0, fp64=34.0, gbps=3350.0),       # SXM; the PCIe card is lower
    "A100": dict(fp32=19.5, fp64=9.7, gbps=2039.0),
}
# Adam: |got − ref| ≤ atol + rtol·|ref| against the reference run on the GPU with CuPy
TOL = {"float32": dict(rtol=1e-4, atol=1e-4), "float64": dict(rtol=1e-10, atol=1e-10)}


def imagenet_lc_layers():
    """(C, H, W, O, k, s, pads, (P, Q)) of each LC layer of the paper's ImageNet net."""
    C, H, W = INPUT_SHAPES["imagenet"]
    out = []
    for _, k, O, s in HIDDEN["imagenet-lc"]:
        (P, Q), pads = window_geometry((H, W), (k, k), (s, s), "same")
        out.append((C, H, W, O, k, s, pads, (P, Q)))
        C, H, W = O, P, Q
    return out


def gpu_or_exit():
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("no CUDA device")
    except Exception as err:                                   # ImportError, CUDARuntimeError
        sys.exit(f"bench_cuda: needs CuPy and a CUDA GPU ({type(err).__name__}: {err}); "
                 "nothing timed")
    return cupy


class Timer:
    """Median time of fn() in ms by CUDA events, the L2 cache flushed before each launch."""

    def __init__(self, cupy, repeats):
        self.cupy, self.repeats = cupy, repeats
        l2 = cupy.cuda.Device().attributes.get("L2CacheSize", 64 << 20)
        self.flush_buffer = cupy.empty(2 * l2 // 4 + 1, dtype=cupy.float32)

    def __call__(self, fn):
        cupy = self.cupy
        fn()                                                   # warm-up (and compilation)
        start, stop, times = cupy.cuda.Event(), cupy.cuda.Event(), []
        for _ in range(self.repeats):
            self.flush_buffer.fill(0)
            start.record()
            fn()
            stop.record()
            stop.synchronize()
            times.append(cupy.cuda.get_elapsed_time(start, stop))
        return statistics.median(times)


def check(name, got, want, dtype, sums=None, eps=None):
    """Adam's results within TOL; a sum of products (`sums` = (depth, Σ|terms| per element), the
    op on the inputs' absolute values) within 2·√depth·ε·Σ|terms| — rounding grows with the
    depth of the sum, so a fixed tolerance fails near zero on K ≈ 1,200 or N = 256, and this
    bound is still about ten standard deviations of the rounding error of either order. `eps`:
    the unit of the products' rounding when it is coarser than `dtype`'s (TF32: 2⁻¹⁰)."""
    got, want = got.get().astype(np.float64), want.get().astype(np.float64)
    if sums is None:
        allowed = TOL[dtype]["atol"] + TOL[dtype]["rtol"] * np.abs(want)
    else:
        depth, magnitude = sums
        eps = np.finfo(dtype).eps if eps is None else eps
        allowed = 2 * math.sqrt(depth) * eps * magnitude.get() + 1e-30
    excess = np.abs(got - want) - allowed
    if excess.max() > 0:
        worst = np.unravel_index(np.argmax(excess), excess.shape)
        sys.exit(f"bench_cuda: {name} disagrees with the reference at {worst}: got "
                 f"{got[worst]!r}, expected {want[worst]!r}; shape {want.shape}; nothing timed")


def torch_baseline(torch, x, Wt, dy, k, s, pads, in_hw):
    """PyTorch CUDA LC by unfold/fold + bmm over locations: the three directions as closures, each
    returning the public layout (so it is checked like our kernels)."""
    F = torch.nn.functional
    top, bottom, left, right = pads
    P, Q, O, C, kh, kw = Wt.shape
    N, L, K = x.shape[0], P * Q, C * kh * kw
    tx, tW, tdy = (torch.as_tensor(a, device="cuda") for a in (x, Wt, dy))
    W3 = tW.reshape(L, O, K)
    dy3 = tdy.reshape(N, O, L).permute(2, 1, 0)                            # (L, O, N)
    extent = ((P - 1) * s + kh, (Q - 1) * s + kw)                          # what the windows cover

    def cols():                                                            # (N, K, L)
        xp = F.pad(tx, (left, right, top, bottom))[:, :, :extent[0], :extent[1]]
        return F.unfold(xp, (kh, kw), stride=(s, s))

    def forward():
        return torch.bmm(W3, cols().permute(2, 1, 0)).permute(2, 1, 0).reshape(N, O, P, Q)

    def backward_input():
        c = torch.bmm(W3.transpose(1, 2), dy3).permute(2, 1, 0)            # (N, K, L)
        dx = F.fold(c, extent, (kh, kw), stride=(s, s))
        return dx[:, :, top:top + in_hw[0], left:left + in_hw[1]]

    def backward_weight():
        return torch.bmm(dy3, cols().permute(2, 0, 1)).reshape(Wt.shape)  # (L, O, K)

    return {"forward": forward, "backward_input": backward_input,
            "backward_weight": backward_weight}


def bench_lc(cupy, args, timer, peak, torch):
    from lcengine.ops import lc_cuda, lc_ref
    layers = imagenet_lc_layers()
    for index in args.layers:
        C, H, W, O, k, s, pads, (P, Q) = layers[index - 1]
        for N in args.batch:
            rng = cupy.random.default_rng(index * 1000 + N)
            x = rng.standard_normal((N, C, H, W), dtype=args.dtype)
            Wt = rng.standard_normal((P, Q, O, C, k, k), dtype=args.dtype) / math.sqrt(C * k * k)
            dy = rng.standard_normal((N, O, P, Q), dtype=args.dtype)
            ax, aW, ady = abs(x), abs(Wt), abs(dy)
            sums = {"forward": (C * k * k, lc_ref.lc_forward(ax, aW, (s, s), pads)),
                    "backward_input": (O * k * k, lc_ref.lc_backward_input(ady, aW, (H, W),
                                                                          (s, s), pads)),
                    "backward_weight": (N, lc_ref.lc_backward_weight(ax, ady, (k, k), (s, s),
                                                                     pads))}
            del ax, aW, ady
            runs = {
                "forward": (lambda: lc_cuda.lc_forward(x, Wt, (s, s), pads),
                            lambda: lc_ref.lc_forward(x, Wt, (s, s), pads)),
                "backward_input": (lambda: lc_cuda.lc_backward_input(dy, Wt, (H, W), (s, s), pads),
                                   lambda: lc_ref.lc_backward_input(dy, Wt, (H, W), (s, s), pads)),
                "backward_weight": (lambda: lc_cuda.lc_backward_weight(x, dy, (k, k), (s, s), pads),
                                    lambda: lc_ref.lc_backward_weight(x, dy, (k, k), (s, s), pads)),
            }
            baseline = torch_baseline(torch, x, Wt, dy, k, s, pads, (H, W)) if torch else {}
            item = np.dtype(args.dtype).itemsize
            flops = 2.0 * N * O * C * k * k * P * Q
            moved = item * {"forward": Wt.size + x.size + dy.size,
                            "backward_input": Wt.size + dy.size + 2 * x.size,
                            "backward_weight": 2 * Wt.size + x.size + dy.size}
            for direction, (fast, ref) in runs.items():
                want = ref()                       # a launch per location: computed once
                check(f"lc_{direction} layer {index} batch {N}", fast(), want, args.dtype,
                      sums[direction])
                if direction in baseline:
                    check(f"torch lc_{direction} layer {index} batch {N}",
                          cupy.asarray(baseline[direction]()), want, args.dtype,
                          sums[direction], 2.0**-10 if args.torch_tf32 else None)
                del want
                ms = timer(fast)
                ref_ms = timer(ref) if args.time_reference else None
                torch_ms = timer(baseline[direction]) if direction in baseline else None
                tflops = flops / ms / 1e9
                print(json.dumps({
                    "op": f"lc_{direction}", "layer": index, "N": N, "C": C, "H": H, "W": W,
                    "O": O, "kernel": k, "stride": s, "P": P, "Q": Q, "dtype": args.dtype,
                    "ms": round(ms, 4), "tflops": round(tflops, 3),
                    "gbps": round(moved[direction] / ms / 1e6, 1),
                    "pct_peak": round(100 * tflops / peak[fp(args)], 1) if peak else None,
                    "ref_over_ours": round(ref_ms / ms, 2) if ref_ms else None,
                    "torch_over_ours": round(torch_ms / ms, 2) if torch_ms else None,
                    "tf32": {"lcengine": False,
                             "torch": (bool(torch.backends.cuda.matmul.allow_tf32)
                                       if torch else None)},
                }), flush=True)


def fp(args):
    return "fp32" if args.dtype == "float32" else "fp64"


def bench_adam(cupy, args, timer, peak):
    from lcengine.ops import adam_cuda, adam_ref
    n = args.adam_size
    rng = cupy.random.default_rng(0)
    p, g = (rng.standard_normal(n, dtype=args.dtype) for _ in range(2))
    m = cupy.zeros(n, args.dtype)
    v = cupy.zeros(n, args.dtype)
    ref = [a.copy() for a in (p, g, m, v)]
    adam_cuda.adam_update(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8)
    adam_ref.adam_update(*ref, 1e-3, 0.9, 0.999, 1e-8)
    for name, got, want in zip("pmv", (p, m, v), (ref[0], ref[2], ref[3])):
        check(f"adam_update {name}", got, want, args.dtype)
    ms = timer(lambda: adam_cuda.adam_update(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8))
    ref_ms = timer(lambda: adam_ref.adam_update(*ref, 1e-3, 0.9, 0.999, 1e-8))
    gbps = 7 * np.dtype(args.dtype).itemsize * n / ms / 1e6            # 4 reads + 3 writes
    print(json.dumps({"op": "adam_update", "n": n, "dtype": args.dtype, "ms": round(ms, 4),
                      "gbps": round(gbps, 1),
                      "pct_peak_bw": round(100 * gbps / peak["gbps"], 1) if peak else None,
                      "ref_over_ours": round(ref_ms / ms, 2)}), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--op", choices=("lc", "adam", "all"), default="all")
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 128, 256])
    parser.add_argument("--layers", type=int, nargs="+", default=list(range(1, 8)),
                        help="ImageNet-LC layers, 1-7")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--adam-size", type=int, default=90_316_800,
                        help="elements (default: the largest ImageNet-LC weight, layer 3)")
    parser.add_argument("--torch-tf32", action="store_true",
                        help="allow TF32 in PyTorch's bmm (default: FP32, like our kernels)")
    parser.add_argument("--time-reference", action="store_true",
                        help="also time the reference face (slow: a launch per location)")
    args = parser.parse_args(argv)
    cupy = gpu_or_exit()
    name = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"].decode()
    peak = next((v for key, v in PEAKS.items() if key in name), None)
    try:
        import torch
        torch = torch if torch.cuda.is_available() else None
    except ImportError:
        torch = None
    if torch:
        torch.backends.cuda.matmul.allow_tf32 = args.torch_tf32
    print(json.dumps({"device": name, "peak": peak, "torch": torch.__version__ if torch else None,
                      "cupy": cupy.__version__}), flush=True)
    timer = Timer(cupy, args.repeats)
    if args.op in ("lc", "all"):
        bench_lc(cupy, args, timer, peak, torch)
    if args.op in ("adam", "all"):
        bench_adam(cupy, args, timer, peak)


if __name__ == "__main__":
    main()
