"""The research script bin/sdtp_diagnostics.py, run for real on the embedded mnist-mini (the
paper's tuning protocol is `lcengine sweep`, tests/test_sweep.py)."""

import ast
import importlib.util
import sys
from pathlib import Path

import pytest

from lcengine.cli import main as lcengine_main

BIN = Path(__file__).resolve().parents[1] / "bin"


def load(name):
    spec = importlib.util.spec_from_file_location(name, BIN / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sdtp_run(tmp_path_factory):
    from click.testing import CliRunner

    run_dir = tmp_path_factory.mktemp("sdtp") / "run"
    result = CliRunner().invoke(lcengine_main, [
        "train", "--algo", "sdtp", "--schedule", "parallel", "--epochs", "1", "--limit-train",
        "512", "--limit-test", "200", "--train-eval-images", "200", "--out", str(run_dir)])
    assert result.exit_code == 0, result.output
    return run_dir


def test_sdtp_diagnostics_bound_the_top_inverse(sdtp_run, monkeypatch, capsys):
    diagnostics = load("sdtp_diagnostics")
    monkeypatch.setattr(sys, "argv", ["sdtp_diagnostics.py", "checkpoint", str(sdtp_run),
                                      "--images", "300", "--refit", "20"])
    diagnostics.main()
    lines = [line for line in capsys.readouterr().out.splitlines() if ":" in line]
    before, after = (ast.literal_eval(line.split(":", 1)[1].strip()) for line in lines[-2:])
    for m in (before, after):
        # the class-mean predictor is the best function of the predicted class, hence no worse
        # than the global mean; δ's part in a subspace is at most all of it
        assert m["class-mean loss"] <= m["total spread"] + 1e-6
        assert 0 <= m["|δ|² in rowspace(W_L)"] <= m["|δ|²"] + 1e-6
    assert after["class-mean loss"] == pytest.approx(before["class-mean loss"])


def test_sdtp_trace_logs_every_local_loss(monkeypatch, capsys):
    diagnostics = load("sdtp_diagnostics")
    monkeypatch.setattr(sys, "argv", ["sdtp_diagnostics.py", "trace", "--dataset", "mnist-mini",
                                      "--steps", "20", "--every", "10", "--set", "lr=1e-4"])
    diagnostics.main()
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["10", "20"]
    logged = ast.literal_eval(lines[-1][lines[-1].index("{"):lines[-1].index("}") + 1])
    assert set(logged) == {"loss", *(f"inv.{k}" for k in range(1, 6)),
                           *(f"fwd.{k}" for k in range(5))}
