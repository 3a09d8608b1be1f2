"""The C core on its own: built by CMake with and without threads, with
warnings as errors, its C API test program (csrc/tests/engine_test.c) passes
under every instruction set this CPU runs: the worked example, results
independent of the thread count, Ctrl-C."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("cmake") is None or not (ROOT / "CMakeLists.txt").exists(),
    reason="needs cmake and the source tree",
)
@pytest.mark.parametrize("threads", ["ON", "OFF"])
def test_c_core_builds_and_passes_its_tests(tmp_path, threads):
    configure = [
        "cmake", "-S", str(ROOT), "-B", str(tmp_path), "-DFASTMLP_PYTHON=OFF",
        "-DFASTMLP_C_TESTS=ON", "-DFASTMLP_WERROR=ON", f"-DFASTMLP_THREADS={threads}",
    ]
    subprocess.run(configure, check=True, capture_output=True, text=True)
    build = subprocess.run(
        ["cmake", "--build", str(tmp_path), "-j", "2"], capture_output=True, text=True
    )
    assert build.returncode == 0, build.stdout + build.stderr
    assert "warning" not in build.stdout + build.stderr
    run = subprocess.run([str(tmp_path / "fastmlp_engine_test")], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout
    lines = run.stdout.strip().splitlines()
    assert lines[-1] == f"ok (threads {'pthreads' if threads == 'ON' else 'none'})"
    kernels = [line for line in lines if line.startswith("isa ") and line.endswith(": ok")]
    assert kernels, run.stdout
    for line in kernels:
        isa = line.split()[1].rstrip(":")
        shape = r"\d+x\d+(/\d+x\d+)?"  # a second shape for products with few rows
        assert re.search(rf"kernels {isa} {shape} \(float32\), {isa} {shape} \(float64\)", line)


@pytest.mark.skipif(
    shutil.which("cython") is None or not (ROOT / "src" / "fastmlp" / "_fastmlp_engine.pyx").exists(),
    reason="needs cython and the source tree",
)
def test_cython_binding_translates_without_warnings(tmp_path):
    source = ROOT / "src" / "fastmlp" / "_fastmlp_engine.pyx"
    result = subprocess.run(
        ["cython", "-3", str(source), "-o", str(tmp_path / "engine.c"),
         "-I", str(source.parent)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "warning" not in (result.stdout + result.stderr).lower(), result.stderr
