"""Ctrl-C during fit: control comes back within half a second, with a
warning, and the model holds the weights of the last completed epoch (or,
with early stopping, of the best one); after a fit, Ctrl-C still breaks
blocking calls as before. During a long prediction, or a pass of an
L-BFGS fit: a KeyboardInterrupt within half a second (L-BFGS keeps the
weights of its last completed iteration)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import numpy as np
import pytest

CHILD = textwrap.dedent(
    """
    import json, sys, time, warnings
    import numpy as np
    from fastmlp import MLPClassifier

    rng = np.random.RandomState(0)
    X = rng.standard_normal(({rows}, 50))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    params = {{**dict(hidden_layer_sizes=(128, 128), batch_size=64, tol=0.0,
                      n_iter_no_change=10**9, random_state=0), **{params}}}
    model = MLPClassifier(max_iter=100000, **params)
    sent = None
    if {self_signal}:
        # Windows: Ctrl-C on this process's own console, from a thread of
        # its own, once training is under way
        import ctypes, threading

        def ctrl_c():
            global sent
            sent = time.time()
            ctypes.windll.kernel32.GenerateConsoleCtrlEvent(0, 0)  # CTRL_C_EVENT

        threading.Timer({self_signal}, ctrl_c).start()
    print("fitting", flush=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X, y)
    ended = time.time()
    same_weights = None  # no epoch ended before the signal: nothing to compare
    if model.n_iter_:
        same = MLPClassifier(**{{**params, "max_iter": model.n_iter_, "verbose": False}})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            same.fit(X, y)
        same_weights = all(np.array_equal(a, b) for a, b in zip(model.coefs_, same.coefs_))
    validation = [len(model.validation_scores_), len(model.validation_loss_curve_)] if (
        model.early_stopping) else [model.n_iter_] * 2
    print(json.dumps({{
        "sent": sent,
        "ended": ended,
        "n_iter": model.n_iter_,
        "curve": len(model.loss_curve_),
        "validation": validation,
        "warnings": [str(w.message) for w in caught],
        "last_epoch_weights": same_weights,
        "finite": all(np.isfinite(c).all() for c in model.coefs_),
        "predicts": model.predict(X[:3]).tolist(),
    }}), flush=True)
    """
)


# (training rows, parameters, whether the weights must be the last epoch's)
CASES = {
    "adam": (4000, dict(solver="adam"), True),
    "sgd": (4000, dict(solver="sgd"), True),
    # one piece of work per epoch, one epoch per engine call (verbose): a
    # signal during the call is seen after it
    "rprop, one piece per epoch": (1000, dict(solver="rprop", hidden_layer_sizes=(512, 512),
                                              verbose=True), True),
    # one batch of 100,000 rows per epoch (seconds long): stopped inside it,
    # once the first epoch has printed its loss
    "rprop, full batch": (100_000, dict(solver="rprop", hidden_layer_sizes=(512, 512),
                                        verbose=True), True),
    # Python scores a validation set nine times the training set after every
    # epoch, where the signal mostly lands; the weights are the best epoch's
    "early stopping": (4000, dict(solver="adam", early_stopping=True,
                                  validation_fraction=0.9), False),
}


def _sigint_child(code, ready, settle):
    """Run `code` in a child interpreter; once it prints the line `ready`,
    call settle(child) (a wait while it works), send it SIGINT, and return
    its return code, output, error output and when the signal was sent. A
    child that never gets as far as printing is killed, not waited for."""
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(300, child.kill)
    watchdog.start()
    try:
        assert child.stdout.readline().strip() == ready
        settle(child)
        sent = time.time()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=120)
    finally:
        watchdog.cancel()
        child.kill()
    return child.returncode, out, err, sent


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize(
    "case", [case if case == "adam" else pytest.param(case, marks=pytest.mark.slow)
             for case in CASES]
)
def test_sigint_stops_fit_quickly_and_keeps_the_last_epoch(case):
    rows, params, last_epoch = CASES[case]

    def settle(child):
        if params.get("verbose"):
            assert child.stdout.readline().startswith("Iteration 1,")
            time.sleep(0.3)
        else:
            time.sleep(1.5)

    returncode, out, err, sent = _sigint_child(
        CHILD.format(rows=rows, params=params, self_signal=0), "fitting", settle)
    assert returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["ended"] - sent < 0.5
    assert "Training interrupted by user." in result["warnings"]
    assert result["curve"] == result["n_iter"]
    # epochs trained but not scored (Ctrl-C during scoring) are NaN
    assert result["validation"] == [result["n_iter"]] * 2
    assert result["finite"]
    if last_epoch and result["n_iter"]:
        assert result["last_epoch_weights"]
    assert len(result["predicts"]) == 3


@pytest.mark.skipif(sys.platform != "win32", reason="Windows console events")
@pytest.mark.parametrize("case", ["adam", "rprop, full batch"])
def test_ctrl_c_on_windows_stops_fit_quickly_and_keeps_the_last_epoch(case):
    """The child has a console of its own and sends itself Ctrl-C there, the
    way a user's Ctrl-C reaches a console program (a console event, which
    the engine's handler takes before the C runtime turns it into SIGINT)."""
    rows, params, last_epoch = CASES[case]
    delay = 3.0 if params.get("verbose") else 1.5
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(rows=rows, params=params, self_signal=delay)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        creationflags=subprocess.CREATE_NEW_CONSOLE,
    )
    try:
        out, err = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["sent"] is not None
    assert result["ended"] - result["sent"] < 0.5
    assert "Training interrupted by user." in result["warnings"]
    assert result["curve"] == result["n_iter"]
    assert result["finite"]
    if last_epoch and result["n_iter"]:
        assert result["last_epoch_weights"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_still_breaks_a_blocking_read_after_a_fit():
    """Training puts the interpreter's SIGINT handling back exactly: a
    signal then interrupts a blocking read at once, rather than the read
    being restarted until data arrives."""
    from sklearn.exceptions import ConvergenceWarning

    from fastmlp import MLPClassifier

    X = np.random.RandomState(0).standard_normal((50, 3))
    with pytest.warns(ConvergenceWarning):  # two epochs are enough here
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=2).fit(X, X[:, 0] > 0)
    read_end, write_end = os.pipe()
    signaller = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    writer = threading.Timer(5.0, os.write, (write_end, b"x"))
    started = time.monotonic()
    signaller.start()
    writer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            os.read(read_end, 1)
        assert time.monotonic() - started < 3.0
    finally:
        signaller.cancel()
        writer.cancel()
        writer.join()
        os.close(read_end)
        os.close(write_end)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_process_that_ignores_ctrl_c_trains_on():
    from fastmlp import MLPClassifier

    X = np.random.RandomState(0).standard_normal((3000, 20))
    model = MLPClassifier(hidden_layer_sizes=(512, 512), max_iter=20, tol=0.0, random_state=0)
    sent = threading.Event()

    def send():
        os.kill(os.getpid(), signal.SIGINT)
        sent.set()

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    signaller = threading.Timer(0.2, send)
    try:
        signaller.start()
        with pytest.warns(Warning) as caught:
            model.fit(X, X[:, 0] > 0)
        assert sent.is_set()  # the signal came during the fit
    finally:
        signaller.cancel()
        signaller.join()
        signal.signal(signal.SIGINT, previous)
    assert model.n_iter_ == 20
    assert not any("interrupted" in str(w.message) for w in caught)


