"""Ctrl-C during fit: control comes back within half a second, with a
warning, and the model holds the weights of the last completed epoch."""

import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest

CHILD = textwrap.dedent(
    """
    import json, sys, time, warnings
    import numpy as np
    from fastmlp import MLPClassifier

    rng = np.random.RandomState(0)
    X = rng.standard_normal((4000, 50))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    params = dict(hidden_layer_sizes=(128, 128), batch_size=64, tol=0.0,
                  n_iter_no_change=10**9, random_state=0, solver="{solver}")
    model = MLPClassifier(max_iter=100000, **params)
    print("fitting", flush=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X, y)
    ended = time.time()
    same = MLPClassifier(max_iter=model.n_iter_, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        same.fit(X, y)
    print(json.dumps({{
        "ended": ended,
        "n_iter": model.n_iter_,
        "curve": len(model.loss_curve_),
        "warnings": [str(w.message) for w in caught],
        "last_epoch_weights": all(np.array_equal(a, b) for a, b in zip(model.coefs_, same.coefs_)),
        "predicts": model.predict(X[:3]).tolist(),
    }}), flush=True)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_sigint_stops_fit_quickly_and_keeps_the_last_epoch(solver):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(solver=solver)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "fitting"
        time.sleep(1.5)
        sent = time.time()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["ended"] - sent < 0.5
    assert "Training interrupted by user." in result["warnings"]
    assert result["n_iter"] >= 1 and result["curve"] == result["n_iter"]
    assert result["last_epoch_weights"]
    assert len(result["predicts"]) == 3
