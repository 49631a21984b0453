"""The benchmarks' layer-shape walk agrees with the networks the engine builds."""

import numpy as np
import pytest

from benchmarks import common
from lcengine.nets import describe_arch


NETS = [("mnist-lc", "lc"), ("cifar-lc", "lc"), ("imagenet-lc", "lc"), ("cifar-conv", "conv"),
        ("imagenet-conv", "conv")]


@pytest.mark.parametrize("net, kind", NETS)
def test_windowed_layers_match_the_built_networks(net, kind):
    rows = describe_arch(net)
    layers = common.windowed_layers(net, 7, kind)
    assert len(layers) == sum(1 for row in rows if row.name.startswith(kind))
    for L, row in zip(layers, rows):
        assert (L["C"], L["H"], L["W"]) == tuple(row.in_shape)
        assert (L["O"], L["P"], L["Q"]) == tuple(row.out_shape)
        per_example = L["P"] * L["Q"] * L["O"] * L["C"] * L["kh"] * L["kw"]
        assert common.window_flops(L) == 2 * 7 * per_example
        if kind == "lc":
            assert per_example == row.n_weights        # every LC weight used once per image


def test_layer_selection_is_one_based():
    assert [L["layer"] for L in common.windowed_layers("imagenet-lc", 32, "lc", (1, 3))] == [1, 3]


def test_compare_rejects_a_wrong_result_and_names_it():
    ref = np.linspace(-1.0, 1.0, 12).reshape(3, 4)
    assert common.compare(ref + 1e-9, ref, rtol=1e-6, atol=1e-8, what="op")["max_abs_err"] < 1e-8
    wrong = ref.copy()
    wrong[2, 1] += 1e-3
    with pytest.raises(AssertionError, match=r"op differs from the reference at \(2, 1\)"):
        common.compare(wrong, ref, rtol=1e-6, atol=1e-8, what="op")


def test_totals_weigh_each_op_by_the_sgemm_reading_next_to_it():
    ops = [{"layer": 1, "direction": "forward", "gflop": 1.0, "ms": 10.0, "gflops": 100.0,
            "sgemm_gflops_adjacent": 100.0, "pct_of_sgemm_peak": 100.0},
           {"layer": 2, "direction": "forward", "gflop": 1.0, "ms": 20.0, "gflops": 50.0,
            "sgemm_gflops_adjacent": 200.0, "pct_of_sgemm_peak": 25.0}]
    peak = common.MatmulPeak()
    peak.readings = [100.0, 200.0]
    total = common.totals(ops, peak)
    # 2 GFLOP in 30 ms, where sgemm would have done 1 + 4 GFLOP
    assert total["pct_of_sgemm_peak"] == 40.0
    assert total["pct_of_best_sgemm"] == round(100 * (2 / 0.030) / 200, 1)
    assert total["worst"] == "layer 2 forward" and total["worst_pct_of_best_sgemm"] == 25.0
    assert peak.record()["sgemm_gflops_best"] == 200.0


def test_bench_lc_prints_every_op_and_a_total_against_the_readings(capsys):
    from benchmarks import bench_lc
    records = bench_lc.run(("mnist-lc",), batch=2, repeats=1, check_batch=2, baselines=False)
    ops = [r for r in records if r["kind"] == "op"]
    assert len(ops) == 6 and all(r["max_abs_err"] < 1e-4 for r in ops)
    peak = records[-1]
    assert peak["kind"] == "peak"
    assert len(peak["sgemm_gflops_readings"]) == 4                    # start, 2 layers, end
    assert {r["sgemm_gflops_adjacent"] for r in ops} <= set(peak["sgemm_gflops_readings"])
    total = next(r for r in records if r["kind"] == "total")
    assert total["pct_of_best_sgemm"] <= total["pct_of_sgemm_peak"] + 0.1
    assert len(capsys.readouterr().out.splitlines()) == len(records)
    orders = {(r["layer"], r["x_order"], r["dy_order"]) for r in ops}   # as training feeds them
    assert orders == {(1, "batch-first", "batch-last"), (2, "batch-last", "batch-last")}
    assert [r["products"] for r in ops] == ["direct", "simd", "blas", "simd", "simd", "blas"]


def test_bench_lc_rounds_keep_each_ops_best_call_of_all_rounds(capsys):
    from benchmarks import bench_lc
    records = bench_lc.run(("mnist-lc",), batch=2, repeats=2, check_batch=2, baselines=False,
                           layers=(1,), rounds=3)
    ops = [r for r in records if r["kind"] == "op"]
    assert [r["direction"] for r in ops] == ["forward", "backward_input", "backward_weight"]
    for r in ops:                                       # one line per op, after the last round
        assert len(r["ms_by_round"]) == 3
        assert r["ms"] == pytest.approx(min(r["ms_by_round"]), abs=1e-3)
        assert r["ms_median"] >= r["ms"]
    readings = records[-1]["sgemm_gflops_readings"]
    assert len(readings) == 5                           # start, the layer in 3 rounds, end
    assert {r["sgemm_gflops_adjacent"] for r in ops} == {max(readings[1:4])}   # best vs best
    assert len(capsys.readouterr().out.splitlines()) == len(records)


def test_bench_lc_forces_one_product_path_and_then_lets_go():
    from benchmarks import bench_lc
    from lcengine.ops.cpu import lc as lc_cpu
    records = bench_lc.run(("mnist-lc",), batch=2, repeats=1, check_batch=2, baselines=False,
                           layers=(1,), products="blas")
    ops = [r for r in records if r["kind"] == "op"]
    assert [r["products"] for r in ops] == ["blas"] * 3
    assert all(r["max_abs_err"] < 1e-4 for r in ops)                  # checked on that path
    assert lc_cpu.product_kernel("backward_input", 9, 2, 4) == "simd"


def test_bench_lc_operands_in_training_order_hold_the_same_values():
    from benchmarks import bench_lc
    from lcengine.ops.cpu import lc as lc_cpu
    L = {"layer": 2}
    x, dy = np.arange(24.0).reshape(2, 3, 2, 2), np.arange(16.0).reshape(2, 2, 2, 2)
    xs, dys = bench_lc.in_order(L, x, dy, "training")
    assert lc_cpu.is_batch_last(xs) and lc_cpu.is_batch_last(dys)
    np.testing.assert_array_equal(xs, x)
    np.testing.assert_array_equal(dys, dy)
    first = bench_lc.in_order(L, x, dy, "batch-first")
    assert first[0] is x and first[1] is dy
    assert bench_lc.in_order({"layer": 1}, x, dy, "training")[0] is x


def test_bench_ops_offers_the_product_paths_lc_cpu_has():
    """`lcengine bench ops` lists them without importing the ops (Numba) at CLI start."""
    from lcengine.bench import ops
    from lcengine.ops.cpu import lc as lc_cpu
    choice = next(p for p in ops.params if p.name == "products").type.choices
    assert tuple(choice) == ("auto",) + lc_cpu.PRODUCTS
