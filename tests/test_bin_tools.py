"""The research scripts in bin/: sdtp_diagnostics.py run for real on the embedded mnist-mini (the
paper's tuning protocol is `lcengine sweep`, tests/test_sweep.py); reproduce_table1.sh's plan of
cells, with a stand-in for lcengine."""

import ast
import importlib.util
import os
import subprocess
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


STUB_LCENGINE = '''#!/usr/bin/env python3
"""Stands for `python -m lcengine`: logs each call; `train` writes or updates config.toml."""
import re
import sys
from pathlib import Path
args = sys.argv[3:]                                            # after "-m lcengine"
with open(sys.argv[0] + ".calls", "a") as log:
    log.write(" ".join(args) + "\\n")
epochs = args[args.index("--epochs") + 1] if "--epochs" in args else None
if "--resume" in args:
    config = Path(args[args.index("--resume") + 1]) / "config.toml"
    if epochs:
        config.write_text(re.sub("epochs = [0-9]+", f"epochs = {epochs}", config.read_text()))
else:
    out = Path(args[args.index("--out") + 1])
    out.mkdir(parents=True)
    (out / "config.toml").write_text(f"algo = \\"x\\"\\nepochs = {epochs}\\n")
'''


def test_reproduce_table1_starts_resumes_and_extends_cells_to_the_scripts_budget(tmp_path):
    stub = tmp_path / "python"
    stub.write_text(STUB_LCENGINE)
    stub.chmod(0o755)
    data, runs = tmp_path / "data", tmp_path / "runs"
    for dataset in ("mnist", "cifar10"):
        (data / dataset).mkdir(parents=True)
        (data / dataset / "manifest.json").write_text("{}")
    for name in ("cifar-fc-fa", "cifar-fc-dtp"):                 # two cells under way
        (runs / name).mkdir(parents=True)
        (runs / name / "config.toml").write_text("algo = \"x\"\nepochs = 100\n")

    def reproduce(*patterns):
        env = {**os.environ, "PYTHON": str(stub), "DATA": str(data), "RUNS": str(runs)}
        subprocess.run(["bash", str(BIN / "reproduce_table1.sh"), *patterns], env=env,
                       check=True)
        calls = Path(str(stub) + ".calls")
        lines = calls.read_text().splitlines()
        calls.unlink()
        return [line.replace(str(runs) + "/", "") for line in lines]

    def asked(name):
        return (runs / name / "config.toml").read_text().split("epochs = ")[1].strip()

    calls = reproduce("cifar-fc-*")
    assert [c for c in calls if c.startswith("train --resume")] == [
        "train --resume cifar-fc-fa", "train --resume cifar-fc-dtp",
        "train --resume cifar-fc-bp --epochs 500", "train --resume cifar-fc-fa --epochs 500",
        "train --resume cifar-fc-dfa --epochs 500"]
    started = [c.split("--out ")[1] for c in calls if "--out" in c]
    assert started == [f"cifar-fc-{a}" for a in ("bp", "dfa", "sdtp", "ao-sdtp", "usf", "brsf",
                                                  "frsf", "kp")]
    assert all("--epochs 100" in c for c in calls if "--out" in c)
    assert [asked(f"cifar-fc-{a}") for a in ("bp", "fa", "dfa", "dtp", "kp")] == [
        "500", "500", "500", "100", "100"]
    assert reproduce("cifar-fc-bp") == ["train --resume cifar-fc-bp"] * 2   # nothing to extend
    assert reproduce("mnist-lc-bp") == [
        f"train --preset paper-mnist --data {data}/mnist --epochs 100 --arch lc --algo bp "
        f"--out mnist-lc-bp"]
