"""The whole training step of a rule on a net: images/s, TFLOP/s, % of peak, memory.

    lcengine bench train --arch imagenet-lc --algo fa [--width W] [--batch B] [--steps S]
                         [--device cpu|gpu] [--data DIR] [--workers N] [--threads T]

One JSON line per configuration. The step timed is `lcengine.train.train_step` (the rule's
gradients, then the optimiser updates), on the backend `--device` picks:

  * synthetic: a fixed random batch already on the device; the device-only time of each step
    (the GPU is synchronised after every step); best and median of `--steps` steps after one
    untimed warm-up step (kernel compilation, first allocations);
  * `--data DIR`: the same steps fed by the real Loader (train split, augmentation, `--workers`
    processes, on a GPU the pinned side-stream copies), timed from the first batch asked for to
    the last step done; the loader alone is timed too, to show which side is the bottleneck.

FLOPs, from a stated formula (`step_flops`): layer l does U_l multiply-adds per example and pass
(LC and dense: its weight count; conv: weight count × output positions), 2·N·U_l FLOPs per pass.
BP, FA, the sign-symmetry rules and KP run a forward, a weight-gradient and (for l ≥ 2) an
input-gradient pass per layer (their sign and decay terms are elementwise, not counted); DFA
replaces the input-gradient passes by e·B_lᵀ, 2·N·K·M_l for each hidden layer of M_l units; the TP
family (phase "both", one inverse and one forward update per batch) adds per learned inverse g_l
three U_l passes (f_l on the noisy h̃, g_l, g_l's weight gradient) and per target two g_{l+1}
passes (TP: one; the penultimate target of DTP and TP is one W_L pass). Elementwise work (tanh,
softmax, Adam, biases) and AO-SDTP's auxiliary features are not counted. % of peak compares with
FP32: on the CPU the best sgemm of this run at the same thread count (benchmarks/common.py); on
a GPU the table of bench_cuda.py (our kernels are SIMT FP32, never TF32).

Memory budget (`memory_budget`, float32, from `nets.describe_arch`, so the full-width ImageNet
net is counted without being built): weights and biases; Adam's m and v; the step's gradients
(all held until the optimiser runs; KP's learned B counts as weights); fixed feedback (FA's B,
frSF's magnitudes; DFA keeps only seeds; uSF and brSF build B_l from W_l per step); the TP
family's inverses, their Adam moments and gradients; activations for batch B (x, every a_l and
h_l of the forward trace). Measured beside it: the process's peak RSS and the peak of NumPy
allocations during one step (tracemalloc; the Numba kernels' scratch is not seen) on the CPU,
the CuPy memory pool's bytes on a GPU.

Under `mpiexec -n K` (`lcengine.distributed`), `--batch` is each process's minibatch (weak
scaling, K·B images a step) and a "data_parallel" part is added, from every process, printed by
rank 0: the step with its gradient sums (`train.data_parallel_step`), images/s per process and in
total; the bytes summed per step and the time of one bare sum of that many bytes; and the scaling
efficiency, total images/s over K times one process's alone (the same step without the sums,
timed alternately in the same run).

PyTorch's equivalent (only where torch is importable; otherwise a line says it was skipped): the
same net with LC layers as `unfold` + `bmm` per location, conv as `conv2d`, autograd BP and
torch.optim.Adam — the BP baseline a user would write; TF32 is switched off for it, so both sides
are FP32.
"""

from __future__ import annotations

import math
import resource
import time
import tracemalloc

import numpy as np

from lcengine import distributed
from lcengine.backend import get_backend
from lcengine.config import AUX_UNITS, SIGN_SYMMETRY, TP_FAMILY
from lcengine.data import DataError, Loader, open_shards
from lcengine.layers import Dense, LocallyConnected2D
from lcengine.nets import build_network, describe_arch
from lcengine.optim import Adam
from lcengine.rules import make_rule
from lcengine.train import cpu_threads, data_parallel_step, train_step

from .bench_cuda import PEAKS
from .common import emit, machine, matmul_peak_gflops, summary, timings

ITEMSIZE = 4                                    # float32
LR = 1e-4                                       # any rate: it changes no timing


# --- napkin math ------------------------------------------------------------------------------
def _kind(row) -> str:
    return row.name.split()[0]                  # "lc", "conv" or "fc"


