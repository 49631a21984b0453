"""Data-parallel training (lcengine.distributed): K processes give one process's update.

The pieces are tested in this process; the whole under `mpiexec -n 2` where mpi4py and an MPI
launcher are installed (`pip install "lcengine[mpi]"`), skipped otherwise."""

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

import numpy as np
import pytest

from lcengine import distributed
from lcengine.backend import get_backend
from lcengine.data.transforms import random_crop_flip, random_resized_crop_flip

HERE = Path(__file__).parent
BACKEND = get_backend("cpu", "fast")


# --- the pieces, in one process -----------------------------------------------------------------
@pytest.mark.parametrize("n, size", [(12, 2), (13, 2), (7, 3), (100, 4)])
def test_rows_cover_the_batch_once_in_rank_order(n, size):
    parts = [distributed.rows(n, r, size) for r in range(size)]
    assert parts[0][0] == 0 and parts[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
    assert max(hi - lo for lo, hi in parts) - min(hi - lo for lo, hi in parts) <= 1


@pytest.mark.parametrize("augment", [random_crop_flip, random_resized_crop_flip])
def test_augmenting_rows_draws_what_the_whole_batch_draws(augment):
    images = np.random.default_rng(0).integers(0, 256, (9, 3, 16, 16), dtype=np.uint8)
    whole = augment(images, np.random.default_rng(5))
    for lo, hi in [distributed.rows(9, r, 2) for r in range(2)]:
        part = augment(images[lo:hi], np.random.default_rng(5), 9, lo)
        np.testing.assert_array_equal(part, whole[lo:hi])


@pytest.mark.parametrize("batch_last", [False, True])
def test_noise_rows_are_the_rows_of_one_process_noise(batch_last):
    n = 10
    h = np.zeros((4, 3, 5, n), np.float32).transpose(3, 0, 1, 2) if batch_last \
        else np.zeros((n, 4, 3, 5), np.float32)
    whole = BACKEND.rng(1).normal_like(h, 0.5)
    for rank in range(3):
        lo, hi = distributed.rows(n, rank, 3)
        rng = distributed.PartRng(BACKEND.rng(1), np)
        rng.rows = (lo, hi, n)
        np.testing.assert_array_equal(rng.normal_like(h[lo:hi], 0.5), whole[lo:hi])


class SumOfTwo:
    """A collective over two identical processes: each bucket doubles; records bucket sizes."""

    def __init__(self):
        self.sizes = []

    def start(self, buffer):
        self.sizes.append(buffer.size)
        buffer *= 2
        return "request"

    def wait(self, requests):
        assert requests == ["request"] * len(self.sizes)


def test_reducer_sums_weighted_gradients_in_buckets_in_arrival_order(monkeypatch):
    monkeypatch.setattr(distributed, "BUCKET_BYTES", 64 * 4)
    collective = SumOfTwo()
    reducer = distributed.GradientReducer(BACKEND, collective)
    grads = {f"{l}.W": np.full((8, 4), l + 1.0, np.float32) for l in (2, 1, 0)}
    reducer.begin(0.5)
    reducer.add({"2.W": grads["2.W"]})                     # 32 values: under a bucket
    reducer.add({"1.W": grads["1.W"]})                     # 64: the first bucket starts
    forward, inverse, sums = reducer.finish({"0.W": grads["0.W"], "1.W": grads["1.W"],
                                             "2.W": grads["2.W"]}, {}, [3.0, 1.0])
    assert collective.sizes == [64, 32 + 2]
    for key, g in grads.items():
        np.testing.assert_array_equal(forward[key], g)      # 2 processes × 0.5 × g
    assert inverse == {} and sums == [3.0, 1.0]


def test_an_mpi_launch_without_mpi4py_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    monkeypatch.setattr(distributed, "_WORLD", None)
    with pytest.raises(distributed.DistributedError, match="pip install"):
        distributed.world()


def test_one_process_is_the_plain_group(monkeypatch):
    for var in distributed.LAUNCHER_SIZE_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(distributed, "_WORLD", None)
    group = distributed.world()
    assert (group.rank, group.size, group.reducer(BACKEND)) == (0, 1, None)


# --- the whole, under mpiexec -n 2 ----------------------------------------------------------------
def _mpiexec() -> str | None:
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


MPIEXEC = _mpiexec()
needs_mpi = pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None or MPIEXEC is None,
                               reason="needs mpi4py and an MPI launcher: pip install "
                                      "\"lcengine[mpi]\"")


