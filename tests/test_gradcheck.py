"""The gradient oracle must itself catch wrong gradients, and say where."""

import numpy as np
import pytest
from gradcheck import assert_close, check_directional


def test_accepts_a_true_gradient_for_arrays_and_dicts():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal(5)
    check_directional(lambda x: np.sum(np.sin(x)), a, np.cos(a), seed=1)
    check_directional(lambda p: np.sum(p["a"] ** 2) + np.sum(p["a"]) * np.sum(p["b"]),
                      {"a": a, "b": b},
                      {"a": 2 * a + np.sum(b), "b": np.full_like(b, np.sum(a))}, seed=2)


def test_rejects_a_wrong_gradient_naming_the_seed():
    a = np.random.default_rng(0).standard_normal((3, 4))
    with pytest.raises(AssertionError, match="seed 7"):
        check_directional(lambda x: np.sum(x ** 3), a, 3 * a ** 2 + 1e-3, seed=7)


def test_rejects_a_gradient_of_the_wrong_shape():
    with pytest.raises(AssertionError, match="shape"):
        check_directional(lambda x: np.sum(x), np.zeros((2, 3)), np.zeros(6), seed=0)


def test_assert_close_reports_worst_element_values_and_shape():
    ref = np.zeros((2, 3))
    got = ref.copy()
    got[1, 2], got[0, 0] = 0.5, 0.1
    with pytest.raises(AssertionError, match=r"2/6 elements off; worst at \(1, 2\): got 0.5.*"
                                             r"shape \(2, 3\), seed 9"):
        assert_close(got, ref, rtol=0, atol=1e-3, seed=9)
