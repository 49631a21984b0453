"""bin/gpu-check runs to its end without a GPU: the GPU-only commands stop at their one-line "needs
a GPU" message and are reported as skipped, the Numba CUDA kernels run on the simulator, the
epochs on the CPU; a stage that fails is a line, and the stages after it still run."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from lcengine.cli import main

REPO = Path(__file__).resolve().parents[1]
GPU_CHECK = REPO / "bin" / "gpu-check"

pytestmark = pytest.mark.skipif(importlib.util.find_spec("cupy") is not None,
                                reason="CuPy is installed here: gpu-check would use the GPU")


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """Two ImageNet classes in the ILSVRC folder layout, two images each split, prepared."""
    source = tmp_path_factory.mktemp("imagenet-source")
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for wnid in ("n01440764", "n02102040"):
            folder = source / split / wnid
            folder.mkdir(parents=True)
            for k in range(2):
                pixels = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{wnid}_{k}.JPEG")
    out = tmp_path_factory.mktemp("imagenet-sample")
    result = CliRunner().invoke(main, ["prep", "imagenet", "--source", str(source), "--out",
                                       str(out), "--resize", "64", "--crop", "64",
                                       "--workers", "1"])
    assert result.exit_code == 0, result.output
    return out


def gpu_check(*args, out):
    run = subprocess.run([sys.executable, str(GPU_CHECK), "--out", str(out), *args],
                         capture_output=True, text=True, timeout=900)
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert (out / "gpu-check.jsonl").read_text().splitlines() == run.stdout.splitlines()
    return run.returncode, lines


def test_runs_to_its_end_with_gpu_parts_skipped(sample, tmp_path):
    code, lines = gpu_check("--data", str(sample), "--rule", "fa", out=tmp_path)
    assert lines[0]["gpu"] is False and lines[-1]["gpu_check"] == "done"
    assert lines[-1]["stages"] == {
        "versions": "ok", "compile": "ok", "tests": "skipped", "bench-ops": "skipped",
        "bench-ops-tf32": "skipped", "bench-train": "skipped", "epochs": "ok"}, lines[-1]
    assert code == 0
    assert all("stage" in line for line in lines[:-1])
    by_part = {(line["stage"], line.get("part")): line for line in lines[:-1]
               if "status" not in line}
    assert by_part[("versions", "versions")]["numpy"] == np.__version__
    simulated = [line for line in lines if line.get("kernels") == "numba targets_cuda"]
    assert simulated[0]["simulator"] is True and simulated[0]["max_abs_err"] < 1e-9
    tests = next(line for line in lines if "pytest" in line)["pytest"]
    assert tests["tests"] > 0 and tests["skipped"] == tests["tests"]
    skipped = [line for line in lines if line.get("status") == "skipped" and "reason" in line]
    assert {line["stage"] for line in skipped} == {"compile", "bench-ops", "bench-ops-tf32",
                                                   "bench-train"}
    assert all("cupy" in line["reason"].lower() for line in skipped)
    epoch = by_part[("epochs", "fa")]
    assert epoch["epoch"] == 1 and 0 <= epoch["test_error"] <= 100
    assert "gpu-check.log" in {p.name for p in tmp_path.iterdir()}


def test_a_failing_stage_is_reported_and_the_rest_still_run(tmp_path):
    code, lines = gpu_check("--data", str(tmp_path / "missing"), "--rule", "bp", "--stage",
                            "epochs", "--stage", "versions", out=tmp_path / "out")
    assert code == 1
    assert lines[-1]["stages"] == {"versions": "ok", "epochs": "failed"}
    failure = next(line for line in lines if line.get("part") == "bp" and "reason" in line)
    assert failure["status"] == "failed" and "missing" in failure["reason"]
