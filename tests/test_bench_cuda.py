"""benchmarks/bench_cuda.py imports cleanly and, without CuPy or a GPU, exits with one line."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_cuda.py"


def test_bench_cuda_without_gpu_exits_with_one_line():
    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed here: the benchmark would try to run")
    run = subprocess.run([sys.executable, "-W", "error", str(BENCH)], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.count("\n") == 1 and "nothing timed" in run.stderr, run.stderr
