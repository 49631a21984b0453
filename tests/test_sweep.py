"""`lcengine sweep`: spaces, the sweep's trials, resuming after kill -9, workers sharing a
study, the report and its best preset. Trials are 1-epoch quarter-width MNIST-FC runs on 500
images of mnist-mini (a few seconds each)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from lcengine.cli import main as lcengine_main
from lcengine.config import ConfigError
from lcengine.sweep.space import load_space, parse_space
from lcengine.sweep.worker import Worker, has_checkpoint

optuna = pytest.importorskip("optuna")

SMALL = ["--width", "0.25", "--limit-train", "500", "--limit-test", "300",
         "--train-eval-images", "300"]


def cli(*args):
    return CliRunner().invoke(lcengine_main, [str(a) for a in args])


def sweep_process(root, *args):
    command = [sys.executable, "-m", "lcengine", "sweep", "--root", str(root), *map(str, args)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def trials(root: Path) -> list:
    from optuna.storages.journal import JournalFileBackend, JournalStorage
    storage = JournalStorage(JournalFileBackend(str(root / "sweep.journal")))
    return optuna.load_study(study_name="lcengine-sweep", storage=storage).get_trials()


def epochs_of(run_dir: Path) -> list[int]:
    return [json.loads(line)["epoch"] for line in (run_dir / "metrics.jsonl").read_text()
            .splitlines()]


# --- spaces --------------------------------------------------------------------------------
def test_table4_is_the_default_space_and_each_rule_takes_its_keys():
    sdtp, dtp, bp = (load_space(None, algo) for algo in ("sdtp", "dtp", "bp"))
    assert {d.name for d in bp.dimensions} == {"lr", "beta2", "eps"}
    assert bp.fixed == {"beta1": 0.9}
    assert {d.name for d in sdtp.dimensions} == {"lr", "beta2", "eps", "inv_lr", "inv_beta2",
                                                  "inv_eps", "sigma"}
    assert {d.name for d in dtp.dimensions} - {d.name for d in sdtp.dimensions} == {"alpha"}
    lr = {d.name: d for d in sdtp.dimensions}["lr"]
    assert (lr.kind, lr.values) == ("log_uniform", (1e-5, 3e-4))
    wide = {d.name: d for d in load_space("table4-wide", "sdtp").dimensions}
    assert wide["inv_beta1"].values == (0.9, 0.99)
    assert wide["local_loss"].values == ("sum", "mean")


def test_draws_are_reproducible_and_inside_the_space():
    space = parse_space({"lr": {"log_uniform": [1e-4, 1e-2]}, "sigma": {"uniform": [0.1, 0.2]},
                         "eps": [1e-3, 1e-8], "local_loss": ["sum", "mean"], "beta1": 0.9},
                        "test", "sdtp")
    draws = space.draw(40, seed=3)
    assert draws == space.draw(40, seed=3) and draws != space.draw(40, seed=4)
    assert draws[:10] == space.draw(10, seed=3)
    for draw in draws:
        assert all(d.contains(draw[d.name]) for d in space.dimensions)
    lrs = sorted(d["lr"] for d in draws)
    assert lrs[len(lrs) // 2] < 3e-3                  # log-uniform: the median near 1e-3
    assert {d["local_loss"] for d in draws} == {"sum", "mean"}
    assert space.fixed == {"beta1": 0.9}


@pytest.mark.parametrize("raw, wording", [
    ({"lr": {"uniform": [1e-2, 1e-4]}}, "low < high"),
    ({"lr": {"log_uniform": [0.0, 1e-4]}}, "must be > 0"),
    ({"lr": {"normal": [0, 1]}}, "a table must be"),
    ({"batch_size": {"uniform": [16, 64]}}, "real-valued"),
    ({"beta2": [0.9, 1.5]}, "beta2[1]: 1.5 must be in [0, 1)"),
    ({"eps": []}, "non-empty"),
    ({"lerning_rate": 0.1}, "unknown option"),
    ({"epochs": [1, 2]}, "sweep's command"),
    ({"local_loss": ["sum", "max"]}, "not one of"),
])
def test_a_bad_space_is_refused_in_one_line(raw, wording):
    with pytest.raises(ConfigError, match="^space.toml: ") as err:
        parse_space(raw, "space.toml", "sdtp")
    assert wording in str(err.value) and "\n" not in str(err.value)


def test_bad_sweep_commands_are_refused(tmp_path):
    for args, wording in [
        (["--samples", "2"], "--algo is needed"),
        (["--algo", "bp"], "--samples N is needed"),
        (["--algo", "bp", "--samples", "2", "--out", "x"], "--out"),
        (["--algo", "bp", "--samples", "2", "--space", "nowhere.toml"], "no such file"),
        (["--algo", "bp", "--samples", "2", "--dataset", "mnist", "--data", tmp_path / "none"],
         "no such directory"),
    ]:
        result = cli("sweep", "--root", tmp_path / "s", *args)
        assert result.exit_code == 1 and wording in result.output, (args, result.output)
    assert not (tmp_path / "s").exists()
    result = cli("sweep", "--report", tmp_path)
    assert result.exit_code == 1 and "no sweep there" in result.output


# --- a sweep, its report and its best preset ---------------------------------------------------
@pytest.fixture(scope="module")
def sdtp_sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep") / "sdtp"
    result = cli("sweep", "--algo", "sdtp", "--samples", 3, "--epochs", 1, *SMALL, "--root", root)
    assert result.exit_code == 0, result.output
    return root, result.output


def test_a_sweep_trains_each_drawn_configuration_once(sdtp_sweep):
    root, output = sdtp_sweep
    space = load_space("table4", "sdtp")
    done = trials(root)
    assert [t.state.name for t in done] == ["COMPLETE"] * 3
    for trial in done:
        run_dir = root / trial.user_attrs["run_dir"]
        assert run_dir.name == f"trial-{trial.number:04d}" and epochs_of(run_dir) == [1]
        config = dict(line.split(" = ") for line in (run_dir / "config.toml").read_text()
                      .splitlines())
        assert set(trial.params) == {d.name for d in space.dimensions}
        for dimension in space.dimensions:
            value = trial.params[dimension.name]
            assert dimension.contains(value)
            assert float(config[dimension.name]) == value     # trained with what was drawn
        assert config["beta1"] == config["inv_beta1"] == "0.9"  # Table 4 fixes β1
        assert trial.value == trial.user_attrs["best_test_error"]
    assert output.count("trial 2: starting") == 1
    assert len({json.dumps(t.params) for t in done}) == 3
    rerun = cli("sweep", "--root", root)                       # nothing left: nothing runs
    assert rerun.exit_code == 0 and "starting" not in rerun.output


def test_the_report_ranks_trials_and_draws_them(sdtp_sweep):
    root, _ = sdtp_sweep
    result = cli("sweep", "--report", root, "--presets", 2)
    assert result.exit_code == 0, result.output
    rows = [line for line in (root / "sweep.md").read_text().splitlines()
            if line.startswith("| ") and line[2].isdigit()]
    bests = [float(row.split(" | ")[4].split()[0]) for row in rows]
    assert len(rows) == 3 and bests == sorted(bests)
    assert (root / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    for rank, name in ((1, "best.toml"), (2, "best-2.toml")):
        trial = rows[rank - 1].split(" | ")[1]
        assert f"Number {rank} of the sweep" in (root / name).read_text()
        assert f"trial {trial}, best test error" in (root / name).read_text()


def test_the_best_preset_reproduces_its_trial(sdtp_sweep, tmp_path):
    root, _ = sdtp_sweep
    best = min(trials(root), key=lambda t: t.value)
    again = tmp_path / "again"
    result = cli("train", "--config", root / "best.toml", "--out", again)
    assert result.exit_code == 0, result.output
    keys = ("train_error", "test_error", "loss", "test_loss")
    original = [json.loads(line) for line in (root / best.user_attrs["run_dir"] /
                                              "metrics.jsonl").read_text().splitlines()]
    repeated = [json.loads(line) for line in (again / "metrics.jsonl").read_text().splitlines()]
    assert [{k: r[k] for k in keys} for r in repeated] == [{k: r[k] for k in keys}
                                                           for r in original]


def test_a_worker_with_another_definition_is_refused(sdtp_sweep):
    root, _ = sdtp_sweep
    result = cli("sweep", "--algo", "sdtp", "--samples", 4, "--epochs", 1, *SMALL,
                 "--root", root)
    assert result.exit_code == 1 and "samples: given 4, saved 3" in result.output


# --- resuming and sharing ---------------------------------------------------------------------
def wait_for(condition, what: str, seconds: float = 120.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.slow
def test_a_killed_sweep_resumes_and_finishes_every_trial_once(tmp_path):
    root = tmp_path / "sweep"
    args = ["--algo", "bp", "--samples", 3, "--epochs", 2, *SMALL]
    worker = sweep_process(root, *args)
    wait_for(lambda: has_checkpoint(root / "trial-0001"), "trial 1's first checkpoint")
    os.kill(worker.pid, signal.SIGKILL)                    # its trial checkpoints and stops
    worker.communicate()
    rerun = sweep_process(root, *args)
    output, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, output
    done = trials(root)
    assert [t.state.name for t in done] == ["COMPLETE"] * 3
    for trial in done:
        assert epochs_of(root / f"trial-{trial.number:04d}") == [1, 2]
    assert len(done[1].user_attrs["workers"]) == 2         # started, then adopted
    assert "resuming" in (root / "trial-0001.log").read_text()
    assert output.count("starting") + output.count("resuming") == 2   # trials 1 and 2 only
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == [
        "trial-0000", "trial-0001", "trial-0002"]


@pytest.mark.slow
def test_two_workers_share_a_sweep_without_running_a_trial_twice(tmp_path):
    root = tmp_path / "sweep"
    args = ["--algo", "bp", "--samples", 4, "--epochs", 1, *SMALL]
    first = sweep_process(root, *args)
    wait_for(lambda: (root / "trial-0000").is_dir(), "the first trial")
    second = sweep_process(root, *args)
    outputs = [p.communicate(timeout=300)[0] for p in (first, second)]
    assert first.returncode == second.returncode == 0, outputs
    done = trials(root)
    assert [t.state.name for t in done] == ["COMPLETE"] * 4
    assert all(len(t.user_attrs["workers"]) == 1 for t in done)
    assert len({t.user_attrs["workers"][0] for t in done}) == 2       # both worked
    assert sum(o.count("starting") for o in outputs) == 4
    assert not any("resuming" in o for o in outputs)


@pytest.mark.slow
@pytest.mark.parametrize("worker_delay", [0, 1.5], ids=["prompt-worker", "busy-worker"])
def test_successive_halving_prunes_a_trial_behind_the_best_at_its_rung(tmp_path, monkeypatch,
                                                                       worker_delay):
    # a busy worker looks at its trials seconds late, long after several of these tiny epochs:
    # the trial waits for its worker at each epoch's end, so the same trials are pruned
    follow = Worker.follow

    def late_follow(self, run):
        time.sleep(worker_delay)
        follow(self, run)
    monkeypatch.setattr(Worker, "follow", late_follow)
    root = tmp_path / "sweep"
    result = cli("sweep", "--algo", "bp", "--samples", 3, "--epochs", 10, *SMALL, "--root", root,
                 "--prune", "halving", "--prune-after", 1)
    assert result.exit_code == 0, result.output
    # rungs at 1, 3 and 9 epochs, the best third of a rung goes on: with three trials run one
    # after the other, a trial stops at the first rung where it is behind every earlier trial
    # that reached that rung
    at_rung, expected = {1: [], 3: [], 9: []}, []
    for trial in trials(root):
        state = "COMPLETE"
        for rung, values in at_rung.items():
            error = trial.intermediate_values[rung]
            if values and error > min(values):
                state = "PRUNED"
            values.append(error)
            if state == "PRUNED":
                break
        expected.append(state)
        assert trial.state.name == state, (trial.number, trial.intermediate_values)
        assert (f"trial {trial.number}: pruned after epoch" in result.output) == (
            state == "PRUNED")
    assert "PRUNED" in expected                   # else this seed tests nothing


def _mpiexec() -> str | None:
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


@pytest.mark.slow
@pytest.mark.skipif(_mpiexec() is None or importlib.util.find_spec("mpi4py") is None,
                    reason="needs mpi4py and an MPI launcher: pip install \"lcengine[mpi]\"")
def test_mpiexec_starts_workers_whose_trials_train_as_one_process_each(tmp_path):
    root = tmp_path / "sweep"
    command = [_mpiexec(), "-n", "2", sys.executable, "-m", "lcengine", "sweep", "--algo", "bp",
               "--samples", "3", "--epochs", "1", *SMALL, "--root", str(root)]
    output = subprocess.run(command, capture_output=True, text=True, timeout=240).stdout
    done = trials(root)
    assert [t.state.name for t in done] == ["COMPLETE"] * 3, output
    assert all(len(t.user_attrs["workers"]) == 1 for t in done)
