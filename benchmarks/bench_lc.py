"""Benchmark of the LC ops' fast CPU face on the paper's layer shapes: check, then time.

    python benchmarks/bench_lc.py [--net mnist-lc|cifar-lc|imagenet-lc ...] [--batch N]
    lcengine bench ops ...                       (the same code)

For every LC layer of each net (shapes from `lcengine.nets`, SAME padding) and each direction
(forward, backward_input, backward_weight; the transposed-LC inverse *is* backward_input), it
  1. checks `lcengine.ops.cpu.lc` — the functions the engine runs — against `lc_ref` on the same
     geometry with a batch of min(N, --check-batch), |got − ref| ≤ atol + rtol·|ref|;
  2. times the fast op, NumPy einsum on `sliding_window_view` (what a user would otherwise write),
     and PyTorch unfold + einsum when torch is importable (optional, never a dependency);
  3. prints one JSON line: shape, ms (best of --repeats, and the median), GFLOP/s with
     FLOPs = 2·N·P·Q·O·C·kh·kw, GB/s (operands crossing memory once), % of the float32 matmul
     peak measured just before the layer (`common.MatmulPeak`), and the speed-up over each
     baseline; also the same figures from CPU time ("cpu_": FLOPs per CPU-second of our
     threads × cores, against the matmul's), which a shared, loaded machine disturbs far less
     than wall time; and "products": what ran the per-location products ("direct", "simd" or
     "blas", `cpu.lc.product_kernel`);
and per net one "total" line: all directions of all its LC layers together (Σ FLOPs / Σ time),
as % of the sgemm readings next to each op and of the best reading of the run.

Operands come in the memory order a training step gives each op (`--order training`, the
default): the net's input batch-first, every other activation and every dy batch-last, as the
fast faces return them and NumPy's elementwise ops keep them (`cpu/lc.py`, "Memory order").
`--order batch-first` gives every op batch-first operands, so each op pays for its own
transposes. Baselines always get batch-first arrays.

`--products simd|blas` runs every op's per-location products on that path instead of the one
`cpu.lc.product_kernel` picks (`cpu.lc.forced_products`): two runs give the A/B behind the rule.

`--rounds R` runs the timing pass over all layers R times (operands made afresh each round, the
check and the baselines in the first round only) and gives each op's best call of all rounds,
with the best of each round in "ms_by_round", against the best sgemm reading taken before its
layer in any round; the readings of every round count for the totals' best. A host's
slowdowns can last seconds: in one process, the best of 40 calls of MNIST-LC layer 1's ops
moved between 0.28 and 0.67 ms from one set of 40 to the next, so
back-to-back repeats share one disturbance and rounds spread the calls of each op over the run
(what asv's "rounds" do for the same reason).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass, field
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

from lcengine.ops import lc_ref                      # noqa: E402  (after the path fix above)
from lcengine.ops.cpu import lc as lc_cpu            # noqa: E402

NETS = ("mnist-lc", "cifar-lc", "imagenet-lc")
DEFAULT_BATCH = {"mnist-lc": 128, "cifar-lc": 128, "imagenet-lc": 32}
DEFAULT_LAYERS = {"imagenet-lc": (1, 3)}            # 1-based; others: every LC layer
ORDERS = ("training", "batch-first")


def in_order(L, x, dy, order):
    """(x, dy) in the memory order a training step gives layer L's ops (module docstring)."""
    if order == "batch-first":
        return x, dy
    return (x if L["layer"] == 1 else lc_cpu.batch_last(x)), lc_cpu.batch_last(dy)


def order_fields(x, dy):
    """The memory order of the operands an op line was timed with."""
    name = {True: "batch-last", False: "batch-first"}
    return {"x_order": name[lc_cpu.is_batch_last(x)], "dy_order": name[lc_cpu.is_batch_last(dy)]}


