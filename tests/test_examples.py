"""Every script in examples/ runs to the end."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


@pytest.mark.skipif(not EXAMPLES, reason="needs the source tree")
@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script, tmp_path):
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

