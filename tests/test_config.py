"""What fastmlp runs with: the instruction set and kernels in use (and
FASTMLP_ISA to narrow them), the threads, and show_config's report."""

import io
import os
import subprocess
import sys

import numpy as np
import pytest

import fastmlp
from fastmlp import _engine

RUNNABLE = [isa for isa in _engine.isa_built() if _engine.isa_supported(isa)]


def engine_isa_with(env_value):
    env = dict(os.environ, FASTMLP_ISA=env_value)
    code = "from fastmlp import _engine; print(_engine.isa(), _engine.kernel('float32'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    return out.stdout.split()


def test_the_widest_runnable_instruction_set_is_chosen():
    assert _engine.isa() == RUNNABLE[0]
    assert _engine.isa_built()[0] in ("avx512", "neon", "generic")


@pytest.mark.parametrize("isa", RUNNABLE)
def test_fastmlp_isa_narrows_the_instruction_set(isa):
    chosen, kernel_isa, shape = engine_isa_with(isa)
    assert chosen == isa == kernel_isa
    for one in shape.split("/"):  # a second shape, for products with few rows
        rows, cols = (int(v) for v in one.split("x"))
        assert rows >= 4 and cols >= 4


def test_an_unknown_or_unrunnable_instruction_set_is_ignored():
    assert engine_isa_with("no-such-isa")[0] == RUNNABLE[0]
    with pytest.raises(ValueError, match="not available"):
        _engine.set_isa("no-such-isa")


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("isa", RUNNABLE)
def test_every_instruction_set_fits_the_same_model_to_rounding(isa):
    X = np.random.RandomState(0).standard_normal((300, 40))
    y = (X[:, 0] > 0).astype(int)
    model = fastmlp.MLPClassifier(hidden_layer_sizes=(64,), max_iter=5, random_state=0)
    before = _engine.isa()
    try:
        _engine.set_isa(RUNNABLE[-1])
        reference = model.fit(X, y).coefs_[0].copy()
        _engine.set_isa(isa)
        coefs = model.fit(X, y).coefs_[0]
    finally:
        _engine.set_isa(before)
    np.testing.assert_allclose(coefs, reference, rtol=1e-9, atol=1e-9)


def test_show_config_reports_kernels_and_threads():
    out = io.StringIO()
    fastmlp.show_config(file=out)
    text = out.getvalue()
    config = fastmlp._config.config()
    assert f"instruction set: {_engine.isa()}" in text
    assert _engine.kernel("float32") in text and _engine.kernel("float64") in text
    assert config["threads"] == _engine.THREADS_BACKEND
    assert config["default_n_threads"] >= 1
    assert f"default n_threads: {config['default_n_threads']}" in text