def _size(shape) -> int:
    return math.prod(shape)


def macs_per_example(row) -> int:
    """U_l: multiply-adds per example of one pass of the layer."""
    positions = _size(row.out_shape[1:]) if _kind(row) == "conv" else 1
    return row.n_weights * positions


def step_flops(rows, algo: str, batch: int) -> int:
    """FLOPs of one training step (the formula in the module docstring)."""
    U = [macs_per_example(r) for r in rows]
    L, K = len(rows), _size(rows[-1].out_shape)
    passes = 2 * sum(U)                                                 # forward, weight gradient
    if algo in ("bp", "fa", *SIGN_SYMMETRY, "kp"):
        passes += sum(U[1:])                                            # input gradients, l ≥ 2
    elif algo == "dfa":
        passes += sum(K * _size(r.out_shape) for r in rows[:-1])        # e B_lᵀ
    elif algo in TP_FAMILY:
        top_inverse = algo in ("sdtp", "ao-sdtp")
        inverses = range(1, L if top_inverse else L - 1)                # g_l, 0-based layer index
        passes += 3 * sum(U[i] for i in inverses)
        passes += 2 * U[-1] if top_inverse else U[-1]                   # penultimate target
        per_target = 1 if algo == "tp" else 2
        passes += per_target * sum(U[i] for i in range(1, L - 1))       # ĥ_l from g_{l+1}
    return 2 * batch * passes


def _bias_size(row, inverse=False) -> int:
    shape = row.in_shape if inverse else row.out_shape
    return shape[0] if _kind(row) == "conv" else _size(shape)


def memory_budget(rows, algo: str, batch: int, aux: int = AUX_UNITS) -> dict:
    """Bytes per component (see the module docstring), and their total."""
    weights = sum(r.n_weights + _bias_size(r) for r in rows)
    feedback = inverses = 0
    if algo in ("fa", "frsf"):                                          # B_l, |M_l|: l ≥ 2
        feedback = sum(r.n_weights for r in rows[1:])
    if algo == "kp":                                                    # B_l, learned like W
        weights += sum(r.n_weights for r in rows[1:])
    if algo in TP_FAMILY:
        top = algo in ("sdtp", "ao-sdtp")
        inverses = sum(r.n_weights + _bias_size(r, inverse=True)
                       for r in rows[1:len(rows) if top else len(rows) - 1])
    if algo == "ao-sdtp":
        below = _size(rows[-1].in_shape)
        feedback += aux * below + aux                                   # W_z, b_z
        inverses += below * aux                                         # V_z
    trace = _size(rows[0].in_shape) + 2 * sum(_size(r.out_shape) for r in rows)
    budget = {"weights": weights, "adam_moments": 2 * weights, "gradients": weights,
              "feedback": feedback, "inverses": inverses, "inverse_adam_moments": 2 * inverses,
              "inverse_gradients": inverses, "activations": batch * trace}
    budget = {k: v * ITEMSIZE for k, v in budget.items()}
    budget["total"] = sum(budget.values())
    return budget


# --- our step -----------------------------------------------------------------------------------
class Trainer:
    """The pieces of a run that one step touches, built as `train.Run` builds them."""

    def __init__(self, arch, algo, width, backend, seed=0):
        self.backend = backend
        self.rng = backend.rng(seed)
        self.net = build_network(arch, backend, self.rng, width=width)
        self.rule = make_rule(algo, self.net, {}, self.rng)
        self.optimisers = {"forward": Adam(self.rule.forward_params(), LR, backend=backend)}
        if algo in TP_FAMILY:
            self.optimisers["inverse"] = Adam(self.rule.inverse_params(), LR, backend=backend)
        self.phase = "both" if algo in TP_FAMILY else "forward"

    def step(self, x, labels):
        return train_step(self.rule, self.optimisers, x, labels, self.phase)


def synthetic_batch(trainer, batch, seed=0):
    shape = trainer.net.layers[0].in_shape
    n_classes = _size(trainer.net.layers[-1].out_shape)
    labels = np.random.default_rng(seed).integers(0, n_classes, batch)
    return trainer.rng.normal((batch, *shape)), trainer.backend.asarray(labels)


