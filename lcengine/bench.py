"""`lcengine bench`: the benchmarks, from the command line. Each subcommand runs a module of
`lcengine.benchmarks` (the repository's `benchmarks/` folder, shipped in the package: the same
code as `python benchmarks/<script>.py`), which checks every fast op against its reference before
timing it and prints one JSON line per result.
"""

from __future__ import annotations

import importlib

import click

from .backend import BackendError
from .data import DataError
from .nets import ARCHS
from .rules import RULES


def _benchmark(name):
    """The module `lcengine.benchmarks.<name>`."""
    try:
        return importlib.import_module(f"lcengine.benchmarks.{name}")
    except ModuleNotFoundError as err:
        if err.name not in ("lcengine.benchmarks", f"lcengine.benchmarks.{name}"):
            raise
        raise click.ClickException(f"the benchmark lcengine.benchmarks.{name} is not installed "
                                   "(reinstall lcengine, or run from a checkout)") from None


@click.group()
def bench():
    """Benchmarks: check against the reference, then time; one JSON line per result."""


@bench.command("ops")
@click.option("--net", "nets", multiple=True,
              type=click.Choice(["mnist-lc", "cifar-lc", "imagenet-lc"]),
              help="Repeatable; default: all three.")
@click.option("--batch", type=int, default=None,
              help="Batch size; default 128 (MNIST-LC, CIFAR-LC) and 32 (ImageNet-LC).")
@click.option("--layers", default=None,
              help="Comma-separated 1-based LC layer numbers; default all (ImageNet-LC: 1,3).")
@click.option("--repeats", type=click.IntRange(min=1), default=5, show_default=True,
              help="Timed calls per op after a warm-up call; the best is reported.")
@click.option("--rounds", type=click.IntRange(min=1), default=1, show_default=True,
              help="Timing passes over all layers; each op's best call of all rounds is "
                   "reported (spreads its calls over the host's slow and fast phases).")
@click.option("--check-batch", type=int, default=8, show_default=True,
              help="Batch of the correctness check against the reference (same geometry).")
@click.option("--baselines/--no-baselines", default=True, show_default=True,
              help="Also time NumPy einsum on sliding_window_view and PyTorch unfold+einsum "
                   "(when torch is importable).")
@click.option("--order", type=click.Choice(["training", "batch-first"]), default="training",
              show_default=True,
              help="Operands' memory order: as a training step gives each op (the net's input "
                   "batch-first, the rest batch-last), or all batch-first.")
@click.option("--products", type=click.Choice(["auto", "simd", "blas"]), default="auto",
              show_default=True,
              help="What runs the per-location products: the ops' own choice by shape, or one "
                   "path forced for every op (the A/B behind that choice).")
def ops(nets, batch, layers, repeats, rounds, check_batch, baselines, order, products):
    """The LC ops' fast CPU face on the paper's MNIST-LC, CIFAR-LC and ImageNet-LC layers."""
    bench_lc = _benchmark("bench_lc")
    chosen = tuple(int(v) for v in layers.split(",")) if layers else None
    bench_lc.run(nets or bench_lc.NETS, batch, repeats, check_batch, baselines, chosen, order,
                 products=products, rounds=rounds)


@bench.command("train")
@click.option("--arch", type=click.Choice(ARCHS), default="imagenet-lc", show_default=True)
@click.option("--algo", type=click.Choice(tuple(RULES)), default="fa", show_default=True)
@click.option("--width", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="multiply every hidden layer's units/channels")
@click.option("--batch", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=10, show_default=True,
              help="timed steps after one warm-up step")
@click.option("--device", type=click.Choice(["cpu", "gpu"]), default="gpu", show_default=True)
@click.option("--data", metavar="DIR", help="also time the steps fed by the real loader from "
              "these prepared shards (train split)")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="loader worker processes (with --data)")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="BLAS and Numba threads (CPU)")
@click.option("--budget-only", is_flag=True, help="only FLOPs and the memory budget, from the "
              "layer table: nothing is built (the full-width ImageNet net needs GBs)")
def train(arch, algo, width, batch, steps, device, data, workers, threads, budget_only):
    """The whole training step: images/s (synthetic and --data), TFLOP/s, % of FP32 peak,
    memory (budget per component and measured), and PyTorch's BP where torch is installed."""
    bench_train = _benchmark("bench_train")
    try:
        bench_train.run(arch, algo, width, batch, steps, device, data, workers, threads,
                        budget_only)
    except (BackendError, DataError) as err:
        raise click.ClickException(str(err)) from None
