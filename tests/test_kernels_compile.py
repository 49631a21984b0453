"""Every CUDA C source in kernels/ compiles with nvcc -ptx for sm_80 (A100) and sm_90 (H100/H200),
warnings as errors, and exports the extern "C" kernels its launcher calls. Runs without a GPU;
skipped with a message where nvcc is absent."""

import re
import shutil
import subprocess

import pytest

from lcengine.ops.kernel_source import KERNEL_DIR, KERNELS

SOURCES = sorted(KERNEL_DIR.glob("*.cu"))
ARCHS = ["sm_80", "sm_90"]


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_kernel_compiles(source, arch, tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not found: the CUDA kernels are compiled only where the toolkit is")
    out = tmp_path / f"{source.stem}_{arch}.ptx"
    run = subprocess.run([nvcc, "-ptx", f"-arch={arch}", "-std=c++17", "-Werror", "all-warnings",
                          str(source), "-o", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, f"{source} does not compile for {arch}:\n{run.stderr}"
    entries = set(re.findall(r"\.entry\s+(\w+)", out.read_text()))
    missing = set(KERNELS[source.name]) - entries
    assert not missing, f"{source}: kernels {sorted(missing)} missing from the PTX for {arch}"


def test_sources_found():
    assert set(KERNELS) == {p.name for p in SOURCES}, f"kernel sources in {KERNEL_DIR}"
