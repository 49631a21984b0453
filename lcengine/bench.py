"""`lcengine bench`: the benchmarks, from the command line. Each subcommand runs a script of the
repository's `benchmarks/` folder (the same code as `python benchmarks/<script>.py`), which
checks every fast op against its reference before timing it and prints one JSON line per result.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

_REPO = Path(__file__).resolve().parents[1]


def _benchmark(name):
    """The module `benchmarks.<name>` of this checkout."""
    if not (_REPO / "benchmarks" / f"{name}.py").is_file():
        raise click.ClickException(f"benchmarks/{name}.py not found in {_REPO}: the benchmarks "
                                   "run from a clone of the repository (pip install -e .)")
    if str(_REPO) not in sys.path:
        sys.path.insert(0, str(_REPO))
    return importlib.import_module(f"benchmarks.{name}")


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
@click.option("--repeats", type=int, default=5, show_default=True,
              help="Timed calls per op after a warm-up call; the best is reported.")
@click.option("--check-batch", type=int, default=8, show_default=True,
              help="Batch of the correctness check against the reference (same geometry).")
@click.option("--baselines/--no-baselines", default=True, show_default=True,
              help="Also time NumPy einsum on sliding_window_view and PyTorch unfold+einsum "
                   "(when torch is importable).")
def ops(nets, batch, layers, repeats, check_batch, baselines):
    """The LC ops' fast CPU face on the paper's MNIST-LC, CIFAR-LC and ImageNet-LC layers."""
    bench_lc = _benchmark("bench_lc")
    chosen = tuple(int(v) for v in layers.split(",")) if layers else None
    bench_lc.run(nets or bench_lc.NETS, batch, repeats, check_batch, baselines, chosen)
