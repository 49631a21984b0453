"""Every CUDA C source in kernels/ compiles for sm_80 (A100) and sm_90 (H100/H200) and exports the
extern "C" kernels its launcher calls: with nvcc -ptx, warnings as errors; and with NVRTC, what
CuPy compiles the launchers' kernels with at run time (no host headers: a `#include <stdint.h>`
passes nvcc and fails there), called through ctypes. Runs without a GPU; each is skipped with a
message where nvcc or libnvrtc is absent (the test extra installs libnvrtc from PyPI)."""

import ctypes
import glob
import importlib.util
import os
import re
import shutil
import subprocess

import pytest

from lcengine.ops.kernel_source import KERNEL_DIR, KERNELS, NVRTC_OPTIONS

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


def _libnvrtc():
    """libnvrtc from the nvidia-cuda-nvrtc wheel (where CuPy finds it too), the CUDA toolkit, or
    the loader's path; None if there is none."""
    found = []
    spec = importlib.util.find_spec("nvidia")
    for root in (spec.submodule_search_locations or []) if spec else []:
        found += sorted(glob.glob(os.path.join(root, "*", "lib", "libnvrtc.so*")))
    for home in (os.environ.get("CUDA_HOME"), "/usr/local/cuda"):
        if home:
            found += sorted(glob.glob(os.path.join(home, "lib64", "libnvrtc.so*")))
    for path in [*found, "libnvrtc.so"]:
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def _nvrtc_ptx(lib, source, arch):
    """(ok, PTX or the compile log) of `source` compiled by NVRTC with the launchers' options."""
    program = ctypes.c_void_p()
    code = source.read_text(encoding="utf-8").encode()
    assert lib.nvrtcCreateProgram(ctypes.byref(program), code, source.name.encode(), 0, None,
                                  None) == 0
    options = [o.encode() for o in (*NVRTC_OPTIONS, f"--gpu-architecture=compute_{arch}")]
    try:
        status = lib.nvrtcCompileProgram(program, len(options),
                                         (ctypes.c_char_p * len(options))(*options))
        size = ctypes.c_size_t()
        if status != 0:
            lib.nvrtcGetProgramLogSize(program, ctypes.byref(size))
            log = ctypes.create_string_buffer(size.value)
            lib.nvrtcGetProgramLog(program, log)
            return False, log.value.decode(errors="replace")
        lib.nvrtcGetPTXSize(program, ctypes.byref(size))
        ptx = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetPTX(program, ptx)
        return True, ptx.value.decode()
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(program))


@pytest.mark.parametrize("arch", ["80", "90"])
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_kernel_compiles_with_nvrtc(source, arch):
    lib = _libnvrtc()
    if lib is None:
        pytest.skip("libnvrtc not found (pip install nvidia-cuda-nvrtc, or a CUDA toolkit with it)")
    ok, out = _nvrtc_ptx(lib, source, arch)
    assert ok, f"{source} does not compile with NVRTC for compute_{arch}:\n{out}"
    missing = set(KERNELS[source.name]) - set(re.findall(r"\.entry\s+(\w+)", out))
    assert not missing, f"{source}: kernels {sorted(missing)} missing from NVRTC's PTX"


def test_nvrtc_check_catches_a_host_header(tmp_path):
    """The reason for the NVRTC check: a header nvcc finds on the host and NVRTC does not."""
    lib = _libnvrtc()
    if lib is None:
        pytest.skip("libnvrtc not found")
    source = tmp_path / "host_header.cu"
    source.write_text('#include <stdint.h>\nextern "C" __global__ void k(uint64_t* a) '
                      '{ a[0] = 1; }\n')
    ok, log = _nvrtc_ptx(lib, source, "90")
    assert not ok and "stdint.h" in log
