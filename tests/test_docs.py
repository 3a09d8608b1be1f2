"""The documentation builds with every warning an error: the API pages from
the docstrings (checked by numpydoc), the user guide, and the examples run
as a gallery."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (ROOT / "docs" / "conf.py").exists() or not (ROOT / "examples").exists(),
        reason="needs the source tree (docs/ and examples/)",
    ),
]

DOCS_EXTRA = ["sphinx", "numpydoc", "sphinx_gallery", "furo"]


def test_docs_build_without_warnings(tmp_path):
    for module in DOCS_EXTRA:
        pytest.importorskip(module, reason=f"the docs need {module}: pip install '.[docs]'")
    # a copy, so that the gallery's generated pages stay out of the source tree
    generated = shutil.ignore_patterns("_build", "auto_examples", "sg_execution_times.rst")
    shutil.copytree(ROOT / "docs", tmp_path / "docs", ignore=generated)
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=generated)
    out = tmp_path / "html"
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html",
         str(tmp_path / "docs"), str(out)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert "WARNING" not in log and "ERROR" not in log, log[-4000:]

    api = (out / "api.html").read_text()
    for name in ("MLPClassifier", "MLPRegressor", "partial_fit", "predict_proba", "load",
                 "save", "from_sklearn", "to_onnx", "show_config", "EpochRecord", "Checkpoint",
                 "ProgressBar", "loss_curve", "decision_boundary", "n_threads", "class_weight"):
        assert f">{name}<" in api, name
    assert 'id="fastmlp.dask.fit"' in api
    for page in ("drop_in", "additions", "threads", "persistence", "onnx", "dask",
                 "performance", "command_line"):
        assert (out / "guide" / f"{page}.html").exists(), page
    # every example has its page; the gallery ran the quick ones and shows their output
    for script in (ROOT / "examples").glob("*.py"):
        assert (out / "auto_examples" / f"{script.stem}.html").exists(), script.name
    callbacks_page = (out / "auto_examples" / "callbacks.html").read_text()
    assert "reloaded checkpoint has n_iter_" in callbacks_page