def operands(L, N, rng, dtype):
    x = rng.standard_normal((N, L["C"], L["H"], L["W"]), dtype=np.float32).astype(dtype)
    W = rng.standard_normal((L["P"], L["Q"], L["O"], L["C"], L["kh"], L["kw"]),
                            dtype=np.float32).astype(dtype)
    W *= 1.0 / np.sqrt(L["C"] * L["kh"] * L["kw"])
    dy = rng.standard_normal((N, L["O"], L["P"], L["Q"]), dtype=np.float32).astype(dtype)
    return x, W, dy


def moved_bytes(L, direction, itemsize):
    """Each operand read once and the result written once."""
    x = L["N"] * L["C"] * L["H"] * L["W"]
    y = L["N"] * L["O"] * L["P"] * L["Q"]
    w = L["P"] * L["Q"] * L["O"] * L["C"] * L["kh"] * L["kw"]
    return itemsize * {"forward": x + w + y, "backward_input": y + w + x,
                       "backward_weight": x + y + w}[direction]


def sum_length(L, direction):
    return {"forward": L["C"] * L["kh"] * L["kw"], "backward_input": L["O"] * L["kh"] * L["kw"],
            "backward_weight": L["N"]}[direction]


def check(L, direction, check_batch, order="training", dtype=np.float32):
    """Fast face (operands in `order`) vs reference on this geometry; returns the error record,
    raises on failure."""
    rng = np.random.default_rng(1234 + L["layer"])
    x, W, dy = operands(L, min(L["N"], check_batch), rng, dtype)
    xs, dys = in_order(L, x, dy, order)
    got = common.call_direction(lc_cpu, "lc", direction, L, xs, W, dys)
    ref = common.call_direction(lc_ref, "lc", direction, L, x, W, dy)
    rtol, atol = common.TOLERANCE[dtype]
    atol *= np.sqrt(sum_length(L, direction))
    what = f"lc_cpu.{direction} on {L['net']} layer {L['layer']}"
    return {"check_batch": int(x.shape[0]), **common.compare(got, ref, rtol, atol, what)}


# ----------------------------------------------------------------------------- baselines

def _pad(x, pads):
    top, bottom, left, right = pads
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))


def numpy_einsum(direction, L, x, W, dy):
    """What a NumPy user writes: einsum over a sliding_window_view of the padded input."""
    kh, kw, sh, sw, P, Q = L["kh"], L["kw"], L["sh"], L["sw"], L["P"], L["Q"]
    top, _, left, _ = L["pads"]
    if direction == "backward_input":
        dpatch = np.einsum("nopq,pqocij->ncpqij", dy, W, optimize=True)
        dx = np.zeros((dy.shape[0], L["C"], L["H"] + sum(L["pads"][:2]),
                       L["W"] + sum(L["pads"][2:])), dtype=dy.dtype)
        for i in range(kh):
            for j in range(kw):
                dx[:, :, i:i + sh * P:sh, j:j + sw * Q:sw] += dpatch[..., i, j]
        return dx[:, :, top:top + L["H"], left:left + L["W"]]
    win = np.lib.stride_tricks.sliding_window_view(_pad(x, L["pads"]), (kh, kw), axis=(2, 3))
    win = win[:, :, ::sh, ::sw][:, :, :P, :Q]                          # (N, C, P, Q, kh, kw)
    if direction == "forward":
        return np.einsum("ncpqij,pqocij->nopq", win, W, optimize=True)
    return np.einsum("nopq,ncpqij->pqocij", dy, win, optimize=True)


def torch_unfold(direction, L, x, W, dy):
    """What a PyTorch user writes: F.unfold (im2col) + einsum, F.fold for the input gradient."""
    import torch
    import torch.nn.functional as F
    kh, kw, sh, sw, P, Q, O = L["kh"], L["kw"], L["sh"], L["sw"], L["P"], L["Q"], L["O"]
    top, bottom, left, right = L["pads"]
    N, K = x.shape[0], L["C"] * kh * kw
    w = torch.from_numpy(W).view(P * Q, O, K)
    g = torch.from_numpy(dy).view(N, O, P * Q)
    if direction == "backward_input":
        dcols = torch.einsum("nol,lok->nkl", g, w)
        padded_hw = (L["H"] + top + bottom, L["W"] + left + right)
        dx = F.fold(dcols, padded_hw, (kh, kw), stride=(sh, sw))
        return dx[:, :, top:top + L["H"], left:left + L["W"]]
    cols = F.unfold(F.pad(torch.from_numpy(x), (left, right, top, bottom)), (kh, kw),
                    stride=(sh, sw))                                   # (N, K, P·Q)
    if direction == "forward":
        return torch.einsum("nkl,lok->nol", cols, w).reshape(N, O, P, Q)
    return torch.einsum("nol,nkl->lok", g, cols).reshape(W.shape)


