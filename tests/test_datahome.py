"""The data home and the paper's net by default: `lcengine prep DATASET` without --out writes to
`<home>/DATASET`, `lcengine train --dataset DATASET` without --data reads it, a dataset not
prepared there is a one-line error with the prep command, and `lcengine info` lists the home.
The headline command, `lcengine train --algo fa --dataset imagenet --epochs 1`, runs as typed
(shrunk with --width and --limit-train) on the real ImageNet sample."""

import json
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from lcengine import datahome
from lcengine.cli import main
from lcengine.config import ConfigError, resolve
from lcengine.data import DataError


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def one_line_error(result) -> str:
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error: "), \
        result.output
    return lines[0]


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("LCENGINE_DATA", str(tmp_path / "home"))
    return tmp_path / "home"


def test_the_env_var_names_the_home_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LCENGINE_DATA", "relative/home")
    assert datahome.data_home() == tmp_path / "relative" / "home"
    assert datahome.dataset_dir("cifar10") == tmp_path / "relative" / "home" / "cifar10"
    assert datahome.home_origin() == "$LCENGINE_DATA"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the XDG layout is Linux's")
@pytest.mark.parametrize("env_value", [None, ""])
def test_without_the_env_var_the_home_is_the_xdg_data_dir(tmp_path, monkeypatch, env_value):
    if env_value is None:
        monkeypatch.delenv("LCENGINE_DATA")
    else:
        monkeypatch.setenv("LCENGINE_DATA", env_value)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert datahome.data_home() == tmp_path / "xdg" / "lcengine"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert datahome.data_home() == tmp_path / "user" / ".local" / "share" / "lcengine"
    assert "per-user default" in datahome.home_origin()


@pytest.mark.parametrize("dataset, command", [
    ("mnist", "lcengine prep mnist --download"),
    ("cifar10", "lcengine prep cifar10 --download"),
    ("imagenet", "lcengine prep imagenet --source ILSVRC2012_DIR"),
])
def test_a_dataset_not_in_the_home_is_one_line_with_the_prep_command(home, dataset, command):
    line = one_line_error(invoke("train", "--dataset", dataset))
    assert line == (f"Error: {home / dataset}: {dataset} is not prepared in the data home "
                    f"($LCENGINE_DATA); run: {command}  (or give --data DIR)")
    (home / dataset).mkdir(parents=True)              # a prep that was interrupted
    line = one_line_error(invoke("train", "--dataset", dataset))
    assert f"{dataset} holds an unfinished prep in the data home" in line and command in line


@pytest.mark.parametrize("dataset, arch, why", [
    ("mnist-mini", "fc", "the first of Table 1's MNIST nets (fc, lc)"),
    ("mnist", "fc", "the first of Table 1's MNIST nets (fc, lc)"),
    ("cifar10", "fc", "the first of Table 1's CIFAR-10 nets (fc, lc)"),
    ("imagenet", "lc", "the paper's only ImageNet net"),
])
def test_arch_defaults_to_the_papers_net_and_says_so(tmp_path, dataset, arch, why):
    data = {} if dataset == "mnist-mini" else {"data": str(tmp_path)}
    config, notes = resolve([("test", {"dataset": dataset, **data})])
    assert config.arch == arch and config.net.endswith("-" + arch)
    assert f"arch {arch}: {why}" in notes
    given, notes = resolve([("test", {"dataset": dataset, "arch": "conv", **data})])
    assert given.arch == "conv" and not any(n.startswith("arch ") for n in notes)


def test_a_fully_connected_imagenet_net_is_still_refused(tmp_path):
    with pytest.raises(ConfigError, match="no fully-connected ImageNet net"):
        resolve([("cli", {"dataset": "imagenet", "arch": "fc", "data": str(tmp_path)})])


def test_given_data_wins_over_the_home(home, tmp_path):
    config, notes = resolve([("test", {"dataset": "mnist", "data": str(tmp_path)})])
    assert config.data == str(tmp_path) and not any(n.startswith("data ") for n in notes)
    with pytest.raises(DataError, match="mnist is not prepared"):
        resolve([("test", {"dataset": "mnist"})])


def test_headline_command_trains_imagenet_lc_from_the_home(shared_data, home, tmp_path,
                                                           monkeypatch):
    result = invoke("prep", "imagenet", "--source", shared_data / "imagenet_sample", "--limit", "2",
                    "--workers", "1")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == f"wrote {home / 'imagenet'}"
    info = invoke("info").output.splitlines()
    assert f"data home: {home} ($LCENGINE_DATA); prepared:" in info
    assert "  imagenet: imagenet (jpeg), train 20, val 20" in info

    monkeypatch.chdir(tmp_path)                       # the default run directory is ./runs/...
    result = invoke("train", "--algo", "fa", "--dataset", "imagenet", "--epochs", "1",
                    "--width", "0.0625", "--limit-train", "6")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "# arch lc: the paper's only ImageNet net" in lines
    assert f"# data {home / 'imagenet'}: the data home ($LCENGINE_DATA)" in lines
    assert any(line.startswith("# lr, beta1, beta2, eps from Table 5, ImageNet LC, fa")
               for line in lines)
    epoch = next(line for line in lines if line.startswith("epoch 1/1"))
    assert " test " in epoch and " top-5 " in epoch
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.startswith("imagenet-lc-fa-")
    saved = tomllib.loads((run / "config.toml").read_text())
    assert (saved["arch"], saved["data"]) == ("lc", str(home / "imagenet"))
    (record,) = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert 0 <= record["test_top5_error"] <= record["test_error"] <= 100


def test_info_reports_an_empty_home_and_unfinished_or_damaged_sets(home):
    assert f"data home: {home} ($LCENGINE_DATA); nothing prepared yet (lcengine prep DATASET)" \
        in invoke("info").output.splitlines()
    (home / "cifar10").mkdir(parents=True)
    (home / "mnist").mkdir()
    (home / "mnist" / "manifest.json").write_text("{not json")
    assert datahome.describe_prepared() == [
        "cifar10: unfinished prep (no manifest.json); rerun: lcengine prep cifar10 --download",
        "mnist: unreadable manifest.json (JSONDecodeError: Expecting property name enclosed in "
        "double quotes: line 1 column 2 (char 1))"]
