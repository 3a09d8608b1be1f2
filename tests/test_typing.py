"""The package type-checks: py.typed ships, and mypy finds no error in
src/fastmlp (its settings are in pyproject.toml)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_package_is_marked_typed():
    import fastmlp

    assert (Path(fastmlp.__file__).parent / "py.typed").exists()


@pytest.mark.slow
@pytest.mark.skipif(not (ROOT / "src" / "fastmlp").exists(), reason="needs the source tree")
def test_mypy_is_clean():
    pytest.importorskip("mypy")
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
