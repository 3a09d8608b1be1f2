"""Every script in examples/ runs to the end (one that needs an optional
extra is skipped where that extra is not installed)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))
# the modules of an optional extra that an example imports
NEEDS = {"dask_training.py": ["dask", "distributed", "dask_ml"]}


@pytest.mark.skipif(not EXAMPLES, reason="needs the source tree")
@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script):
    missing = [m for m in NEEDS.get(script.name, []) if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (pip install fastmlp[dask])")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip()
