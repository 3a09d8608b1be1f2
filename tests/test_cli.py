"""The `fastmlp` command, run end to end through the installed entry point."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import fastmlp

# The console script pip installs next to the interpreter.
COMMAND = shutil.which("fastmlp", path=str(Path(sys.executable).parent)) or shutil.which("fastmlp")


def run(*args, env=None, cwd=None):
    assert COMMAND, "the fastmlp command is not installed (pip install .)"
    return subprocess.run([COMMAND, *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env, cwd=cwd)


def test_no_arguments_print_the_help_and_the_usage_names_the_command():
    result = run()
    assert result.returncode == 0
    assert result.stdout.startswith("usage: fastmlp ")
    assert "demo" in result.stdout
    as_module = subprocess.run([sys.executable, "-m", "fastmlp", "--help"], capture_output=True,
                               text=True, timeout=60)
    assert as_module.stdout.startswith("usage: python -m fastmlp ")


def test_version():
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"fastmlp {fastmlp.__version__}"


def test_demo_plot_without_matplotlib_names_the_extra_before_running(tmp_path):
    # a matplotlib that cannot be imported, ahead of the real one
    (tmp_path / "hide" / "matplotlib").mkdir(parents=True)
    (tmp_path / "hide" / "matplotlib" / "__init__.py").write_text(
        "raise ImportError('matplotlib is hidden by the test')\n"
    )
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "hide"))
    result = run("demo", "--plot", tmp_path / "pictures", env=env)
    assert result.returncode == 2
    assert "pip install 'fastmlp[plot]'" in result.stderr
    assert result.stdout == ""  # the demo did not start
    assert not (tmp_path / "pictures").exists()
