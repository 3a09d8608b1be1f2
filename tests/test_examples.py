"""Every script in examples/, and the README's quick start, runs to the end
(a script that needs an optional extra is skipped where that extra is not
installed)."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))
# the modules of an optional extra that an example imports
NEEDS = {"dask_training.py": ["dask", "distributed", "dask_ml"]}
# seconds each: a Dask cluster, scikit-learn's own fit, eight L-BFGS fits
SLOW_EXAMPLES = {"dask_training.py", "digits.py", "activations.py"}


@pytest.mark.skipif(not EXAMPLES, reason="needs the source tree")
@pytest.mark.parametrize(
    "script",
    [pytest.param(p, marks=pytest.mark.slow) if p.name in SLOW_EXAMPLES else p for p in EXAMPLES],
    ids=lambda p: p.name,
)
def test_example_runs(script, tmp_path):
    missing = [m for m in NEEDS.get(script.name, []) if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (pip install fastmlp[dask])")
    # and leaves nothing behind: its own temporary folder and working
    # directory are both empty at the end
    temporary, work = tmp_path / "tmp", tmp_path / "work"
    temporary.mkdir()
    work.mkdir()
    env = dict(os.environ, TMPDIR=str(temporary))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=300, env=env, cwd=work)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip()
    assert list(temporary.iterdir()) == [] and list(work.iterdir()) == []


README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
@pytest.mark.skipif(not README.exists(), reason="needs the source tree")
def test_readme_quick_start_runs_without_a_warning(tmp_path):
    text = README.read_text()
    section = text[text.index("## Quick start"):]
    start = section.index("```python\n") + len("```python\n")
    code = section[start:section.index("```\n", start)]
    assert "clf.fit" in code
    result = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True,
                            text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert float(result.stdout.split()[0]) > 0.95  # the test accuracy it prints
