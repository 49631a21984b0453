"""The rules after the paper whose feedback is not FA's fixed random B: the sign-symmetry family
(usf, brsf, frsf) and Kolen-Pollack (kp). Oracles, float64 on tiny nets: KP with B = W is BP at
every step; KP's W − B shrinks by exactly (1 − λ) per step and its B-to-W angle falls below a
stated bound; uSF on weights of equal magnitude is BP up to the stated scale; brSF's B changes
every step, frSF's never, both with W's signs. Resuming these rules bit for bit:
tests/test_train.py."""

import math

import numpy as np
import pytest
from gradcheck import assert_close
from mnist_subset import mnist_fc

from lcengine.backend import BackendError, get_backend
from lcengine.metrics import feedback_angles
from lcengine.nets import build_network
from lcengine.optim import Adam
from lcengine.rules import make_rule
from lcengine.train import train_step

BACKEND = get_backend("cpu")
SMALL = dict(width=0.03, input_shape=(1, 5, 4), n_classes=4)      # 20-8×5-4, mnist-fc's shape
WINDOWED = dict(width=0.1, input_shape=(1, 9, 7), n_classes=5)    # LC 3×(5×4) → 6×(3×2) → 102 → 5


def tiny_net(arch, seed):
    if arch == "mnist-fc":
        return mnist_fc(BACKEND, BACKEND.rng(seed), "float64", **SMALL)
    return build_network(arch, BACKEND, BACKEND.rng(seed), dtype="float64", **WINDOWED)


def batches(net, steps, n=6, seed=0):
    rng = np.random.default_rng(seed)
    shape, classes = net.layers[0].in_shape, net.layers[-1].out_shape[0]
    return [(rng.uniform(0, 1, (n, *shape)), rng.integers(0, classes, n)) for _ in range(steps)]


def weights(net):
    return [layer.params["W"] for layer in net.layers]


# --- KP ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("decay", [0.0, 0.01])
@pytest.mark.parametrize("arch", ["mnist-fc", "mnist-lc"])
def test_kp_with_b_equal_to_w_gives_bps_updates_at_every_step(arch, decay):
    """Five Adam steps side by side: KP with B_l = W_l at the start against BP with the same
    decay of W; gradients, weights and B are bit-identical at every step, and B stays W."""
    kp_net, bp_net = tiny_net(arch, seed=1), tiny_net(arch, seed=1)
    kp = make_rule("kp", kp_net, {"weight_decay": decay}, BACKEND.rng(2))
    bp = make_rule("bp", bp_net, {}, BACKEND.rng(3))
    for key, B in kp.B.items():
        B[...] = kp_net.layers[int(key[2:])].params["W"]
    kp_adam = Adam(kp.forward_params(), 1e-2, backend=BACKEND)
    bp_adam = Adam(bp.forward_params(), 1e-2, backend=BACKEND)
    for x, labels in batches(kp_net, steps=5):
        got, ref = kp.gradients(x, labels, "forward"), bp.gradients(x, labels, "forward")
        assert set(got.forward) == set(ref.forward) | set(kp.B)
        for key, g in ref.forward.items():
            assert np.array_equal(got.forward[key], g), key
        kp.apply_weight_decay()
        for W in weights(bp_net):
            W *= 1.0 - decay
        kp_adam.step(got.forward)
        bp_adam.step(ref.forward)
        for l, (W_kp, W_bp) in enumerate(zip(weights(kp_net), weights(bp_net))):
            assert np.array_equal(W_kp, W_bp), l
            if l >= 1:
                assert np.array_equal(kp.B[f"B.{l}"], W_kp), l


def kp_run(arch, decay, lr, steps):
    """KP from a random B, Adam; yields after every step."""
    net = tiny_net(arch, seed=1)
    kp = make_rule("kp", net, {"weight_decay": decay}, BACKEND.rng(2))
    adam = Adam(kp.forward_params(), lr, backend=BACKEND)
    data = batches(net, steps=4, n=16)
    for t in range(steps):
        x, labels = data[t % len(data)]
        step = kp.gradients(x, labels, "forward")
        kp.apply_weight_decay()
        adam.step(step.forward)
        yield kp


