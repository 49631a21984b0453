"""Run by tests/test_distributed.py as `mpiexec -n K python tests/mpi_rules.py OUT.npz [gpu]`: every
rule, float64, a few steps on a fixed global minibatch stream, through the trainer's own step
(`Run.step`'s two paths: `train_step` on one process, `data_parallel_step` on K). Rank 0 saves
every parameter; every process checks that all hold the same bits."""

from __future__ import annotations

import sys

import numpy as np

from lcengine import distributed
from lcengine.backend import get_backend
from lcengine.nets import build_network
from lcengine.optim import Adam
from lcengine.rules import make_rule
from lcengine.train import data_parallel_step, train_step

#: (rule, phases of its steps): BP-like rules take "forward"; parallel TP "both"; alternating
#: TP an "inverse" pass then a "forward" pass
CASES = [(algo, "forward") for algo in ("bp", "fa", "dfa", "usf", "brsf", "frsf", "kp")] + [
    (algo, phases) for algo in ("tp", "dtp", "sdtp", "ao-sdtp")
    for phases in ("both", "inverse,forward")]
HP = {"tp": {"sigma": 0.1, "alpha": 0.2}, "dtp": {"sigma": 0.1, "alpha": 0.2},
      "sdtp": {"sigma": 0.1}, "ao-sdtp": {"sigma": 0.1, "aux": 16}, "kp": {"weight_decay": 0.01}}
STEPS, BATCH = 3, 12          # a global minibatch of 12: 6 rows on each of 2 processes


def run_case(group, backend, net_name, algo, phases):
    rng = backend.rng(7)
    net = build_network(net_name, backend, rng, dtype="float64", width=0.05,
                        input_shape=(1, 12, 12), n_classes=5)
    part_rng = distributed.PartRng(rng, backend.xp)
    rule = make_rule(algo, net, HP.get(algo, {}), part_rng)
    # ε well above rounding noise: Adam divides a gradient by its own size, so a gradient that
    # cancels to ~1e-12 would otherwise make a full step out of its last bits
    optimisers = {"forward": Adam(rule.forward_params(), 1e-2, eps=1e-6, backend=backend),
                  "inverse": Adam(rule.inverse_params(), 1e-2, eps=1e-6, backend=backend)}
    reducer = group.reducer(backend)
    data = np.random.default_rng(3)
    for phase in phases.split(","):
        for _ in range(STEPS):
            x = data.standard_normal((BATCH, 1, 12, 12))
            labels = data.integers(0, 5, BATCH)
            lo, hi = group.rows(BATCH)
            part_rng.rows = (lo, hi, BATCH)
            if reducer is None:
                train_step(rule, optimisers, x, labels, phase)
            else:
                data_parallel_step(rule, optimisers, reducer, x[lo:hi], labels[lo:hi], phase,
                                   (hi - lo) / BATCH, lambda: False)
    params = {**rule.forward_params(), **rule.inverse_params()}
    group.check_identical(params, backend.to_numpy)
    return {f"{net_name}/{algo}/{phases}/{k}": backend.to_numpy(v) for k, v in params.items()}


def main(out, device="cpu"):
    group = distributed.world()
    if device == "gpu":
        group.use_local_gpu()
    backend = get_backend(device, "fast")
    saved = {}
    for net_name in ("mnist-fc", "mnist-lc"):
        for algo, phases in CASES:
            saved.update(run_case(group, backend, net_name, algo, phases))
    if group.root:
        np.savez(out, **saved)


if __name__ == "__main__":
    main(*sys.argv[1:])
