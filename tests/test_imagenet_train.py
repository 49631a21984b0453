"""ImageNet end to end on the CPU, through the same code path a GPU run takes: shards prepared
from the real sample, `lcengine train --dataset imagenet` on a reduced-width imagenet-lc (the
eval split is val; top-1 and top-5 in the records and in `lcengine eval`), the loss falls on a
repeated batch, a resumed run matches an uninterrupted one, and `lcengine bench train` runs with
the real loader."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from lcengine import checkpoint
from lcengine import train as training
from lcengine.cli import main
from lcengine.config import resolve

TINY = {"dataset": "imagenet", "arch": "lc", "width": 0.0625, "batch_size": 2, "limit_train": 6,
        "limit_test": 4, "train_eval_images": 4, "epochs": 2}


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def imagenet_dir(shared_data, tmp_path_factory):
    """2 images of each of the sample's 10 classes, train and val, stored as JPEG at 224x224."""
    out = tmp_path_factory.mktemp("imagenet")
    result = invoke("prep", "imagenet", "--source", shared_data / "imagenet_sample", "--out", out,
                    "--limit", "2", "--workers", "1")
    assert result.exit_code == 0, result.output
    return out


def config(imagenet_dir, out, **overrides):
    resolved, _ = resolve([("test", {**TINY, "data": str(imagenet_dir), "algo": "fa",
                                     "out": str(out), **overrides})])
    return resolved


def without_timing(record):
    return {k: v for k, v in record.items() if k not in ("seconds", "images_per_s")}


def test_train_eval_and_resume(imagenet_dir, tmp_path):
    whole = training.start(config(imagenet_dir, tmp_path / "whole"), tmp_path / "whole",
                           echo=lambda line: None)
    assert [r["epoch"] for r in whole] == [1, 2]
    for record in whole:
        assert 0 <= record["test_top5_error"] <= record["test_error"] <= 100
        assert 0 <= record["train_top5_error"] <= record["train_error"] <= 100

    cut = tmp_path / "cut"
    training.start(config(imagenet_dir, cut, epochs=1), cut, echo=lambda line: None)
    resumed = training.resume(cut, epochs=2, echo=lambda line: None)
    assert [without_timing(r) for r in resumed] == [without_timing(r) for r in whole]
    want = checkpoint.load(checkpoint.latest(tmp_path / "whole")[0])["run"]
    got = checkpoint.load(checkpoint.latest(cut)[0])["run"]
    for key, array in want["forward"].items():
        np.testing.assert_array_equal(got["forward"][key], array, err_msg=key)

    result = invoke("eval", cut, "--limit", "4")
    assert result.exit_code == 0, result.output
    assert f"val error {resumed[-1]['test_error']:.2f}%, top-5 error" in result.output


@pytest.mark.parametrize("algo", ["fa", "dfa", "sdtp"])
def test_loss_falls_on_a_repeated_batch(imagenet_dir, tmp_path, algo):
    overrides = {"lr": 1e-3} if algo != "sdtp" else {"lr": 1e-3, "schedule": "parallel"}
    run = training.Run(config(imagenet_dir, tmp_path / "run", algo=algo, **overrides))
    x, labels = next(training.take(run.train_loader, 0, 0, 1))
    losses = [float(run.step(x, labels, run.config.phases[0]).loss) for _ in range(6)]
    assert losses[-1] < losses[0], losses


def test_bench_train_with_the_real_loader(imagenet_dir, capsys):
    from lcengine.bench import _benchmark
    record = _benchmark("bench_train").run("imagenet-lc", "fa", 0.0625, 2, 2, "cpu",
                                           data=imagenet_dir)
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == json.loads(json.dumps(record))
    assert record["synthetic"]["images_per_s"] > 0 and record["loader"]["loader_images_per_s"] > 0
    assert record["memory"]["peak_rss_bytes"] > record["memory_budget_bytes"]["weights"]
