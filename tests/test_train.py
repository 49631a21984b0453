"""The training loop on the embedded MNIST subset, tiny: records and checkpoints per epoch, the
alternating schedule's passes, Ctrl-C then resume bit for bit, NaN and exploding losses stop."""

import json
import math
import os
import signal

import numpy as np
import pytest

from lcengine import checkpoint
from lcengine import train as training
from lcengine.config import resolve
from lcengine.rules.base import Step

TINY = {"width": 0.25, "limit_train": 192, "limit_test": 128, "train_eval_images": 128,
        "batch_size": 32, "epochs": 2}
N_BATCHES = TINY["limit_train"] // TINY["batch_size"]


def tiny_config(tmp_path, name="run", **overrides):
    config, _ = resolve([("test", {**TINY, **overrides, "out": str(tmp_path / name)})])
    return config


def train(config, echo=lambda line: None):
    return training.start(config, config.out, echo=echo)


def newest_state(run_dir):
    return checkpoint.load(checkpoint.latest(run_dir)[0])


def metrics_lines(run_dir):
    return [json.loads(line) for line in (run_dir / training.METRICS).read_text().splitlines()]


def without_timing(record):
    return {k: v for k, v in record.items() if k not in ("seconds", "images_per_s")}


def test_each_epoch_is_recorded_and_checkpointed(tmp_path):
    config = tiny_config(tmp_path)
    lines = []
    history = train(config, echo=lines.append)
    run_dir = tmp_path / "run"
    assert [r["epoch"] for r in history] == [1, 2] and metrics_lines(run_dir) == history
    for r in history:
        assert 0 <= r["test_error"] <= 100 and 0 <= r["train_error"] <= 100
        assert math.isfinite(r["loss"]) and r["images_per_s"] > 0
        assert r["alignment_deg"] == {}                                  # BP is its own reference
        assert r["feedback_deg"] == {}                                   # BP sends back W
    assert history[1]["best_test_error"] == min(r["test_error"] for r in history)
    assert history[1]["loss"] < history[0]["loss"]
    state = newest_state(run_dir)
    assert state["position"] == {"epoch": 2, "phase": 0, "batch": 0}
    assert state["config"]["lr"] == 1.52e-4                              # Table 5, MNIST FC, BP
    assert (run_dir / training.CONFIG).read_text() == config.to_toml()
    assert len(lines) == 2 and lines[1].startswith("epoch 2/2")


def test_fa_reports_an_angle_per_layer(tmp_path):
    history = train(tiny_config(tmp_path, algo="fa", epochs=1))
    angles = history[0]["alignment_deg"]
    assert list(angles) == [f"{l}.W" for l in range(6)]
    assert angles["5.W"] == 0.0                          # the top layer gets the true gradient
    assert all(0 < a < 180 for k, a in angles.items() if k != "5.W")


@pytest.mark.parametrize("algo", ["fa", "usf", "kp"])
def test_feedback_rules_report_their_b_to_w_angle_per_layer(tmp_path, algo):
    lines = []
    history = train(tiny_config(tmp_path, algo=algo, epochs=1), echo=lines.append)
    angles = history[0]["feedback_deg"]
    assert list(angles) == [f"B.{l}" for l in range(1, 6)]
    assert all(0 <= a < 90 for a in angles.values()) if algo == "usf" else \
        all(0 < a < 180 for a in angles.values())
    assert list(history[0]["alignment_deg"]) == [f"{l}.W" for l in range(6)]
    assert "B to W" in lines[0]


def test_alternating_epoch_is_an_inverse_pass_then_a_forward_pass(tmp_path, monkeypatch):
    phases = []
    real_step = training.Run.step

    def recording_step(self, x, labels, phase, *args):
        phases.append(phase)
        return real_step(self, x, labels, phase, *args)

    monkeypatch.setattr(training.Run, "step", recording_step)
    history = train(tiny_config(tmp_path, algo="dtp"))
    assert phases == (["inverse"] * N_BATCHES + ["forward"] * N_BATCHES) * 2
    assert len(history) == 2 and set(history[0]["info"]) >= {"inv.1", "fwd.0"}


def interrupt_at(monkeypatch, call):
    """Ctrl-C (a real SIGINT to this process) during the `call`-th training step."""
    real_step, calls = training.Run.step, []

    def step(self, *args):
        calls.append(1)
        if len(calls) == call:
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(self, *args)

    monkeypatch.setattr(training.Run, "step", step)


# stop in epoch 2: parallel at batch 3 of its one pass, alternating at batch 3 of the forward pass
@pytest.mark.parametrize("algo, schedule, call", [("sdtp", "parallel", N_BATCHES + 3),
                                                  ("dtp", "alternating", 3 * N_BATCHES + 3),
                                                  ("brsf", None, N_BATCHES + 3),
                                                  ("frsf", None, N_BATCHES + 3),
                                                  ("kp", None, N_BATCHES + 3)])
def test_ctrl_c_mid_epoch_then_resume_is_bit_for_bit(tmp_path, monkeypatch, algo, schedule, call):
    whole = train(tiny_config(tmp_path, "whole", algo=algo, schedule=schedule))
    interrupt_at(monkeypatch, call)
    with pytest.raises(training.Interrupted, match="--resume"):
        train(tiny_config(tmp_path, "cut", algo=algo, schedule=schedule))
    monkeypatch.undo()
    stopped = newest_state(tmp_path / "cut")["position"]
    assert stopped["epoch"] == 1 and stopped["batch"] > 0            # mid-epoch, mid-pass
    resumed = training.resume(tmp_path / "cut")
    assert [without_timing(r) for r in resumed] == [without_timing(r) for r in whole]
    want, got = newest_state(tmp_path / "whole")["run"], newest_state(tmp_path / "cut")["run"]
    for part in ("forward", "inverse", "rule"):
        assert want[part].keys() == got[part].keys()
        for key in want[part]:
            np.testing.assert_array_equal(got[part][key], want[part][key], err_msg=key)
    for name, opt in want["optimisers"].items():
        for key in opt:
            np.testing.assert_array_equal(got["optimisers"][name][key], opt[key])
    assert got["rng"] == want["rng"]


def break_loss_at(monkeypatch, call, loss):
    from lcengine.rules.bp import BP
    real, calls = BP.gradients, []

    def gradients(self, x, labels, phase="both"):
        step = real(self, x, labels, phase)
        calls.append(1)
        return Step(loss, step.forward, step.inverse) if len(calls) == call else step

    monkeypatch.setattr(BP, "gradients", gradients)


@pytest.mark.parametrize("loss, says", [(float("nan"), "loss is nan"), (1e6, "exploded")])
def test_bad_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, loss, says):
    break_loss_at(monkeypatch, call=N_BATCHES + 3, loss=loss)                   # epoch 2, batch 2
    with pytest.raises(training.Diverged, match=f"epoch 2, forward pass, batch 2: .*{says}"):
        train(tiny_config(tmp_path))
    run_dir = tmp_path / "run"
    assert newest_state(run_dir)["position"]["epoch"] == 1
    assert [r["epoch"] for r in metrics_lines(run_dir)] == [1]


def test_resume_can_extend_a_finished_run(tmp_path):
    first = train(tiny_config(tmp_path, epochs=1))
    more = training.resume(tmp_path / "run", epochs=2)
    assert [r["epoch"] for r in more] == [1, 2] and more[0] == first[0]
    assert "epochs = 2" in (tmp_path / "run" / training.CONFIG).read_text()
