"""The C core on its own: built by CMake with and without OpenMP, its API
reproduces the worked example from C (csrc/tests/worked_example.c)."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(
    shutil.which("cmake") is None or not (ROOT / "CMakeLists.txt").exists(),
    reason="needs cmake and the source tree",
)
@pytest.mark.parametrize("openmp", ["ON", "OFF"])
def test_c_core_builds_and_reproduces_the_worked_example(tmp_path, openmp):
    configure = [
        "cmake", "-S", str(ROOT), "-B", str(tmp_path),
        "-DFASTMLP_PYTHON=OFF", "-DFASTMLP_C_TESTS=ON", f"-DFASTMLP_OPENMP={openmp}",
    ]
    subprocess.run(configure, check=True, capture_output=True, text=True)
    build = subprocess.run(
        ["cmake", "--build", str(tmp_path), "-j", "2"], capture_output=True, text=True
    )
    assert build.returncode == 0, build.stdout + build.stderr
    assert "warning" not in build.stdout + build.stderr
    run = subprocess.run([str(tmp_path / "fastmlp_worked_example")], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout
    assert run.stdout.strip() == f"ok (openmp {1 if openmp == 'ON' else 0})"