@pytest.mark.parametrize("arch", ["mnist-fc", "mnist-lc"])
def test_kp_shrinks_w_minus_b_by_one_minus_lambda_every_step(arch):
    """W_l and B_l get the same adjustment and the same decay: ‖W_l − B_l‖ = (1 − λ)ᵗ ‖W_l − B_l‖₀
    to rounding, while both keep learning."""
    decay = 0.05
    net = tiny_net(arch, seed=1)
    first = make_rule("kp", net, {}, BACKEND.rng(2))
    start = {key: np.linalg.norm(net.layers[int(key[2:])].params["W"] - B)
             for key, B in first.B.items()}
    for t, kp in enumerate(kp_run(arch, decay, lr=1e-2, steps=20), start=1):
        for key, B in kp.B.items():
            W = kp.net.layers[int(key[2:])].params["W"]
            assert np.linalg.norm(W - B) == pytest.approx((1 - decay) ** t * start[key],
                                                          rel=1e-9), (t, key)


def test_kp_drives_b_into_line_with_w():
    """From random B (the largest B-to-W angle 110° on this net), λ = 0.01 and Adam lr 0.01 bring
    every layer's angle below 15° within 300 steps (measured: 6.9°)."""
    angles = None
    for kp in kp_run("mnist-fc", decay=0.01, lr=1e-2, steps=300):
        angles = angles or feedback_angles(kp)
    assert max(angles.values()) > 90
    final = feedback_angles(kp)
    assert set(final) == {f"B.{l}" for l in range(1, 6)}
    assert max(final.values()) < 15.0, final


# --- sign symmetry ----------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ["mnist-fc", "mnist-lc", "mnist-conv"])
def test_usf_on_weights_of_equal_magnitude_is_bp_times_the_scale_ratios(arch):
    """|W_l| = c_l everywhere makes B_l = s_l sign(W_l) = (s_l / c_l) W_l, so uSF's gradient of
    layer l is BP's times Π_{m>l} s_m / c_m, s_m = √(2 / (fan_in + fan_out))."""
    net = tiny_net(arch, seed=3)
    c = [0.05 * (l + 2) for l in range(len(net.layers))]
    for W, c_l in zip(weights(net), c):
        W[...] = c_l * np.sign(W)
    (x, labels), = batches(net, steps=1, seed=4)
    got = make_rule("usf", net, {}, BACKEND.rng(5)).gradients(x, labels, "forward").forward
    ref = make_rule("bp", net, {}, BACKEND.rng(6)).gradients(x, labels, "forward").forward
    s = [math.sqrt(2.0 / (layer.fan_in + layer.fan_out)) for layer in net.layers]
    for l in range(len(net.layers)):
        scale = math.prod(s[m] / c[m] for m in range(l + 1, len(net.layers)))
        for p in "Wb":
            want = scale * ref[f"{l}.{p}"]                  # atol: rounding of the array's sums
            assert_close(got[f"{l}.{p}"], want, rtol=1e-12, atol=1e-13 * np.abs(want).max(),
                         what=f"{arch} {l}.{p}")


def recorded_feedback(rule, steps, lr):
    """The B_l each of `steps` Adam steps sent its errors through, and W_l at that step."""
    seen = []
    send = rule.feedback_weights

    def recording(l):
        B = send(l)
        seen[-1][l] = (B.copy(), rule.layer(l).params["W"].copy())
        return B

    rule.feedback_weights = recording
    adam = Adam(rule.forward_params(), lr, backend=BACKEND)
    for x, labels in batches(rule.net, steps):
        seen.append({})
        adam.step(rule.gradients(x, labels, "forward").forward)
    return seen


@pytest.mark.parametrize("arch", ["mnist-fc", "mnist-lc"])
@pytest.mark.parametrize("name", ["brsf", "frsf"])
def test_random_magnitude_feedback_has_ws_signs_and_brsf_redraws_every_step(arch, name):
    """Every B_l used has exactly W_l's signs at that step (lr 0.05 flips some of them); brSF's
    magnitudes differ at every step, frSF's are the same array throughout, in [0, r_l]."""
    rule = make_rule(name, tiny_net(arch, seed=7), {}, BACKEND.rng(8))
    seen = recorded_feedback(rule, steps=6, lr=0.05)
    flipped = False
    for t, step in enumerate(seen):
        assert sorted(step) == list(range(2, rule.L + 1))
        for l, (B, W) in step.items():
            assert np.array_equal(np.sign(B), np.sign(W)), (t, l)
            assert np.all(np.abs(B) <= rule.layer(l).glorot_limit())
            if t == 0:
                continue
            before, W_before = seen[t - 1][l]
            flipped |= bool(np.any(np.sign(W) != np.sign(W_before)))
            same = np.abs(B) == np.abs(before)
            if name == "brsf":
                assert same.mean() < 0.01, (t, l)
            else:
                assert same.all(), (t, l)
    assert flipped


