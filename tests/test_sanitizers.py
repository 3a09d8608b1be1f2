"""The engine under AddressSanitizer and UndefinedBehaviorSanitizer: a build
with both (scripts/sanitize.sh) runs the kernel, gradient, bad-input,
persistence, thread and robustness tests, and any out-of-bounds access, use
after free or undefined behaviour fails them."""

import os
import shutil
import sys
from pathlib import Path

import pytest

import _background

ROOT = Path(__file__).resolve().parents[1]
SUBSET = [
    "tests/test_kernels.py",
    "tests/test_gradients.py",
    "tests/test_bad_input.py",
    "tests/test_persistence.py",
    "tests/test_threads.py",
    "tests/test_robustness.py",
    "-k",
    "not leak",
]


def sanitized_run():
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return _background.Command(["bash", str(ROOT / "scripts" / "sanitize.sh"), *SUBSET],
                               str(ROOT), env, timeout=1500)


@pytest.mark.slow
@pytest.mark.background(command=sanitized_run)
@pytest.mark.skipif(
    os.environ.get("FASTMLP_SANITIZED") == "1", reason="already running under the sanitizers"
)
@pytest.mark.skipif(
    not sys.platform.startswith("linux") or shutil.which(os.environ.get("CC", "gcc")) is None
    or not (ROOT / "scripts" / "sanitize.sh").exists(),
    reason="needs Linux, gcc and the source tree",
)
def test_engine_is_clean_under_asan_and_ubsan():
    result = _background.run(sanitized_run)
    tail = (result.stdout + result.stderr)[-4000:]
    assert result.returncode == 0, tail
    assert "passed" in result.stdout and "failed" not in result.stdout.splitlines()[-1], tail