def device_memory(backend) -> dict:
    if backend.xp is np:
        return {"peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    return {"pool_bytes": backend.xp.get_default_memory_pool().total_bytes()}


def step_peak_bytes(trainer, x, labels):
    """Peak of the NumPy allocations made during one step (CPU only)."""
    tracemalloc.start()
    try:
        trainer.step(x, labels)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def time_synthetic(trainer, batch, steps):
    x, labels = synthetic_batch(trainer, batch)

    def one_step():
        trainer.step(x, labels)
        trainer.backend.synchronize()

    cpu = []
    seconds = timings(one_step, repeats=steps, warmup=1, cpu=cpu)
    out = summary(seconds, cpu)
    out["images_per_s"] = round(batch / (out["ms_median"] / 1e3), 2)
    if trainer.backend.xp is np:
        out["step_peak_alloc_bytes"] = step_peak_bytes(trainer, x, labels)
    return out, min(seconds)


def time_data_parallel(trainer, group, batch, steps) -> dict:
    """Each of K processes steps on its own `batch` images, gradients summed (weak scaling),
    alternated with the same step alone; and one bare sum of the gradients' bytes."""
    x, labels = synthetic_batch(trainer, batch)
    reducer = group.reducer(trainer.backend)
    part_rng = distributed.PartRng(trainer.rng, trainer.backend.xp)
    trainer.rule.rng = part_rng
    part_rng.rows = (group.rank * batch, (group.rank + 1) * batch, group.size * batch)

    def summed():
        data_parallel_step(trainer.rule, trainer.optimisers, reducer, x, labels, trainer.phase,
                           1 / group.size, lambda: False)
        trainer.backend.synchronize()

    def alone():
        trainer.step(x, labels)
        trainer.backend.synchronize()

    together, single = [], []
    for _ in range(steps):
        group.barrier()
        together += timings(summed, repeats=1, warmup=0)
        single += timings(alone, repeats=1, warmup=0)
    nbytes = sum(g.size for g in reducer.buffers) * ITEMSIZE
    buffer = trainer.backend.xp.zeros(nbytes // ITEMSIZE, dtype=np.float32)
    sum_seconds = timings(lambda: reducer.collective.wait([reducer.collective.start(buffer)]),
                          repeats=steps, warmup=1)
    ms = float(group.sum([1e3 * np.median(together)])[0]) / group.size
    alone_ms = float(group.sum([1e3 * np.median(single)])[0]) / group.size
    return {"processes": group.size, "batch_per_process": batch,
            "ms_median": round(ms, 4), "images_per_s_per_process": round(batch / ms * 1e3, 2),
            "images_per_s": round(group.size * batch / ms * 1e3, 2),
            "one_process_ms_median": round(alone_ms, 4),
            "scaling_efficiency": round(alone_ms / ms, 4),
            "sum_bytes_per_step": int(nbytes),
            "sum_ms": round(1e3 * float(np.median(sum_seconds)), 4)}


def time_with_loader(trainer, data, batch, steps, workers):
    shards = open_shards(data, "train")
    loader = Loader(shards, batch, seed=0, train=True, backend=trainer.backend, workers=workers)
    steps = min(steps, len(loader) - 1)
    if steps < 1:
        raise DataError(f"{data}: its train split holds fewer than two batches of {batch} (one "
                        "untimed, one timed)")

    def timed(consume):
        batches = loader.epoch(0)
        try:
            consume(*next(batches))                                     # warm-up, untimed
            start = time.perf_counter()
            for _, (x, labels) in zip(range(steps), batches):
                consume(x, labels)
            trainer.backend.synchronize()
            return time.perf_counter() - start
        finally:
            batches.close()

    loader_only = timed(lambda x, labels: None)
    training = timed(trainer.step)
    return {"data": str(data), "workers": workers, "loader_steps": steps,
            "loader_only_images_per_s": round(steps * batch / loader_only, 2),
            "loader_images_per_s": round(steps * batch / training, 2)}


# --- peaks and the PyTorch baseline ---------------------------------------------------------------
def fp32_peak_tflops(backend) -> tuple[float | None, str]:
    if backend.xp is np:
        return matmul_peak_gflops(n=1024, repeats=3) / 1e3, "measured sgemm, this run"
    cupy = backend.xp
    name = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"].decode()
    peak = next((v["fp32"] for key, v in PEAKS.items() if key in name), None)
    return peak, f"{name}, table in benchmarks/bench_cuda.py"


def torch_baseline(net, device, batch, steps, threads):
    """Images/s of autograd BP on the same net in PyTorch (LC: unfold + bmm), or why not run."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return {"skipped": "torch is not installed"}
    where = "cuda" if device == "gpu" else "cpu"
    if where == "cuda" and not torch.cuda.is_available():
        return {"skipped": "torch has no CUDA device"}
    torch.set_num_threads(threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    def param(*shape):
        return torch.nn.Parameter(0.01 * torch.randn(*shape, device=where))

    layers = []
    for layer in net.layers:
        if isinstance(layer, Dense):
            layers.append(("fc", param(layer.fan_out, layer.fan_in), param(layer.fan_out), None))
        else:
            g = layer.geometry
            O, P, Q = g.out_shape
            C, (kh, kw) = g.in_shape[0], g.kernel
            if isinstance(layer, LocallyConnected2D):            # one (C·kh·kw, O) map per (p, q)
                layers.append(("lc", param(P * Q, C * kh * kw, O), param(O, P, Q), g))
            else:
                layers.append(("conv", param(O, C, kh, kw), param(O), g))

    def forward(x):
        for i, (kind, W, b, g) in enumerate(layers):
            if kind == "fc":
                x = x.flatten(1) @ W.T + b
            else:
                top, bottom, left, right = g.pads
                x = F.pad(x, (left, right, top, bottom))
                if kind == "conv":
                    x = F.conv2d(x, W, b, stride=g.stride)
                else:
                    O, P, Q = g.out_shape
                    patches = F.unfold(x, g.kernel, stride=g.stride).permute(2, 0, 1)
                    x = torch.bmm(patches, W).permute(1, 2, 0).reshape(-1, O, P, Q) + b
            x = torch.tanh(x) if i < len(layers) - 1 else x
        return x

    optimiser = torch.optim.Adam([p for _, W, b, _ in layers for p in (W, b)], lr=LR)
    x = torch.randn(batch, *net.layers[0].in_shape, device=where)
    labels = torch.randint(0, net.layers[-1].fan_out, (batch,), device=where)

    def one_step():
        optimiser.zero_grad(set_to_none=True)
        F.cross_entropy(forward(x), labels).backward()
        optimiser.step()
        if where == "cuda":
            torch.cuda.synchronize()

    out = summary(timings(one_step, repeats=steps, warmup=1))
    return {"torch": torch.__version__, "algo": "bp (autograd)", "tf32": False, "threads": threads,
            "images_per_s": round(batch / (out["ms_median"] / 1e3), 2), **out}


# --- one configuration ------------------------------------------------------------------------
def run(arch, algo, width, batch, steps, device, data=None, workers=0, threads=1,
        budget_only=False):
    """Measure one configuration and print its JSON line; `budget_only`: only the napkin math
    (FLOPs and the memory budget), nothing built or timed."""
    rows = describe_arch(arch, width)
    flops = step_flops(rows, algo, batch)
    record = {"bench": "train", "arch": arch, "algo": algo, "width": width, "batch": batch,
              "steps": steps, "device": device, "threads": threads,
              "weights": sum(r.n_weights for r in rows), "gflop_per_step": round(flops / 1e9, 3),
              "memory_budget_bytes": memory_budget(rows, algo, batch)}
    if budget_only:
        emit(record)
        return record
    group = distributed.world()
    backend = get_backend(device)
    with cpu_threads(threads):
        peak, peak_source = fp32_peak_tflops(backend)
        trainer = Trainer(arch, algo, width, backend)
        synthetic, best = time_synthetic(trainer, batch, steps)
        tflops = flops / best / 1e12
        record["synthetic"] = {**synthetic, "gflops": round(1e3 * tflops, 2),
                               "tflops": round(tflops, 4),
                               "pct_fp32_peak": round(100 * tflops / peak, 2) if peak else None}
        if data is not None:
            record["loader"] = time_with_loader(trainer, data, batch, steps, workers)
        record["memory"] = device_memory(backend)
        record["fp32_peak_tflops"] = round(peak, 4) if peak else None
        record["peak_source"] = peak_source
        record["tf32"] = False
        if group.size > 1:
            record["data_parallel"] = time_data_parallel(trainer, group, batch, steps)
        else:
            record["torch"] = torch_baseline(trainer.net, device, batch, steps, threads)
    record["machine"] = machine()
    if group.root:
        emit(record)
    return record

