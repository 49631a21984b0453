"""Top-k error, angles, and the alignment of rules with BP."""

import math

import numpy as np
import pytest
from mnist_subset import mnist_fc, mnist_subset, train

from lcengine.backend import get_backend
from lcengine.metrics import alignment, alignment_angles, angle, top_k_error
from lcengine.rules import make_rule

BACKEND = get_backend("cpu")


def test_top_k_error_by_hand():
    logits = np.array([[0.1, 0.9, 0.0],       # label 1: top-1 right
                       [0.5, 0.2, 0.3],       # label 2: second, so top-2 right only
                       [0.1, 0.2, 0.7],       # label 0: last
                       [0.4, 0.4, 0.2]])      # label 0 tied with 1: counts as right
    labels = np.array([1, 2, 0, 0])
    assert top_k_error(logits, labels, 1) == 0.5
    assert top_k_error(logits, labels, 2) == 0.25
    assert top_k_error(logits, labels, 3) == 0.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(5))
def test_angle_of_a_vector_with_itself_is_exactly_zero(dtype, seed):
    u = np.random.default_rng(seed).standard_normal((37, 11)).astype(dtype)
    assert angle(u, u.copy()) == 0.0
    assert angle(3 * u, u) == pytest.approx(0.0, abs=1e-3)   # 3u is rounded


def test_angle_values():
    e0, e1 = np.array([1.0, 0.0]), np.array([0.0, 2.0])
    assert angle(e0, e1) == 90.0
    assert angle(e0, -e0) == 180.0
    assert angle(e0, e0 + e1 / 2) == pytest.approx(45.0)
    assert math.isnan(angle(e0, np.zeros(2)))
    assert alignment_angles({"0.W": e0, "0.b": e1}, {"0.W": e1, "0.b": e1}) == {"0.W": 90.0}


@pytest.fixture(scope="module")
def mnist(shared_data):
    return mnist_subset(shared_data / "mnist", 1000)


def test_bp_is_aligned_with_itself(mnist):
    x, labels = mnist
    rng = BACKEND.rng(0)
    net = mnist_fc(BACKEND, rng)
    angles = alignment(make_rule("bp", net, {}, rng), make_rule("bp", net, {}, rng),
                       x[:100], labels[:100])
    assert list(angles) == [f"{l}.W" for l in range(6)]
    assert all(a == 0.0 for a in angles.values()), angles


@pytest.mark.slow
def test_fa_aligns_with_bp_after_training(mnist):
    """After 100 FA steps (lr 1e-3, batch 100) every layer's update is within 90° of BP's."""
    x, labels = mnist
    rng = BACKEND.rng(0)
    net = mnist_fc(BACKEND, rng)
    fa, bp = make_rule("fa", net, {}, rng), make_rule("bp", net, {}, rng)
    train(fa, x, labels, 100, lr=1e-3)
    angles = alignment(fa, bp, x[:100], labels[:100])
    assert angles["5.W"] == 0.0                                   # the top is trained by e itself
    assert all(a < 90.0 for a in angles.values()), angles
