"""Results do not depend on the thread count, and fits in concurrent Python
threads (the engine releases the GIL) give what they give alone."""

import os
import pickle
import threading
import time
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning

from fastmlp import MLPClassifier, MLPRegressor, _engine
from fastmlp._threads import effective_n_threads

# Layers and batches large enough that every kernel runs threaded (a
# product needs a million multiply-adds for that).
X, y = make_classification(1200, 100, n_informative=20, n_classes=4, random_state=0)


def fit(n_threads, solver, data=X, target=y, **params):
    settings = dict(hidden_layer_sizes=(256, 128), batch_size=512, max_iter=3, random_state=0)
    settings.update(params)
    model = MLPClassifier(solver=solver, n_threads=n_threads, **settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(data, target)


def assert_same_weights(a, b):
    for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert np.array_equal(u, v)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_bit_identical_for_any_thread_count(solver, dtype):
    models = [fit(k, solver, X.astype(dtype)) for k in (1, 2, 3, 8)]
    for other in models[1:]:
        assert_same_weights(models[0], other)
        assert other.loss_ == models[0].loss_
    probas = [m.predict_proba(X.astype(dtype)) for m in models]
    for p in probas[1:]:
        assert np.array_equal(p, probas[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("clip", [None, 0.5])
def test_small_networks_in_blocks_are_bit_identical_for_any_thread_count(dtype, clip):
    """A network small enough that a batch passes in blocks of rows, one per
    task, whose gradient sums the optimizer step adds; batches of 200 rows,
    and of 1500 and 3100 that pass in pieces of at most 1024."""
    Xs, ys = make_classification(3200, 20, n_informative=8, n_classes=3, random_state=1)
    for batch_size in (200, 1500, 3100):
        models = [fit(k, "adam", Xs.astype(dtype), ys, hidden_layer_sizes=(40, 20),
                      batch_size=batch_size, clip_grad_norm=clip) for k in (1, 2, 3)]
        for other in models[1:]:
            assert_same_weights(models[0], other)
            assert other.loss_curve_ == models[0].loss_curve_


def test_bit_identical_for_sparse_input():
    Xs = sp.csr_matrix(np.where(np.abs(X) > 1.0, X, 0.0))
    a, b = fit(1, "adam", Xs, early_stopping=True), fit(3, "adam", Xs, early_stopping=True)
    assert_same_weights(a, b)


def fits_alone_and_at_once(make, seeds, X, y):
    """Models make(seed) fitted one after the other, and fitted all at once
    in Python threads; asserts both give the same weights."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        serial = [make(seed).fit(X, y) for seed in seeds]
        concurrent = [make(seed) for seed in seeds]
        threads = [threading.Thread(target=m.fit, args=(X, y)) for m in concurrent]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for a, b in zip(serial, concurrent):
        assert_same_weights(a, b)


def test_concurrent_fits_in_python_threads_match_serial_fits():
    def make(seed):
        return MLPRegressor(hidden_layer_sizes=(64,), max_iter=5, random_state=seed, n_threads=1)

    fits_alone_and_at_once(make, range(4), X[:, :20], X[:, 20])


def test_n_threads_resolution():
    assert effective_n_threads(3) == (3 if _engine.HAVE_THREADS else 1)
    assert effective_n_threads(None) >= 1
    assert effective_n_threads(-1) >= effective_n_threads(-2) >= 1
    with pytest.raises(ValueError):
        MLPClassifier(n_threads=0).fit(X, y)


# ---- the engine's own threads: determinism under any scheduling, limits set
# by the process's environment, no side effects ----------------------------


def test_default_threads_give_the_one_thread_result():
    for dtype in (np.float32, np.float64):
        one, default = fit(1, "adam", X.astype(dtype)), fit(None, "adam", X.astype(dtype))
        assert_same_weights(one, default)


def busy_processes(k, seconds=120):
    """k processes that keep a core busy each, for at most `seconds` (and
    no longer than this test process lives); returns once they run."""
    import subprocess
    import sys

    code = (
        "import os, sys, time; parent = os.getppid(); end = time.time() + %d; "
        "print('ready', flush=True)\n"
        "while time.time() < end and os.getppid() == parent:\n"
        "    for _ in range(100000): pass" % seconds
    )
    procs = []
    try:
        for _ in range(k):
            procs.append(subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                          text=True))
        for p in procs:
            assert p.stdout.readline().strip() == "ready"
    except BaseException:
        stop(procs)
        raise
    return procs


def stop(procs):
    for p in procs:
        p.kill()
        p.wait()


def test_bit_identical_when_threads_lose_their_cores():
    """Busy processes on every core make the engine's threads claim tasks in
    ever-changing order and wait for each other; the weights stay those of
    one thread."""
    reference = fit(1, "sgd")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    busy = busy_processes(min(cores or 1, 4))
    try:
        models = [fit(k, "sgd") for k in (2, 4, None)]
    finally:
        stop(busy)
    for m in models:
        assert_same_weights(reference, m)


def test_many_concurrent_fits_on_more_threads_than_cores():
    def make(seed):
        return MLPRegressor(hidden_layer_sizes=(96, 64), batch_size=200, max_iter=3,
                            random_state=seed, n_threads=3)

    fits_alone_and_at_once(make, range(6), X[:400, :30], X[:400, 30])


def test_omp_num_threads_caps_the_default(monkeypatch):
    from fastmlp._threads import _usable_cpus, default_n_threads

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert effective_n_threads(None) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3,2")
    assert default_n_threads() == min(3, _usable_cpus())
    for nonsense in ("nonsense", "-2", "0", "\u00b2", ""):
        monkeypatch.setenv("OMP_NUM_THREADS", nonsense)
        assert default_n_threads() == min(_usable_cpus(), _engine.MAX_THREADS)
    # an explicit count is used as given
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert effective_n_threads(4) == (4 if _engine.HAVE_THREADS else 1)


def test_threadpoolctl_lists_and_limits_the_engine():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from fastmlp._threads import default_n_threads

    ours = [i for i in threadpoolctl.threadpool_info() if i["internal_api"] == "fastmlp"]
    assert len(ours) == 1
    assert ours[0]["user_api"] == "openmp"
    assert ours[0]["num_threads"] == default_n_threads()
    assert os.path.realpath(ours[0]["filepath"]) == os.path.realpath(_engine.extension_file)
    before = default_n_threads()
    with threadpoolctl.threadpool_limits(limits=1):
        assert default_n_threads() == 1
        assert effective_n_threads(None) == 1
        # the fast prediction path rebuilds its thread count under the limit
        model = fit(None, "adam")
        assert np.array_equal(model.predict_proba(X), fit(1, "adam").predict_proba(X))
    assert default_n_threads() == before
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert default_n_threads() == 1
    assert default_n_threads() == before


def test_threadpoolctl_limits_are_per_thread_as_openmps():
    """A limit set in one Python thread holds there only, and limits set and
    lifted in two threads at once leave none behind."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from fastmlp._threads import default_n_threads

    before = default_n_threads()
    entered, leave = threading.Barrier(2), threading.Barrier(2)
    seen = {}

    def limited(limit, name):
        with threadpoolctl.threadpool_limits(limits=limit, user_api="openmp"):
            entered.wait()
            seen[name] = default_n_threads()
            leave.wait()

    threads = [threading.Thread(target=limited, args=(k, k)) for k in (1, 2)]
    for t in threads:
        t.start()
    entered_main = default_n_threads()  # the main thread set no limit
    for t in threads:
        t.join()
    assert seen == {1: 1, 2: min(2, before)}
    assert entered_main == before
    assert default_n_threads() == before


def _default_threads_in_worker():
    import os

    from fastmlp._threads import default_n_threads

    return os.environ.get("OMP_NUM_THREADS"), default_n_threads()


@pytest.mark.slow
def test_joblib_workers_follow_their_inner_thread_limit():
    from joblib import Parallel, delayed, parallel_config

    with parallel_config(backend="loky", inner_max_num_threads=1):
        found = Parallel(n_jobs=2)(delayed(_default_threads_in_worker)() for _ in range(2))
    assert found == [("1", 1), ("1", 1)]


@pytest.mark.slow
def test_dask_workers_follow_their_thread_limit():
    distributed = pytest.importorskip("distributed")
    # a dashboard on a free port: another cluster on the machine may hold
    # the usual one
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=50) as cluster:
        with distributed.Client(cluster) as client:
            env, count = client.submit(_default_threads_in_worker).result(timeout=120)
    assert count == 1, env


def test_importing_changes_no_environment_variable():
    import subprocess
    import sys

    code = (
        "import os, json; before = dict(os.environ); import fastmlp; "
        "from fastmlp import MLPClassifier; import numpy as np; "
        "MLPClassifier(max_iter=2).fit(np.random.rand(300, 5), np.arange(300) % 2); "
        "print(json.dumps(dict(os.environ) == before))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "true"


def _fit_in_child(queue):
    model = fit(2, "adam")
    queue.put([c.tolist() for c in model.coefs_])


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork()")
def test_a_forked_child_trains_on_threads():
    """After the parent has used the engine's threads, a fork()ed child
    (which has none of them) trains too, with the same result."""
    import multiprocessing

    parent = fit(2, "adam")
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads alive
        child = ctx.Process(target=_fit_in_child, args=(queue,))
        child.start()
    coefs = queue.get(timeout=120)
    child.join(timeout=60)
    assert child.exitcode == 0
    for a, b in zip(parent.coefs_, coefs):
        assert np.array_equal(a, np.array(b, dtype=a.dtype))


def test_idle_workers_end():
    """The engine keeps no threads once it has been idle for a while."""
    if not _engine.HAVE_THREADS:
        pytest.skip("a build without threads")
    model = MLPClassifier(hidden_layer_sizes=(256, 256), batch_size=512, max_iter=40, tol=0,
                          random_state=0, n_threads=4)
    seen = []
    fitting = threading.Thread(target=fit_quietly, args=(model, X, y))
    fitting.start()
    while fitting.is_alive():  # workers exist while the fit runs
        seen.append(_engine.workers_alive())
        time.sleep(0.01)
    fitting.join()
    assert max(seen) >= 1
    assert wait_for_no_workers() == 0


def wait_for_no_workers():
    """The number of workers alive once none is left, or after 30 s."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _engine.workers_alive() > 0:
        time.sleep(0.05)
    return _engine.workers_alive()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_product_takes_threads_only_from_its_size(dtype):
    """The determinism tests' threaded shapes really run threaded: with no
    worker left, a forward product of W2's output layer (128 rows, 128 units
    to 10: 163,840 multiply-adds) asked for two threads starts a worker,
    and the same product from 64 units (81,920) does not."""
    if not _engine.HAVE_THREADS:
        pytest.skip("a build without threads")
    rng = np.random.default_rng(0)
    for n_in, threaded in ((64, False), (128, True)):
        X = rng.standard_normal((128, n_in)).astype(dtype)
        W = rng.standard_normal((n_in, 10)).astype(dtype)
        b = np.zeros(10, dtype)
        Y1, Y2 = np.empty((128, 10), dtype), np.empty((128, 10), dtype)
        assert wait_for_no_workers() == 0
        _engine.dense_forward(Y2, X, W, b, "relu", n_threads=2)
        assert (_engine.workers_alive() > 0) == threaded, (n_in, _engine.workers_alive())
        _engine.dense_forward(Y1, X, W, b, "relu", n_threads=1)
        assert np.array_equal(Y1, Y2)


def fit_quietly(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)

# ---- one model used from several Python threads ---------------------------


def _small_fit(**params):
    Xs, ys = make_classification(300, 12, n_classes=3, n_informative=6, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPClassifier((16,), **{"max_iter": 3, "random_state": 0, **params}).fit(Xs, ys)
    return model, Xs, ys


@pytest.mark.parametrize("as_list", [False, True])
def test_prediction_changes_nothing_in_a_model_with_weights_set_by_hand(as_list):
    """Predicting must not touch the estimator: a fit running meanwhile in
    another thread trains the buffer the model points to, and a prediction
    that repointed coefs_ would throw that training away. Weights set by
    hand are read where they lie on every call, in-place edits included."""
    model, Xs, _ = _small_fit()
    model.coefs_ = [c * 0.5 for c in model.coefs_]
    model.intercepts_ = [b + 0.1 for b in model.intercepts_]
    before = {name: (value, id(value)) for name, value in model.__dict__.items()}
    items = [id(a) for a in model.coefs_ + model.intercepts_]
    rows = Xs.tolist() if as_list else Xs
    first = model.predict_proba(rows)
    assert {name: id(value) for name, value in model.__dict__.items()} == {
        name: i for name, (_, i) in before.items()
    }
    assert [id(a) for a in model.coefs_ + model.intercepts_] == items
    copy = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(first, copy.predict_proba(rows))
    model.coefs_[0] *= 2  # in place, after a prediction
    copy.coefs_[0] *= 2
    np.testing.assert_array_equal(model.predict_proba(rows), copy.predict_proba(rows))
    assert not np.array_equal(model.predict_proba(rows), first)


def test_a_refit_while_a_prediction_builds_its_predictor_is_seen(monkeypatch):
    """Thread B builds the model's cached predictor from the weights it
    found; thread A refits meanwhile. Later predictions must use A's
    weights, not the ones B built from."""
    import fastmlp._base as base

    model, Xs, ys = _small_fit()
    base._PREDICTORS.pop(model, None)
    built, refitted = threading.Event(), threading.Event()
    real = _engine.Predictor

    def held(*args, **kwargs):
        predictor = real(*args, **kwargs)
        if threading.current_thread().name == "B":
            built.set()
            refitted.wait(30)
        return predictor

    monkeypatch.setattr(_engine, "Predictor", held)
    failures = []

    def predict():
        try:
            model.predict(Xs)
        except Exception as error:  # noqa: BLE001 - any error is the failure
            failures.append(repr(error))

    b = threading.Thread(target=predict, name="B")
    b.start()
    assert built.wait(30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.set_params(random_state=1).fit(Xs, ys)
    refitted.set()
    b.join()
    assert failures == []
    monkeypatch.setattr(_engine, "Predictor", real)
    reference, _, _ = _small_fit(random_state=1)
    np.testing.assert_array_equal(model.predict_proba(Xs), reference.predict_proba(Xs))


def test_a_failed_fit_never_shows_another_thread_an_unfitted_model():
    """A fit that fails puts the attributes back one by one, removing only
    those it added, so a thread predicting meanwhile always finds the
    weights: the model's attribute dictionary is never emptied, and no
    attribute the fitted model had goes missing on the way."""

    class Watched(dict):
        removed: list = []

        def clear(self):
            Watched.removed.extend(self)
            super().clear()

        def __delitem__(self, name):
            Watched.removed.append(name)
            super().__delitem__(name)

    model, Xs, ys = _small_fit()
    had = set(model.__dict__)
    model.__dict__ = Watched(model.__dict__)
    bad = Xs.copy()
    bad[5, 3] = np.nan
    with pytest.raises(ValueError):
        model.fit(bad, ys)
    with pytest.raises(ValueError):
        model.set_params(hidden_layer_sizes=(16, 0)).fit(Xs, ys)
    assert not had & set(Watched.removed)
    assert set(model.__dict__) == had
    np.testing.assert_array_equal(model.set_params(hidden_layer_sizes=(16,)).predict(Xs),
                                  _small_fit()[0].predict(Xs))


def test_very_wide_layers_predict_in_fewer_rows_at_a_time(monkeypatch):
    """Prediction sizes its passes so that the part of its workspace that
    grows with the rows stays within _PREDICT_WORK_BYTES (a layer of
    millions of units could not predict one row with 1,024-row passes);
    the threads' own packing buffers do not count, so many threads leave a
    small network's passes whole. This network's outputs do not change."""
    import fastmlp._base as base

    model, Xs, _ = _small_fit()
    Xw = np.ascontiguousarray(np.tile(Xs, (8, 1)))
    expected = model.predict_proba(Xw)
    general = model.predict_proba(Xw.tolist())
    net = model._network(model._units_from_coefs(), model._stored_dtype())
    many = min(64, _engine.MAX_THREADS)
    assert base._predict_chunk_rows(net, many) == base._PREDICT_CHUNK_ROWS
    budget = net.workspace_bytes(16, 1) - net.workspace_bytes(1, 1)
    monkeypatch.setattr(base, "_PREDICT_WORK_BYTES", budget)
    rows = base._predict_chunk_rows(net, 1)
    assert 1 <= rows <= 16
    assert net.workspace_bytes(rows, 1) - net.workspace_bytes(1, 1) <= budget
    asked = []
    real = base._predict_chunk_rows
    monkeypatch.setattr(base, "_predict_chunk_rows", lambda *a: asked.append(a) or real(*a))
    base._PREDICTORS.pop(model, None)
    np.testing.assert_array_equal(model.predict_proba(Xw), expected)
    np.testing.assert_array_equal(model.predict_proba(Xw.tolist()), general)
    assert len(asked) == 2  # the fast path and the general one
    monkeypatch.setattr(base, "_PREDICT_WORK_BYTES", 0)
    assert real(net, 1) == 1