def _torch_available():
    try:
        importlib.import_module("torch")
    except ImportError:
        return False
    return True


def _time_baseline(fn, repeats):
    """A slow baseline is timed once (its first call); a fast one like the op."""
    first = common.timings(fn, repeats=1, warmup=0)
    return first if first[0] > 1.0 else first + common.timings(fn, repeats=repeats - 1, warmup=0)


# ----------------------------------------------------------------------------- driver

@dataclass
class _Timed:
    """One op's timed calls over the rounds so far, and the fields fixed for the run. Its best
    call is compared with the best sgemm reading taken before its layer in any round: both the
    least disturbed of their kind (pairing it with the reading of its own round paired a lucky
    call with a disturbed reading: MNIST-LC layer 2's weight gradient came out at 103.5 %)."""
    L: dict
    direction: str
    fixed: dict                       # order, products, the check's errors, baselines' seconds
    sec: list = field(default_factory=list)          # wall seconds of every call, all rounds
    cpu: list = field(default_factory=list)
    adjacent: float = 0.0            # the best sgemm reading before the layer, of all rounds
    by_round: list = field(default_factory=list)     # best ms of each round

    def add(self, sec, cpu, adjacent):
        self.adjacent = max(self.adjacent, adjacent)
        self.sec += sec
        self.cpu += cpu
        self.by_round.append(round(1e3 * min(sec), 3))

    def line(self, cpu_peak, cores):
        """The op's JSON line: its best call of all rounds."""
        L, direction, sec = self.L, self.direction, self.sec
        rec = common.op_record(L, direction, np.float32, sec, self.cpu, self.adjacent)
        rec.update({k: v for k, v in self.fixed.items() if not k.endswith("_base_s")})
        rec["ms_by_round"] = self.by_round
        flop = common.window_flops(L)
        rec["gbs"] = round(moved_bytes(L, direction, 4) / min(sec) / 1e9, 2)
        cpu_rate = flop / min(self.cpu) / 1e9 * cores             # cores to itself
        rec["cpu_gflops_x_cores"] = round(cpu_rate, 2)
        rec["cpu_pct_of_sgemm"] = round(100 * cpu_rate / (cpu_peak * cores), 1)
        for name in ("numpy_einsum", "torch_unfold"):
            base = self.fixed.get(f"{name}_base_s")
            if base is not None:
                rec[f"{name}_ms"] = round(1e3 * base, 3)
                if name == "torch_unfold":
                    rec["torch_unfold_gflops"] = round(flop / base / 1e9, 2)
                rec[f"speedup_vs_{name}"] = round(base / min(sec), 2)
        return rec