def test_frsf_magnitudes_are_its_state_and_brsf_has_none():
    net = tiny_net("mnist-fc", seed=1)
    frsf = make_rule("frsf", net, {}, BACKEND.rng(2))
    brsf = make_rule("brsf", net, {}, BACKEND.rng(2))
    assert sorted(frsf.state()) == [f"M.{l}" for l in range(1, 6)]
    assert brsf.state() == {} and make_rule("usf", net, {}, BACKEND.rng(2)).state() == {}
    other = make_rule("frsf", net, {}, BACKEND.rng(3))
    other.load_state({k: v.copy() for k, v in frsf.state().items()})
    for l in range(2, 7):
        assert np.array_equal(other.feedback_weights(l), frsf.feedback_weights(l))


@pytest.mark.parametrize("name", ["usf", "brsf", "frsf", "kp"])
def test_fast_and_reference_faces_give_the_same_gradients(name):
    """The rules add only elementwise work to FA's: on an LC net the fast CPU face's gradients
    are the NumPy references' (to summation order)."""
    steps = {}
    for kernels in ("ref", "fast"):
        backend = get_backend("cpu", kernels)
        net = build_network("mnist-lc", backend, backend.rng(1), dtype="float64", **WINDOWED)
        (x, labels), = batches(net, steps=1)
        steps[kernels] = make_rule(name, net, {}, backend.rng(2)).gradients(x, labels, "forward")
    for key, g in steps["ref"].forward.items():
        assert_close(steps["fast"].forward[key], g, rtol=1e-10, atol=1e-14, what=key)


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["usf", "brsf", "frsf", "kp"])
def test_cuda_face_gives_the_cpus_gradients_and_trains(name):
    """On an LC net, float32, with the CPU's parameters and rule state copied to the GPU: the same
    gradients (brSF's magnitudes come from CuPy's generator: there, W's signs and finite values),
    then two `train_step`s on the GPU (KP: W − B shrinks by (1 − λ)²). Skipped without a GPU."""
    try:
        gpu = get_backend("gpu")
    except BackendError as err:
        pytest.skip(str(err))
    backends = {"cpu": BACKEND, "gpu": gpu}
    rules = {k: make_rule(name, build_network("mnist-lc", b, b.rng(1), dtype="float32",
                                              **WINDOWED), {}, b.rng(2))
             for k, b in backends.items()}
    cpu, cuda = rules["cpu"], rules["gpu"]
    for key, value in cpu.forward_params().items():
        cuda.forward_params()[key][...] = gpu.asarray(value)
    cuda.load_state(cpu.state())
    data = [(x.astype(np.float32), labels) for x, labels in batches(cpu.net, steps=3)]
    x, labels = data[0]
    want = cpu.gradients(x, labels, "forward").forward
    got = cuda.gradients(gpu.asarray(x), gpu.asarray(labels), "forward").forward
    for key, ref in want.items():
        value = got[key].get()
        if name == "brsf":
            assert np.all(np.isfinite(value)), key
        else:
            assert_close(value, ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max(), what=key)
    for l in range(2, cuda.L + 1):
        B, W = cuda.feedback_weights(l), cuda.layer(l).params["W"]
        assert bool((gpu.xp.sign(B) == gpu.xp.sign(W)).all()) or name == "kp", l
    gap = {k: float(gpu.xp.linalg.norm(cuda.net.layers[int(k[2:])].params["W"] - B))
           for k, B in getattr(cuda, "B", {}).items()}
    adam = {"forward": Adam(cuda.forward_params(), 1e-2, backend=gpu)}
    for x, labels in data[1:]:
        train_step(cuda, adam, gpu.asarray(x), gpu.asarray(labels), "forward")
    for key, value in cuda.forward_params().items():
        assert bool(gpu.xp.isfinite(value).all()), key
    for key, before in gap.items():
        W = cuda.net.layers[int(key[2:])].params["W"]
        after = float(gpu.xp.linalg.norm(W - cuda.B[key]))
        assert after == pytest.approx((1 - 1e-4) ** 2 * before, rel=1e-4), key
