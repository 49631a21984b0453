"""`lcengine bench train`'s napkin math: the memory budget read off the layer table equals the
bytes of the arrays a real run allocates (every rule, LC and conv), and the full-width ImageNet
budget comes without building the net."""

import json
import math
import tracemalloc

import pytest
from click.testing import CliRunner

from lcengine.backend import get_backend
from lcengine.bench import _benchmark
from lcengine.cli import main
from lcengine.nets import describe_arch
from lcengine.rules import RULES

bench_train = _benchmark("bench_train")


def nbytes(arrays) -> int:
    return sum(a.nbytes for key, a in arrays.items() if not key.startswith("seed."))


@pytest.mark.parametrize("arch", ["imagenet-lc", "imagenet-conv"])
@pytest.mark.parametrize("algo", list(RULES))
def test_budget_equals_what_a_run_allocates(arch, algo):
    width, batch = 0.03, 2
    trainer = bench_train.Trainer(arch, algo, width, get_backend("cpu"))
    budget = bench_train.memory_budget(describe_arch(arch, width), algo, batch)
    rule = trainer.rule
    assert budget["weights"] == nbytes(rule.forward_params())
    assert budget["adam_moments"] == nbytes(trainer.optimisers["forward"].m) * 2
    assert budget["feedback"] == nbytes(rule.state())
    assert budget["inverses"] == nbytes(rule.inverse_params())
    x, _ = bench_train.synthetic_batch(trainer, batch)
    trace = trainer.net.forward(x)
    assert budget["activations"] == sum(a.nbytes for a in trace.h + trace.a)


def test_bp_flops_by_hand():
    rows = describe_arch("mnist-fc")
    U = [784 * 256] + [256 * 256] * 4 + [256 * 10]
    assert bench_train.step_flops(rows, "bp", 8) == 2 * 8 * (3 * sum(U) - U[0])


def test_full_width_budget_without_building_the_net():
    tracemalloc.start()
    result = CliRunner().invoke(main, ["bench", "train", "--arch", "imagenet-lc", "--algo", "sdtp",
                                       "--batch", "256", "--budget-only"])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["weights"] == sum(r.n_weights for r in describe_arch("imagenet-lc")) > 2.5e8
    assert record["memory_budget_bytes"]["total"] < 80e9 and peak < 50e6
    assert math.isclose(record["memory_budget_bytes"]["adam_moments"],
                        2 * record["memory_budget_bytes"]["weights"])
