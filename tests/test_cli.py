"""`lcengine` commands through click's CliRunner: every option's bad value is one line naming it;
a two-epoch run on mnist-mini with eval and report; a run SIGKILLed mid-epoch and resumed ends
with the same weights as an uninterrupted one."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lcengine import checkpoint
from lcengine.backend import BackendError, get_backend
from lcengine.cli import main
from lcengine.config import (ALGOS, APPLIES, ARCHS, DATASETS, FIELDS, SCHEDULES, TP_FAMILY,
                             TrainConfig, read_toml, resolve)

REPO = Path(__file__).resolve().parents[1]
TINY = ["--width", "0.25", "--limit-train", "320", "--limit-test", "200",
        "--train-eval-images", "200"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def assert_one_line_error(result, *fragments):
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1, result.output
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# field -> (arguments, what the one-line error must say); one entry per option of `train`
BAD = {
    "algo": (["--algo", "sgd"], "--algo: 'sgd' is not one of bp, fa, dfa, tp, dtp, sdtp, ao-sdtp"),
    "schedule": (["--schedule", "parallel"], "--schedule: bp takes no schedule"),
    "dataset": (["--dataset", "svhn"], "--dataset: 'svhn' is not one of"),
    "data": (["--dataset", "mnist", "--data", "{tmp}/absent"], "--data: ", "no such directory"),
    "arch": (["--arch", "resnet"], "--arch: 'resnet' is not one of fc, lc, conv"),
    "width": (["--width", "0"], "--width: 0.0 must be > 0"),
    "epochs": (["--epochs", "two"], "--epochs: 'two' is not an integer"),
    "batch_size": (["--batch-size", "0"], "--batch-size: 0 must be >= 1"),
    "limit_train": (["--limit-train", "-5"], "--limit-train: -5 must be >= 1"),
    "limit_test": (["--limit-test", "1.5"], "--limit-test: '1.5' is not an integer"),
    "train_eval_images": (["--train-eval-images", "-1"], "--train-eval-images: -1 must be >= 0"),
    "seed": (["--seed", "x"], "--seed: 'x' is not an integer"),
    "device": (["--device", "tpu"], "--device: 'tpu' is not one of cpu, gpu"),
    "kernels": (["--kernels", "slow"], "--kernels: 'slow' is not one of fast, ref"),
    "workers": (["--workers", "-1"], "--workers: -1 must be >= 0"),
    "threads": (["--threads", "0"], "--threads: 0 must be >= 1"),
    "out": (["--out", "{tmp}"], "run directory exists", "--resume"),
    "explode_factor": (["--explode-factor", "inf"], "--explode-factor: inf is not a finite number"),
    "lr": (["--lr", "-1e-3"], "--lr: -0.001 must be > 0"),
    "beta1": (["--beta1", "1"], "--beta1: 1.0 must be in [0, 1)"),
    "beta2": (["--beta2", "1.5"], "--beta2: 1.5 must be in [0, 1)"),
    "eps": (["--eps", "0"], "--eps: 0.0 must be > 0"),
    "inv_lr": (["--inv-lr", "1e-3"], "--inv-lr: bp takes no inv_lr (only tp, dtp, sdtp, ao-sdtp"),
    "inv_beta1": (["--algo", "dtp", "--inv-beta1", "-0.1"], "--inv-beta1: -0.1 must be in [0, 1)"),
    "inv_beta2": (["--algo", "fa", "--inv-beta2", "0.9"], "--inv-beta2: fa takes no inv_beta2"),
    "inv_eps": (["--algo", "sdtp", "--inv-eps", "x"], "--inv-eps: 'x' is not a number"),
    "alpha": (["--algo", "sdtp", "--alpha", "0.1"],
              "--alpha: sdtp takes no alpha (only tp, dtp do)"),
    "sigma": (["--sigma", "0.1"], "--sigma: bp takes no sigma"),
    "local_loss": (["--algo", "dtp", "--local-loss", "avg"],
                   "--local-loss: 'avg' is not one of sum, mean"),
    "aux_units": (["--algo", "dtp", "--aux-units", "64"], "--aux-units: dtp takes no aux_units"),
    "feedback_scale": (["--algo", "dtp", "--feedback-scale", "0.1"],
                       "--feedback-scale: dtp takes no feedback_scale (only fa, dfa, usf, brsf, "
                       "frsf, kp do)"),
    "weight_decay": (["--algo", "kp", "--weight-decay", "-0.1"],
                     "--weight-decay: -0.1 must be >= 0"),
}


def test_every_option_has_a_bad_value_case():
    assert set(BAD) == set(FIELDS)


@pytest.mark.parametrize("name", list(BAD))
def test_bad_option_value_is_one_line(tmp_path, name):
    args, *fragments = BAD[name]
    result = invoke("train", *[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert_one_line_error(result, *fragments)


def write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize("args, fragments", [
    (["--dataset", "mnist"], ["mnist is not prepared in the data home",
                              "run: lcengine prep mnist --download"]),
    (["--dataset", "imagenet", "--arch", "fc", "--data", "{tmp}"], ["no fully-connected ImageNet"]),
    (["--data", "{tmp}"], ["--data: mnist-mini is embedded"]),
    (["--preset", "nope"], ["--preset 'nope': no such preset; choose one of", "smoke"]),
    (["--config", "{tmp}/absent.toml"], ["absent.toml: no such config file"]),
    (["--config", "{tmp}/unknown.toml"], ["unknown.toml: unknown key 'learning_rate'"]),
    (["--config", "{tmp}/badvalue.toml"], ["badvalue.toml: lr: 'fast' is not a number"]),
    (["--config", "{tmp}/broken.toml"], ["broken.toml: not readable TOML"]),
    (["--config", "{tmp}/combo.toml"], ["combo.toml: schedule: bp takes no schedule"]),
    (["--resume", "{tmp}", "--lr", "0.1"],
     ["only --epochs and --data (shards that moved) may be given with it, not --lr"]),
    (["--resume", "{tmp}", "--preset", "smoke"], ["not --preset"]),
    (["--resume", "{tmp}/absent"], ["absent: no such run directory"]),
    (["--resume", "{tmp}"], ["checkpoints: no complete checkpoint"]),
])
def test_bad_combinations_and_files_are_one_line(tmp_path, args, fragments):
    write(tmp_path / "unknown.toml", "learning_rate = 0.1\n")
    write(tmp_path / "badvalue.toml", 'lr = "fast"\n')
    write(tmp_path / "broken.toml", "lr = = 1\n")
    write(tmp_path / "combo.toml", 'schedule = "parallel"\n')
    assert_one_line_error(invoke("train", *[a.replace("{tmp}", str(tmp_path)) for a in args]),
                          *fragments)


def test_gpu_without_a_gpu_is_one_line(tmp_path):
    try:
        get_backend("gpu")
        pytest.skip("this machine has a usable GPU")
    except BackendError:
        pass
    result = invoke("train", "--device", "gpu", "--out", tmp_path / "run")
    assert_one_line_error(result, "--device gpu")
    assert not (tmp_path / "run").exists()


def test_eval_and_report_of_a_non_run_are_one_line(tmp_path):
    assert_one_line_error(invoke("eval", tmp_path / "absent"), "no such run directory")
    assert_one_line_error(invoke("report", tmp_path), "config.toml: missing")


def test_two_epoch_run_then_eval_and_report(tmp_path):
    run = tmp_path / "run"
    result = invoke("train", "--epochs", "2", "--out", run, *TINY)
    assert result.exit_code == 0, result.output
    out = result.output
    assert ("# lr, beta1, beta2, eps from Table 5, MNIST FC, bp; mnist-mini uses MNIST's values"
            in out)
    assert 'algo = "bp"' in out and "lr = 0.000152" in out
    assert "epoch 2/2" in out and "done: final test error" in out
    saved = TrainConfig(**read_toml(run / "config.toml"))
    assert (saved.epochs, saved.width, saved.out) == (2, 0.25, str(run))
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]

    result = invoke("eval", run, "--limit", "100")
    assert result.exit_code == 0 and "test error" in result.output, result.output
    result = invoke("eval", run, "--split", "train", "--limit", "200")
    assert f"train error {records[-1]['train_error']:.2f}%" in result.output

    table = tmp_path / "table.md"
    result = invoke("report", run, "--markdown", table)
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if line.startswith(f"| {run} "))
    assert "| mnist-mini-fc-bp | 2/2 |" in row and row.endswith("| 0.00 | 1.48 |")
    assert table.read_text() in result.output
    assert (run / "curves.png").read_bytes().startswith(b"\x89PNG")
    result = invoke("report", "--compare", run, "--figures", tmp_path / "figures")
    assert "| BP | run | 2 / 2 |" in result.output, result.output      # what train wrote reads
    assert (tmp_path / "figures" / "mnist-mini-fc-errors.png").is_file()

    # the saved config reproduces the run's settings; command-line options still win
    result = invoke("train", "--config", run / "config.toml", "--out", tmp_path / "again",
                    "--epochs", "1")
    assert result.exit_code == 0, result.output
    again = TrainConfig(**read_toml(tmp_path / "again" / "config.toml"))
    assert (again.epochs, again.out) == (1, str(tmp_path / "again"))
    assert {**vars(again), "epochs": 2, "out": str(run)} == vars(saved)


def test_preset_and_config_file_layers(tmp_path):
    config = write(tmp_path / "c.toml", "# a comment\nlr = 0.001\nbatch-size = 64\n")
    result = invoke("train", "--preset", "smoke", "--config", config, "--batch-size", "16",
                    "--out", tmp_path / "run", "--limit-train", "64", "--train-eval-images", "64",
                    "--limit-test", "64")
    assert result.exit_code == 0, result.output
    got = TrainConfig(**read_toml(tmp_path / "run" / "config.toml"))
    assert (got.width, got.epochs, got.lr, got.batch_size) == (0.25, 1, 0.001, 16)
    assert "# beta1, beta2, eps from Table 5" in result.output          # lr was given


def train_command(run, epochs):
    return [sys.executable, "-m", "lcengine", "train", "--epochs", str(epochs), "--out", str(run),
            "--algo", "fa", "--limit-train", "6400", "--limit-test", "200",
            "--train-eval-images", "200"]


def test_resume_after_sigkill_mid_epoch_matches_an_uninterrupted_run(tmp_path):
    killed = tmp_path / "killed"
    with subprocess.Popen(train_command(killed, 2), cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as proc:
        try:
            for line in proc.stdout:                # click.echo flushes each line
                if line.startswith("epoch 1/2"):
                    break
            time.sleep(0.05)                        # into epoch 2 (~0.5 s long)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
    assert checkpoint.latest(killed)[0].name == "e00001-p0-b0000000", "not killed in epoch 2"

    result = invoke("train", "--resume", killed)
    assert result.exit_code == 0, result.output
    assert "resuming" in result.output and "epoch 2/2" in result.output
    whole = tmp_path / "whole"
    assert invoke(*train_command(whole, 2)[3:]).exit_code == 0

    want = checkpoint.load(checkpoint.latest(whole)[0])["run"]
    got = checkpoint.load(checkpoint.latest(killed)[0])["run"]
    for part in ("forward", "rule"):
        for key in want[part]:
            np.testing.assert_array_equal(got[part][key], want[part][key], err_msg=key)
    for key in want["optimisers"]["forward"]:
        np.testing.assert_array_equal(got["optimisers"]["forward"][key],
                                      want["optimisers"]["forward"][key])

    def errors(run):
        return [(r["epoch"], r["train_error"], r["test_error"], r["loss"], r["alignment_deg"])
                for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())]

    assert errors(killed) == errors(whole)


def settings():
    for dataset in DATASETS:
        for arch in ARCHS:
            for algo in ALGOS:
                for schedule in (SCHEDULES if algo in TP_FAMILY else (None,)):
                    if not (dataset == "imagenet" and arch == "fc"):
                        yield dataset, arch, algo, schedule


def test_every_setting_resolves_to_paper_values(tmp_path):
    for dataset, arch, algo, schedule in settings():
        given = {"dataset": dataset, "arch": arch, "algo": algo, "schedule": schedule}
        if dataset != "mnist-mini":
            given["data"] = str(tmp_path)
        config, notes = resolve([("test", {k: v for k, v in given.items() if v is not None})])
        for name, algos in APPLIES.items():
            if name != "feedback_scale":        # None there means each layer's Glorot limit
                assert (getattr(config, name) is not None) == (algo in algos), (given, name)
        assert any("from Table 5" in note for note in notes), given


@pytest.mark.parametrize("setting, want", [
    (("mnist", "fc", "dtp", "alternating"), {"lr": 3.08e-4, "inv_lr": 4.593e-3, "alpha": 0.232,
                                             "sigma": 0.220, "beta1": 0.99}),
    (("mnist-mini", "fc", "bp", None), {"lr": 1.52e-4, "beta2": 0.999, "eps": 1e-8}),
    (("mnist", "conv", "bp", None), {"lr": 2.97e-4}),
    (("cifar10", "conv", "fa", None), {"lr": 2.2e-5}),                    # CIFAR LC's FA
    (("cifar10", "lc", "ao-sdtp", "parallel"), {"lr": 2.0e-5, "sigma": 0.300, "aux_units": 512}),
    (("imagenet", "lc", "dfa", None), {"lr": 4.0e-5}),                    # CIFAR LC's DFA
    (("imagenet", "lc", "sdtp", "alternating"), {"lr": 1.1e-5, "inv_lr": 1.70e-4}),
])
def test_table5_lookups(tmp_path, setting, want):
    dataset, arch, algo, schedule = setting
    given = {"dataset": dataset, "arch": arch, "algo": algo}
    if schedule:
        given["schedule"] = schedule
    if dataset != "mnist-mini":
        given["data"] = str(tmp_path)
    config, _ = resolve([("test", given)])
    assert {k: getattr(config, k) for k in want} == want


def test_nan_loss_stops_with_one_line_naming_the_kept_checkpoint(tmp_path, monkeypatch):
    from lcengine.rules.base import Step
    from lcengine.rules.bp import BP
    real = BP.gradients

    def gradients(self, x, labels, phase="both"):
        step = real(self, x, labels, phase)
        return Step(float("nan"), step.forward, step.inverse)

    monkeypatch.setattr(BP, "gradients", gradients)
    result = invoke("train", "--out", tmp_path / "run", *TINY)
    assert result.output.splitlines()[-1] == (
        f"Error: stopped: epoch 1, forward pass, batch 0: loss is nan; the last good checkpoint "
        f"{tmp_path / 'run' / 'checkpoints' / 'e00000-p0-b0000000'} is kept")
    assert result.exit_code == 1


def test_ctrl_c_exits_130_with_how_to_resume(tmp_path, monkeypatch):
    from lcengine import train as training
    real_step = training.Run.step

    def step(self, *args):
        os.kill(os.getpid(), signal.SIGINT)
        return real_step(self, *args)

    monkeypatch.setattr(training.Run, "step", step)
    result = invoke("train", "--out", tmp_path / "run", *TINY)
    assert result.exit_code == 130
    assert result.output.splitlines()[-1].startswith("Error: interrupted at epoch 1, forward pass, "
                                                     "batch 0; checkpoint ")
    assert result.output.rstrip().endswith(f"lcengine train --resume {tmp_path / 'run'}")
    monkeypatch.undo()
    result = invoke("train", "--resume", tmp_path / "run", "--epochs", "1")
    assert result.exit_code == 0 and "batch 1" in result.output, result.output


def test_report_draws_the_angles_of_a_rule_with_feedback_weights(tmp_path):
    run = tmp_path / "kp"
    result = invoke("train", "--algo", "kp", "--epochs", "2", "--out", run, *TINY)
    assert result.exit_code == 0, result.output
    assert "B to W" in result.output
    result = invoke("report", run)
    assert result.exit_code == 0, result.output
    assert f"angles: {run / 'angles.png'}" in result.output
    assert (run / "angles.png").read_bytes().startswith(b"\x89PNG")


def test_prep_is_loaded_from_data_prep_only_when_asked_for():
    """lcengine and data_prep do not import each other at package level: the command list names
    `prep`, and its help comes from data_prep's command."""
    out = subprocess.run([sys.executable, "-c", "import sys, lcengine.cli\n"
                          "print('data_prep' in sys.modules)"], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False"]
    assert "prep" in CliRunner().invoke(main, ["--help"]).output
    result = CliRunner().invoke(main, ["prep", "--help"])
    assert result.exit_code == 0 and "mnist" in result.output.lower(), result.output
