"""What a wheel carries and how tools start lcengine. The wheel itself is built, installed in a
fresh venv and run by bin/wheel-check (in CI after the tests: it takes a minute, mostly pip);
these are the fast checks of the layout it relies on."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import lcengine
from lcengine.bench import _benchmark
from lcengine.ops.kernel_source import KERNEL_DIR, kernel_path

REPO = Path(__file__).resolve().parents[1]


def test_package_links_to_the_top_level_kernels_and_benchmarks():
    package = Path(lcengine.__file__).parent
    for name in ("kernels", "benchmarks"):
        assert (package / name).resolve() == REPO / name, f"lcengine/{name}"
    assert KERNEL_DIR.resolve() == REPO / "kernels"
    sources = sorted((REPO / "kernels").glob("*.cu"))
    assert sources and all(kernel_path(p.name).read_bytes() == p.read_bytes() for p in sources)


def test_wheel_ships_kernel_sources_as_package_data():
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert any(re.fullmatch(r"lcengine\*?", pattern)
               for pattern in setuptools["packages"]["find"]["include"])
    assert "*.cu" in setuptools["package-data"]["lcengine.kernels"]


def test_bench_commands_import_the_packaged_benchmarks():
    assert _benchmark("bench_train").__name__ == "lcengine.benchmarks.bench_train"
    assert _benchmark("bench_lc").__name__ == "lcengine.benchmarks.bench_lc"


def test_python_dash_m_lcengine_runs_the_cli():
    run = subprocess.run([sys.executable, "-m", "lcengine", "--version"], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == f"lcengine, version {lcengine.__version__}"


def test_no_tool_runs_an_lcengine_found_on_path():
    """Tools and tests spawn `sys.executable -m lcengine`: the `lcengine` on PATH may be another
    install's, or absent when the venv is not activated."""
    spawned = re.compile(r"""\[\s*["']lcengine["']\s*,""")
    offenders = [f"{path.relative_to(REPO)}:{number}"
                 for folder in ("bin", "tests", "lcengine", "benchmarks", "data_prep")
                 for path in (REPO / folder).rglob("*.py")
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if spawned.search(line)]
    assert not offenders, offenders
    for script in (REPO / "bin").glob("*.sh"):
        text = script.read_text()
        if re.search(r"^\s*lcengine ", text, re.M):
            assert 'lcengine() { "${PYTHON:-python3}" -m lcengine "$@"; }' in text, script.name