def run(nets=NETS, batch=None, repeats=5, check_batch=8, baselines=True, layers=None,
        order="training", stream=None, products="auto", rounds=1):
    """Benchmark `nets`; prints JSON lines and returns them as dicts. `products`: "auto" (the
    ops' own choice) or one of `lc_cpu.PRODUCTS`, forced for every op. `rounds`: how many times
    the timing pass over all layers runs (module docstring); with more than one, the op lines
    come after the last round, each with its best call of all rounds."""
    if products != "auto":
        with lc_cpu.forced_products(products):
            return run(nets, batch, repeats, check_batch, baselines, layers, order, stream,
                       rounds=rounds)
    records = []

    def out(rec):
        records.append(rec)
        common.emit(rec, stream)

    peak, peak_cpu = common.MatmulPeak(), []
    first = peak.measure(cpu=peak_cpu)                # peak_cpu: the CPU-time reference
    host = common.machine()
    cores = host["cores"]
    timing = f"best of {repeats} after a warm-up call" + (
        f", in each of {rounds} rounds" if rounds > 1 else "")
    out({"kind": "machine", **host, "sgemm_gflops": round(first, 1),
         "sgemm_gflops_per_cpu_s_x_cores": round(peak_cpu[0] * cores, 1),
         "sgemm_shape": "2048x2048x2048", "copy_gbs": round(common.copy_bandwidth_gbs(), 1),
         "timing": timing})
    have_torch = baselines and _torch_available()
    timed = {}                                        # (net, layer, direction) -> _Timed
    for round_ in range(rounds):
        for net in nets:
            n = batch or DEFAULT_BATCH[net]
            for L in common.windowed_layers(net, n, "lc", layers or DEFAULT_LAYERS.get(net)):
                rng = np.random.default_rng(L["layer"])
                x, W, dy = operands(L, n, rng, np.float32)
                xs, dys = in_order(L, x, dy, order)
                adjacent = peak.measure()
                for direction in common.DIRECTIONS:
                    key = (net, L["layer"], direction)
                    if round_ == 0:
                        timed[key] = _Timed(L, direction, {
                            **order_fields(xs, dys), "products": lc_cpu.product_kernel(
                                direction, L["C"] * L["kh"] * L["kw"], n, xs.itemsize),
                            **check(L, direction, check_batch, order)})
                    _, sec, cpu = common.time_op(lc_cpu, "lc", direction, L, xs, W, dys,
                                                 repeats, adjacent)
                    timed[key].add(sec, cpu, adjacent)
                    if round_ == 0 and baselines:
                        timed[key].fixed["numpy_einsum_base_s"] = min(_time_baseline(
                            partial(numpy_einsum, direction, L, x, W, dy), repeats))
                        if have_torch:
                            timed[key].fixed["torch_unfold_base_s"] = min(_time_baseline(
                                partial(torch_unfold, direction, L, x, W, dy), repeats))
                    if rounds == 1:
                        out(timed[key].line(peak_cpu[0], cores))
                del x, W, dy, xs, dys
    results = [t.line(peak_cpu[0], cores) for t in timed.values()]
    if rounds > 1:                                    # the lines of one round are out already
        for rec in results:
            out(rec)
    peak.measure()
    for net in nets:
        mine = [r for r in results if r["net"] == net]
        if mine:
            total_gflop = sum(r["gflop"] for r in mine)
            total_cpu_s = sum(r["cpu_ms"] for r in mine) / 1e3
            out({"kind": "total", "net": net, "batch": batch or DEFAULT_BATCH[net],
                 **common.totals(mine, peak),
                 "cpu_pct_of_sgemm": round(100 * total_gflop / total_cpu_s / peak_cpu[0], 1),
                 "cpu_worst_pct_of_sgemm": min(r["cpu_pct_of_sgemm"] for r in mine)})
    out(peak.record())
    return records


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--net", action="append", choices=NETS, help="repeatable; default: all")
    ap.add_argument("--batch", type=int, help="default: 128 (MNIST, CIFAR), 32 (ImageNet)")
    ap.add_argument("--layers", help="comma-separated 1-based LC layer numbers (default: all; "
                                     "ImageNet 1,3)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=1,
                    help="timing passes over all layers, each op's best call kept (module "
                         "docstring; default: 1)")
    ap.add_argument("--check-batch", type=int, default=8)
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--order", choices=ORDERS, default="training",
                    help="operands' memory order (module docstring; default: training)")
    ap.add_argument("--products", choices=("auto",) + lc_cpu.PRODUCTS, default="auto",
                    help="what runs the per-location products (module docstring; default: auto)")
    a = ap.parse_args(argv)
    if a.rounds < 1 or a.repeats < 1:
        ap.error("--rounds and --repeats must be at least 1")
    layers = tuple(int(v) for v in a.layers.split(",")) if a.layers else None
    run(tuple(a.net or NETS), a.batch, a.repeats, a.check_batch, not a.no_baselines, layers,
        a.order, products=a.products, rounds=a.rounds)


if __name__ == "__main__":
    main()
