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
            assert per_example == row.n_weights                       # every LC weight used once per image


def test_layer_selection_is_one_based():
    assert [L["layer"] for L in common.windowed_layers("imagenet-lc", 32, "lc", (1, 3))] == [1, 3]


def test_compare_rejects_a_wrong_result_and_names_it():
    ref = np.linspace(-1.0, 1.0, 12).reshape(3, 4)
    assert common.compare(ref + 1e-9, ref, rtol=1e-6, atol=1e-8, what="op")["max_abs_err"] < 1e-8
    wrong = ref.copy()
    wrong[2, 1] += 1e-3
    with pytest.raises(AssertionError, match=r"op differs from the reference at \(2, 1\)"):
        common.compare(wrong, ref, rtol=1e-6, atol=1e-8, what="op")