def mpi(n, *args, **kw):
    return subprocess.Popen([MPIEXEC, "-n", str(n), sys.executable, *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def finished(process, timeout=240):
    out, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, out
    return out


@needs_mpi
def test_every_rule_on_two_processes_is_one_process_update(tmp_path):
    """bp, fa, dfa, usf, brsf, frsf, kp and tp, dtp, sdtp, ao-sdtp (parallel and alternating), FC
    and LC, float64:
    2 processes × 6 rows = 1 process × 12 to 1e-12; the script also checks that both
    processes hold the same bits."""
    finished(mpi(1, HERE / "mpi_rules.py", tmp_path / "one.npz"))
    finished(mpi(2, HERE / "mpi_rules.py", tmp_path / "two.npz"))
    one, two = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    assert sorted(one.files) == sorted(two.files) and len(one.files) > 100
    for key in one.files:
        np.testing.assert_allclose(two[key], one[key], rtol=0, atol=1e-12, err_msg=key)


def _gpus() -> int:
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount()
    except Exception:                    # no CuPy, no driver, no device: no GPU to use
        return 0


@needs_mpi
@pytest.mark.gpu
@pytest.mark.skipif(_gpus() < 2, reason="NCCL sums between GPUs need two GPUs (NCCL refuses two "
                                        "processes on one)")
def test_every_rule_on_two_gpus_over_nccl_is_one_gpu_update(tmp_path):
    finished(mpi(1, HERE / "mpi_rules.py", tmp_path / "one.npz", "gpu"))
    finished(mpi(2, HERE / "mpi_rules.py", tmp_path / "two.npz", "gpu"))
    one, two = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    for key in one.files:
        np.testing.assert_allclose(two[key], one[key], rtol=0, atol=1e-12, err_msg=key)


TRAIN = ["-m", "lcengine", "train", "--dataset", "mnist-mini", "--width", "0.25",
         "--limit-train", "384", "--train-eval-images", "256", "--limit-test", "256",
         "--batch-size", "32", "--algo", "dtp"]


def records(run_dir):
    lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in ("seconds", "images_per_s")}
            for line in lines]


@needs_mpi
def test_cli_on_two_processes_trains_as_one(tmp_path):
    finished(mpi(1, *TRAIN, "--epochs", "2", "--out", tmp_path / "one"))
    out = finished(mpi(2, *TRAIN, "--epochs", "2", "--out", tmp_path / "two"))
    assert out.count("epoch 2/2") == 1                         # rank 0 alone prints
    one, two = records(tmp_path / "one"), records(tmp_path / "two")
    assert [r["epoch"] for r in two] == [1, 2]
    for a, b in zip(one, two):
        assert a["test_error"] == pytest.approx(b["test_error"], abs=0.5)
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)


def _rank_pid(root_pid: int, rank: int) -> int | None:
    """The process of `rank` among the descendants of `root_pid` (by its PMI_RANK)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            environ = (stat.parent / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append((int(stat.parent.name), environ))
    todo = [root_pid]
    while todo:
        for pid, environ in children.get(todo.pop(), []):
            if f"PMI_RANK={rank}".encode() in environ and b"lcengine" in \
                    (Path("/proc") / str(pid) / "cmdline").read_bytes():
                return pid
            todo.append(pid)
    return None


@needs_mpi
def test_killing_one_process_ends_the_job_and_the_resume_matches(tmp_path):
    whole = tmp_path / "whole"
    finished(mpi(2, *TRAIN, "--epochs", "3", "--out", whole))
    cut = tmp_path / "cut"
    job = mpi(2, *TRAIN, "--epochs", "3", "--out", cut)
    deadline = time.monotonic() + 120
    while not (cut / "metrics.jsonl").exists() or not (cut / "metrics.jsonl").read_text():
        assert job.poll() is None and time.monotonic() < deadline, "no epoch finished"
        time.sleep(0.05)
    os.kill(_rank_pid(job.pid, 1), signal.SIGKILL)
    started = time.monotonic()
    out, _ = job.communicate(timeout=30)
    assert job.returncode != 0 and time.monotonic() - started < 30
    assert "KILLED" in out.upper() or "TERMINATION" in out.upper(), out
    finished(mpi(2, "-m", "lcengine", "train", "--resume", cut))
    assert records(cut) == records(whole)