def user_fit(**params):
    """A classifier and its data for the tests of a user's SIGINT handler,
    with max_iter for a fit of about two seconds on this machine."""
    from fastmlp import MLPClassifier

    X = np.random.RandomState(0).standard_normal((3000, 20))
    y = X[:, 0] > 0
    params = {**dict(hidden_layer_sizes=(256, 256), tol=0.0, n_iter_no_change=10**9,
                     random_state=0), **params}
    started = time.monotonic()
    quiet_fit(MLPClassifier(max_iter=1, **params), X, y)
    epoch = time.monotonic() - started
    return MLPClassifier(max_iter=int(min(200, max(6, 2.0 / epoch))), **params), X, y


def quiet_fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X, y)


def _fit_with_sigint(model, X, y, handler, presses=1):
    """model.fit(X, y) with `handler` taking SIGINT, sent `presses` times
    from 0.3 s in, 0.1 s apart; returns the warnings and, for each call of
    the handler, the epochs the model had counted then and the function it
    ran in (_pass_on_sigint when the engine held the signal back)."""
    calls = []

    def on_sigint(signum, frame):
        calls.append((len(model.loss_curve_), frame.f_code.co_name))
        handler(signum, frame)

    def send():
        for press in range(presses):
            if press:
                time.sleep(0.1)  # a signal sent before the last one is handled merges with it
            os.kill(os.getpid(), signal.SIGINT)

    previous = signal.signal(signal.SIGINT, on_sigint)
    signaller = threading.Timer(0.3, send)
    try:
        signaller.start()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(X, y)
        assert signal.getsignal(signal.SIGINT) is on_sigint  # still the user's
    finally:
        signaller.cancel()
        signaller.join()
        signal.signal(signal.SIGINT, previous)
    return [str(w.message) for w in caught], calls


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("presses", [1, 2])
def test_a_ctrl_c_handler_of_the_users_runs_and_the_fit_goes_on(presses):
    """Under a Python SIGINT handler of the user's, the engine leaves Ctrl-C
    to it: the handler runs once for each signal during the fit (once the
    epoch under way is complete, with that epoch counted), and the fit
    trains on to the same weights as without the signals."""
    model, X, y = user_fit()
    caught, calls = _fit_with_sigint(model, X, y, lambda signum, frame: None, presses)
    assert len(calls) == presses
    assert all(1 <= k < model.max_iter for k, _ in calls), (calls, model.max_iter)
    assert model.n_iter_ == model.max_iter
    assert not any("interrupted" in w for w in caught)
    quiet = quiet_fit(type(model)(**model.get_params()), X, y)
    assert all(np.array_equal(a, b) for a, b in zip(model.coefs_, quiet.coefs_))
    assert model.loss_curve_ == quiet.loss_curve_


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("early_stopping", [False, True])
def test_a_users_handler_that_raises_keyboardinterrupt_stops_the_fit(early_stopping):
    """A handler of the user's that raises KeyboardInterrupt stops the fit as
    Ctrl-C does: the warning, and the weights of the last completed epoch
    (with early stopping, scored like every other, and the best one's)."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    model, X, y = user_fit(early_stopping=early_stopping)
    caught, calls = _fit_with_sigint(model, X, y, interrupt)
    assert len(calls) == 1 and 1 <= calls[0][0] < model.max_iter, (calls, model.max_iter)
    assert "Training interrupted by user." in caught
    assert model.n_iter_ == calls[0][0] == len(model.loss_curve_)
    if early_stopping:
        # an epoch is scored in Python, where a signal may also land: its
        # handler then runs there and the epoch stays unscored (NaN); one
        # the engine held back comes after the scoring
        scores = model.validation_scores_
        assert len(scores) == model.n_iter_ and np.isfinite(scores[:-1]).all()
        if calls[0][1] != "_pass_on_sigint":
            return
        assert np.isfinite(scores[-1])
    same = quiet_fit(type(model)(**{**model.get_params(), "max_iter": model.n_iter_}), X, y)
    assert all(np.array_equal(a, b) for a, b in zip(model.coefs_, same.coefs_))


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_process_that_set_sigint_to_default_ends_on_ctrl_c():
    """SIG_DFL means Ctrl-C ends the process; the engine does not turn it into
    a stopped fit."""
    code = textwrap.dedent(
        """
        import signal
        import numpy as np
        from fastmlp import MLPClassifier

        signal.signal(signal.SIGINT, signal.SIG_DFL)
        X = np.random.RandomState(0).standard_normal((4000, 50))
        print("fitting", flush=True)
        MLPClassifier((128, 128), max_iter=100000, tol=0.0, n_iter_no_change=10**9).fit(
            X, X[:, 0] > 0)
        print("the fit returned", flush=True)
        """
    )
    returncode, out, err, _ = _sigint_child(code, "fitting", lambda child: time.sleep(1.0))
    assert returncode == -signal.SIGINT, (out, err)
    assert "returned" not in out


# The start of a child's code: imports, a model with rows enough for a pass
# of a given length, and a probe of whether Python's own handling of Ctrl-C
# is back (a SIGINT breaks a sleep; the seconds it took).
CHILD_START = textwrap.dedent(
    """
    import json, os, signal, threading, time, warnings
    import numpy as np
    from fastmlp import MLPClassifier

    def sized_rows(forward_seconds):
        \"\"\"A (512, 512) classifier fitted quietly on 200 rows X of a
        20,000-row probe; the seconds it takes to predict the probe; and the
        probe repeated (at least twice, at most to 10^6 rows) to about
        forward_seconds of prediction on this machine.\"\"\"
        probe = np.random.RandomState(0).standard_normal((20000, 20))
        X = probe[:200]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = MLPClassifier((512, 512), max_iter=2, random_state=0).fit(X, X[:, 0] > 0)
        started = time.perf_counter()
        model.predict_proba(probe)
        seconds = time.perf_counter() - started
        rows = int(min(10**6, 20000 * max(2, forward_seconds / seconds)))
        return model, X, seconds, np.tile(probe, (rows // 20000, 1))

    def sleep_broken_after():
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
        started = time.perf_counter()
        try:
            time.sleep(10)
        except KeyboardInterrupt:
            pass
        return time.perf_counter() - started
    """
)

PREDICT_CHILD = textwrap.dedent(
    """
    {child_start}
    # a prediction of several seconds on this machine (at most 10^6 rows)
    model, X, seconds, big = sized_rows(4.0)
    before = model.predict_proba(X)
    if {fortran}:
        big = np.asfortranarray(big)
    expected = seconds * len(big) / 20000
    print("predicting", flush=True)
    started = time.perf_counter()
    try:
        model.predict_proba(big)
        outcome = "returned"
    except KeyboardInterrupt:
        outcome = "KeyboardInterrupt"
    ended = time.time()
    elapsed = time.perf_counter() - started
    probe_seconds = sleep_broken_after()
    print(json.dumps({{
        "outcome": outcome,
        "ended": ended,
        "elapsed": elapsed,
        "expected": expected,
        "chunk": seconds * 1024 / 20000,
        "sleep_broken_after": probe_seconds,
        "same_after": bool(np.array_equal(model.predict_proba(X), before)),
    }}), flush=True)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("fortran", [False, True], ids=["C-ordered", "Fortran-ordered"])
def test_sigint_stops_a_long_prediction_quickly(fortran):
    """Ctrl-C during a long predict_proba raises KeyboardInterrupt within a
    fraction of a second, as it would between two numpy operations, not
    when the whole call is done; the model is unchanged and Python's own
    handling of Ctrl-C is back."""
    returncode, out, err, sent = _sigint_child(
        PREDICT_CHILD.format(fortran=fortran, child_start=CHILD_START), "predicting", lambda child: time.sleep(0.5))
    assert returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["outcome"] == "KeyboardInterrupt"
    # a chunk under way completes first
    assert result["ended"] - sent < max(0.5, 5 * result["chunk"]), result
    assert result["elapsed"] < result["expected"] / 2, result
    assert result["sleep_broken_after"] < 5
    assert result["same_after"]  # the model predicts as before


LBFGS_CHILD = textwrap.dedent(
    """
    {child_start}
    import fastmlp._engine
    from fastmlp._base import _CHUNK_ROWS

    # one L-BFGS pass (forward and backward) takes about three forward
    # passes: make the passes about 1.5 s long
    _, _, seconds, X = sized_rows(0.5)
    y = X[:, 0] + X[:, 1] > 0

    # the signal is sent once the third pass has begun: a line search's pass
    # (mostly after the first iteration), whose point the model must not keep
    passes, first_point = [], []
    engine_pass = fastmlp._engine.loss_grad

    def watched(net, data, params, *args):
        passes.append(time.time())
        if len(passes) == 1:
            first_point.append(params.copy())
        if len(passes) == 3:
            print("fitting", flush=True)
        return engine_pass(net, data, params, *args)

    fastmlp._engine.loss_grad = watched
    settings = dict(hidden_layer_sizes=(512, 512), solver="lbfgs", random_state=0)
    lbfgs = MLPClassifier(max_iter=1000, **settings)
    try:
        lbfgs.fit(X, y)
        outcome = "returned"
    except KeyboardInterrupt:
        outcome = "KeyboardInterrupt"
    ended = time.time()
    fastmlp._engine.loss_grad = engine_pass
    probe_seconds = sleep_broken_after()
    kept = np.concatenate([a.ravel() for a in lbfgs.coefs_ + lbfgs.intercepts_])
    if lbfgs.n_iter_:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            same = MLPClassifier(max_iter=lbfgs.n_iter_, **settings).fit(X, y)
        expected = np.concatenate([a.ravel() for a in same.coefs_ + same.intercepts_])
    else:
        expected = first_point[0]
    print(json.dumps({{
        "outcome": outcome,
        "ended": ended,
        "pass_seconds": passes[1] - passes[0],
        "chunk": 3 * seconds * _CHUNK_ROWS / 20000,
        "sleep_broken_after": probe_seconds,
        "last_iteration_weights": bool(np.array_equal(kept, expected)),
    }}), flush=True)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigint_stops_an_lbfgs_pass_quickly():
    """Ctrl-C during one of L-BFGS's passes over the data raises
    KeyboardInterrupt from fit (as scikit-learn's does) within a fraction
    of a second, not once the pass is done; the model keeps the weights of
    the last completed iteration, not the point the pass was at, and
    Python's own handling of Ctrl-C is back afterwards."""
    returncode, out, err, sent = _sigint_child(
        LBFGS_CHILD.format(child_start=CHILD_START), "fitting", lambda child: time.sleep(0.3))
    assert returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["outcome"] == "KeyboardInterrupt"
    # a chunk under way completes first
    assert result["ended"] - sent < max(0.5, 5 * result["chunk"]), result
    assert result["pass_seconds"] > 0.5 + 0.3, result  # else the pass may have ended first
    assert result["sleep_broken_after"] < 5
    assert result["last_iteration_weights"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_users_handler_runs_after_a_long_prediction_which_completes():
    """Under a SIGINT handler of the user's, prediction leaves the signal to
    it: the handler runs once, and the prediction is whole and unchanged."""
    from fastmlp import MLPClassifier

    rng = np.random.RandomState(0)
    X = rng.standard_normal((200, 20))
    model = quiet_fit(MLPClassifier((512, 512), max_iter=2, random_state=0), X, X[:, 0] > 0)
    big = rng.standard_normal((100_000, 20))
    quiet = model.predict_proba(big)
    calls = []

    def on_sigint(signum, frame):
        calls.append(signum)

    previous = signal.signal(signal.SIGINT, on_sigint)
    signaller = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT))
    try:
        signaller.start()
        got = model.predict_proba(big)
        signaller.join()
        time.sleep(0.05)  # a signal after the call reaches the handler here
        assert signal.getsignal(signal.SIGINT) is on_sigint
    finally:
        signaller.cancel()
        signal.signal(signal.SIGINT, previous)
    assert calls == [signal.SIGINT]
    assert np.array_equal(got, quiet)
