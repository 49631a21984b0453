"""The research scripts in bin/: the random search (the paper's tuning protocol) and the SDTP
diagnostics, each run for real on the embedded mnist-mini."""

import ast
import importlib.util
import json
import random
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


def test_search_samples_are_reproducible_and_inside_the_space():
    search = load("random_search")
    args = type("Args", (), {"seed": 3, "algo": "dtp", "lr": (1e-5, 3e-3), "inv_lr": (1e-5, 1e-2),
                             "sigma": (0.01, 0.4), "alpha": (0.01, 0.4)})
    first = [search.sample(k, args) for k in range(20)]
    assert first == [search.sample(k, args) for k in range(20)]
    assert len({json.dumps(c, sort_keys=True) for c in first}) == 20
    for config in first:
        assert 1e-5 <= config["lr"] <= 3e-3 and 1e-5 <= config["inv-lr"] <= 1e-2
        assert 0.01 <= config["sigma"] <= 0.4 and 0.01 <= config["alpha"] <= 0.4
        assert config["beta2"] in search.BETA2 and config["inv-eps"] in search.EPS
    args.algo = "fa"
    assert set(search.sample(0, args)) == {"lr", "beta1", "beta2", "eps"}
    assert isinstance(search.log_uniform(random.Random(0), 1e-4, 1e-2), float)


def test_search_runs_samples_and_skips_finished_ones(tmp_path, monkeypatch, capsys):
    search = load("random_search")
    argv = ["random_search.py", "--algo", "bp", "--samples", "2", "--epochs", "1",
            "--lr", "1e-4", "1e-3", "--root", str(tmp_path), "--",
            "--limit-train", "256", "--limit-test", "200", "--train-eval-images", "200"]
    monkeypatch.setattr(sys, "argv", argv)
    assert search.main() == 0
    records = [json.loads(line) for line in (tmp_path / "search.jsonl").read_text().splitlines()]
    assert [r["sample"] for r in records] == [0, 1]
    for record in records:
        assert record["exit"] == 0 and record["epochs"] == 1
        assert 0 <= record["best_test_error"] <= 100
    assert search.main() == 0                              # nothing left to run
    assert len((tmp_path / "search.jsonl").read_text().splitlines()) == 2
    assert "sample 1" in capsys.readouterr().out


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
