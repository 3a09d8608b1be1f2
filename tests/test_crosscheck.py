"""The C core on other targets than this machine (scripts/crosscheck.sh), all
with warnings as errors: Linux aarch64 by GCC and clang, its C tests run under
qemu-aarch64 on the NEON kernels; Windows x86-64 by mingw-w64, its C test run
under wine where wine is installed; this machine by clang, and with the
portable micro-kernel alone; and the MSVC branches of csrc/compat.h through
clang's MSVC mode, syntax only. Run as root,
the script installs the compilers and emulators it lacks; otherwise it skips
what it cannot do, and so does this test for the two targets it requires."""

import re
import sys
from pathlib import Path

import pytest

import _background

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "crosscheck.sh"


def summary(output):
    """{target: {built, ran, kernels}} from the table the script ends with."""
    lines = output.splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("crosscheck summary"))
    rows = {}
    for line in lines[start + 2:]:
        cells = [cell.strip() for cell in line.split("|")]
        if len(cells) == 5:
            rows[cells[0]] = {"built": cells[1], "ran": cells[2], "kernels": cells[4]}
    return rows


def cross_builds():
    return _background.Command(["bash", str(SCRIPT)], str(ROOT), timeout=1500)


@pytest.mark.slow
@pytest.mark.background(command=cross_builds)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the cross-check runs on Linux")
@pytest.mark.skipif(
    not SCRIPT.exists() or not (ROOT / "csrc" / "compat.h").exists(),
    reason="needs the source tree (scripts/crosscheck.sh and csrc/)",
)
def test_cross_builds_pass_their_c_tests():
    result = _background.run(cross_builds)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    rows = summary(result.stdout)
    assert set(rows) == {"aarch64", "aarch64-nothr", "aarch64-clang", "mingw", "clang",
                         "generic", "msvc-syntax"}, result.stdout[-4000:]
    for target in ("aarch64", "mingw"):
        if rows[target]["built"] == "skipped":
            pytest.skip(f"crosscheck.sh skipped {target}: {rows[target]['kernels']}")

    assert rows["aarch64"]["built"] == "yes"
    assert rows["aarch64"]["ran"] == "qemu"
    assert re.search(
        r"^isa neon: kernels neon \d+x\d+ \(float32\), neon \d+x\d+ \(float64\): ok$",
        result.stdout, re.MULTILINE,
    ), result.stdout[-4000:]
    assert re.fullmatch(r"neon \d+x\d+/\d+x\d+", rows["aarch64"]["kernels"])
    assert re.search(r"^neon f32 \d+x\d+ ok$", result.stdout, re.MULTILINE)
    assert re.search(r"^neon f64 \d+x\d+ ok$", result.stdout, re.MULTILINE)
    assert rows["mingw"]["built"] == "yes"
