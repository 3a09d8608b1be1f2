"""fastmlp.dask.fit: one model trained on the chunks of dask arrays by the
worker processes of a distributed cluster.

The reference is the same fit computed in this process (client=False):
each chunk's raw sums added in chunk order. The cluster's fit must equal it
bit for bit, whatever the number of workers and wherever the chunks lie;
with one chunk, the reference is the in-memory fit itself.
"""

import _thread
import importlib
import os
import signal
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning

import fastmlp

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
fastmlp_dask = pytest.importorskip("fastmlp.dask")

X, y = make_classification(2000, 12, n_informative=8, n_classes=3, random_state=0)
Xr, yr = make_regression(2000, 12, n_targets=2, noise=1.0, random_state=1)
yr = yr / 100
WEIGHTS = np.random.RandomState(2).uniform(0.2, 3.0, 2000)
# uneven chunks: 700 + 700 + 600 rows
CHUNKS = 700


def cluster(n_workers, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                        processes=True, dashboard_address=None, silence_logs=50,
                                        **kwargs)


@pytest.fixture(scope="module")
def client():
    with cluster(2) as c, distributed.Client(c) as client:
        yield client


def darrays(*arrays, chunks=CHUNKS):
    return [None if a is None else da.from_array(a, chunks=chunks) for a in arrays]


def fitted(model, *arrays, client=False, chunks=CHUNKS, **fit_params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fastmlp_dask.fit(model, *darrays(*arrays, chunks=chunks), client=client,
                                **fit_params)


def weights_of(model):
    return model.coefs_ + model.intercepts_


def assert_same_weights(a, b):
    for p, q in zip(weights_of(a), weights_of(b)):
        assert p.dtype == q.dtype
        np.testing.assert_array_equal(p, q)


def classifier(**params):
    return fastmlp.MLPClassifier(**{**dict(hidden_layer_sizes=(16,), random_state=0,
                                           max_iter=8), **params})


def regressor(**params):
    return fastmlp.MLPRegressor(**{**dict(hidden_layer_sizes=(16,), random_state=0,
                                          max_iter=8), **params})


# ---- the reference: chunk sums in this process --------------------------------


@pytest.mark.parametrize("solver", ["lbfgs", "rprop", "adam", "sgd"])
@pytest.mark.parametrize("task", ["classifier, float32, weighted", "regressor, float64"])
def test_one_chunk_in_process_is_the_in_memory_fit(solver, task):
    if task.startswith("classifier"):
        model, data = classifier(solver=solver, class_weight="balanced"), (
            X.astype(np.float32), y, WEIGHTS)
    else:
        model, data = regressor(solver=solver), (Xr, yr, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        in_memory = model.__class__(**model.get_params()).fit(*data)
    ours = fitted(model, *data, chunks=len(data[0]))
    assert_same_weights(ours, in_memory)
    assert ours.loss_ == in_memory.loss_ and ours.n_iter_ == in_memory.n_iter_
    if solver != "lbfgs":
        assert ours.loss_curve_ == in_memory.loss_curve_ and ours.t_ == in_memory.t_


def test_mini_batches_take_their_rows_from_every_chunk():
    """Four chunks of 500 rows and batches of 100: 20 steps an epoch, each
    25 rows from every chunk; nearly the in-memory fit's accuracy."""
    model = fitted(classifier(solver="adam", batch_size=100, max_iter=10), X, y, chunks=500)
    assert model._optimizer.t == 10 * 20 and model.t_ == 10 * 2000
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        in_memory = classifier(solver="adam", batch_size=100, max_iter=10).fit(X, y)
    assert abs(model.score(X, y) - in_memory.score(X, y)) < 0.02


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_an_empty_chunk_changes_nothing(solver):
    make = lambda: classifier(solver=solver, early_stopping=solver == "adam")  # noqa: E731
    chunks = ((700, 0, 700, 600), (12,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with_empty = fastmlp_dask.fit(make(), da.from_array(X, chunks=chunks),
                                      da.from_array(y, chunks=chunks[0]), client=False)
    assert_same_weights(with_empty, fitted(make(), X, y))


def test_a_model_fitted_on_chunks_is_an_ordinary_model(tmp_path):
    """It saves, loads, converts to scikit-learn and carries on with
    partial_fit as any fitted model."""
    model = fitted(classifier(solver="adam", max_iter=3), X, y)
    model.save(tmp_path / "model.npz")
    assert_same_weights(fastmlp.load(tmp_path / "model.npz"), model)
    np.testing.assert_allclose(model.to_sklearn().predict_proba(X[:20]),
                               model.predict_proba(X[:20]), rtol=1e-6)
    model.partial_fit(X, y)
    assert model.n_iter_ == 1 and len(model.loss_curve_) == 4


@pytest.mark.slow
def test_fastmlp_itself_never_imports_dask():
    code = "import sys, fastmlp; print(sorted(m for m in sys.modules if m.startswith('dask')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.stdout.strip() == "[]", result.stderr


def test_batches_smaller_than_the_number_of_chunks_still_see_every_row_once():
    """Batches of 6 rows over 8 chunks of 250: a step takes at most one row
    from each chunk (6 * 250 / 2000 < 1), and steps left without rows are
    skipped."""
    model = fitted(classifier(solver="adam", batch_size=6, max_iter=2), X, y, chunks=250)
    assert model.t_ == 2 * 2000
    assert 2 * 2000 // 8 <= model._optimizer.t <= 2 * -(-2000 // 6)
    assert np.isfinite(model.loss_)


# ---- on the cluster: the reference, bit for bit ----------------------------------


CASES = {
    "lbfgs classifier float64 weighted": (lambda: classifier(solver="lbfgs", max_iter=12),
                                          (X, y, WEIGHTS)),
    "lbfgs regressor float32": (lambda: regressor(solver="lbfgs", max_iter=12),
                                (Xr.astype(np.float32), yr, None)),
    "rprop classifier float32 class-weighted": (
        lambda: classifier(solver="rprop", class_weight={0: 2.0, 2: 0.5}),
        (X.astype(np.float32), y, None)),
    "rprop regressor float64 weighted": (lambda: regressor(solver="rprop"), (Xr, yr, WEIGHTS)),
    "adam classifier float32": (lambda: classifier(solver="adam", max_iter=4),
                                (X.astype(np.float32), y, None)),
    "sgd regressor float64 weighted": (lambda: regressor(solver="sgd", max_iter=4),
                                       (Xr, yr, WEIGHTS)),
}


@pytest.mark.parametrize("case", [
    case if i == 0 else pytest.param(case, marks=pytest.mark.slow)
    for i, case in enumerate(CASES)
])
def test_the_cluster_fits_the_reference_bit_for_bit(client, case):
    make, data = CASES[case]
    X_, y_, sw = data
    reference = fitted(make(), X_, y_, sample_weight=None if sw is None else da.from_array(
        sw, chunks=CHUNKS))
    ours = fitted(make(), X_, y_, client=client, sample_weight=None if sw is None else
                  da.from_array(sw, chunks=CHUNKS))
    assert_same_weights(ours, reference)
    assert ours.loss_ == reference.loss_ and ours.n_iter_ == reference.n_iter_
    assert ours.score(X_, y_) == reference.score(X_, y_)


@pytest.mark.slow
@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_where_the_chunks_lie_changes_nothing(client, solver):
    """The chunks placed all on one worker, all on the other, or
    alternating between them: the same fit as in this process."""
    make = lambda: classifier(solver=solver, max_iter=6)  # noqa: E731
    reference = fitted(make(), X, y, chunks=400)
    workers = sorted(client.scheduler_info()["workers"])
    layouts = {"first": [workers[0]] * 5, "second": [workers[1]] * 5,
               "alternating": [workers[i % 2] for i in range(5)]}
    for name, places in layouts.items():
        parts = [(client.scatter(X[i * 400:(i + 1) * 400], workers=[w], hash=False),
                  client.scatter(y[i * 400:(i + 1) * 400], workers=[w], hash=False))
                 for i, w in enumerate(places)]
        held = client.who_has([f for part in parts for f in part])
        assert [set(held[x.key]) for x, _ in parts] == [{w} for w in places], name
        Xp = da.concatenate([da.from_delayed(x, (400, 12), X.dtype) for x, _ in parts])
        yp = da.concatenate([da.from_delayed(t, (400,), y.dtype) for _, t in parts])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ours = fastmlp_dask.fit(make(), Xp, yp, client=client)
        assert_same_weights(ours, reference)


@pytest.mark.slow
def test_one_worker_fits_the_reference_bit_for_bit():
    with cluster(1) as one, distributed.Client(one) as client:
        for make, data in (CASES["lbfgs classifier float64 weighted"],
                           CASES["adam classifier float32"]):
            reference = fitted(make(), *data[:2])
            assert_same_weights(fitted(make(), *data[:2], client=client), reference)


# ---- what the in-memory fit does -------------------------------------------------------


@pytest.mark.slow
def test_early_stopping_holds_out_part_of_every_chunk(client):
    make = lambda: classifier(solver="adam", early_stopping=True, n_iter_no_change=2,  # noqa
                              max_iter=40, learning_rate_init=0.05)
    reference = fitted(make(), X, y)
    ours = fitted(make(), X, y, client=client)
    assert_same_weights(ours, reference)
    assert ours.validation_scores_ == reference.validation_scores_
    assert len(ours.validation_scores_) == ours.n_iter_ < 40  # it stopped early
    # the weights kept are those of the best validation epoch, not the last
    assert ours.best_validation_score_ == max(ours.validation_scores_)
    # held out: about validation_fraction of every chunk
    assert ours._samples_per_epoch == pytest.approx(0.9 * 2000, abs=3)


@pytest.mark.slow
@pytest.mark.parametrize("task", ["classifier", "regressor"])
def test_a_validation_set_is_scored_as_in_memory(client, task):
    if task == "classifier":
        make, (X_, y_) = (lambda: classifier(solver="adam", early_stopping=True,
                                             max_iter=6)), (X, y)
    else:
        make, (X_, y_) = (lambda: regressor(solver="sgd", early_stopping=True,
                                            max_iter=6)), (Xr, yr)
    X_val, y_val = X_[:500] + 0.1, y_[:500]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        in_memory = make().fit(X_, y_, X_val=X_val, y_val=y_val)
    one_chunk = fitted(make(), X_, y_, chunks=2000, X_val=X_val, y_val=y_val)
    assert_same_weights(one_chunk, in_memory)
    assert one_chunk.validation_loss_curve_ == in_memory.validation_loss_curve_
    np.testing.assert_allclose(one_chunk.validation_scores_, in_memory.validation_scores_,
                               rtol=1e-12)
    # on the cluster, the validation set in chunks of its own
    val_chunks = darrays(X_val, y_val, chunks=200)
    reference = fitted(make(), X_, y_, X_val=val_chunks[0], y_val=val_chunks[1])
    ours = fitted(make(), X_, y_, client=client, X_val=val_chunks[0], y_val=val_chunks[1])
    assert_same_weights(ours, reference)
    assert ours.validation_scores_ == reference.validation_scores_


@pytest.mark.slow
@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_warm_starts_carry_on_as_in_memory(client, solver):
    make = lambda: classifier(solver=solver, max_iter=3, warm_start=True)  # noqa: E731
    in_memory, one_chunk, reference, ours = make(), make(), make(), make()
    for _ in range(3):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            in_memory.fit(X, y)
        fitted(one_chunk, X, y, chunks=2000)
        fitted(reference, X, y)
        fitted(ours, X, y, client=client)
    assert_same_weights(one_chunk, in_memory)
    assert_same_weights(ours, reference)
    assert ours.n_iter_ == 3
    if solver == "adam":
        assert len(ours.loss_curve_) == 9 and ours.loss_curve_ == reference.loss_curve_


def test_a_warm_start_keeps_the_weights_dtype():
    """As in memory: a fitted float64 model warm-started on float32 chunks
    trains on in float64, to the weights of the in-memory fit."""
    make = lambda: classifier(max_iter=3, warm_start=True)  # noqa: E731
    ours, in_memory = fitted(make(), X, y), make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        in_memory.fit(X, y).fit(X.astype(np.float32), y)
    fitted(ours, X.astype(np.float32), y)
    assert all(w.dtype == np.float64 for w in weights_of(ours) + weights_of(in_memory))
    # the float32 data, held as float64
    reference = fitted(fitted(make(), X, y), X.astype(np.float32).astype(np.float64), y)
    assert_same_weights(ours, reference)


def test_label_indicator_targets_and_string_labels():
    Y = (np.abs(X[:, :3]) > 0.8).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        in_memory = classifier(solver="lbfgs").fit(X, Y)
    assert_same_weights(fitted(classifier(solver="lbfgs"), X, Y, chunks=2000), in_memory)
    names = np.array(["ant", "bee", "cat"])[y]
    model = fitted(classifier(solver="rprop"), X, names)
    assert list(model.classes_) == ["ant", "bee", "cat"]
    assert set(model.predict(X[:50])) <= set(names)


# ---- bad input ------------------------------------------------------------------------


def _bad_inputs():
    """(action, error, message) for malformed input to fastmlp.dask.fit, the
    cases of tests/test_bad_input.py that apply, trained in this process."""
    rng = np.random.RandomState(0)
    Xs, ys, yr_ = rng.rand(40, 4), np.arange(40) % 3, rng.rand(40)

    def nan(a, value=np.nan):
        a = np.array(a, dtype=float)
        a.flat[1] = value
        return a

    def fit(model, *data, **kwargs):
        return fastmlp_dask.fit(model, *data, client=False, **kwargs)

    C, R = fastmlp.MLPClassifier, fastmlp.MLPRegressor
    return {
        "NaN X": (lambda: fit(C(max_iter=2), nan(Xs), ys), ValueError, "NaN"),
        "inf X": (lambda: fit(C(max_iter=2), nan(Xs, np.inf), ys), ValueError, "infinity"),
        "1-D X": (lambda: fit(C(), Xs[:, 0], ys), ValueError, "2D array"),
        "3-D X": (lambda: fit(C(), Xs[:, :, None], ys), ValueError, "dim 3"),
        "empty X": (lambda: fit(C(), np.empty((0, 4)), ys[:0]), ValueError, "0 sample"),
        "strings X": (lambda: fit(C(), np.full((40, 4), "x"), ys), ValueError, "(?i)string"),
        "complex X": (lambda: fit(C(), Xs + 1j, ys), ValueError, "Complex"),
        "objects X": (lambda: fit(C(), np.array([[object()] * 4] * 40), ys), ValueError,
                      "float"),
        "NaN y": (lambda: fit(R(), Xs, nan(yr_)), ValueError, "NaN"),
        "inf sample_weight": (lambda: fit(R(), Xs, yr_, sample_weight=nan(np.ones(40), np.inf)),
                              ValueError, "infinity"),
        "zero-length y": (lambda: fit(C(), Xs, ys[:0]), ValueError, "inconsistent"),
        "mismatched lengths": (lambda: fit(C(), Xs, ys[:30]), ValueError, "inconsistent"),
        "sample_weight length": (lambda: fit(C(), Xs, ys, sample_weight=np.ones(3)), ValueError,
                                 "sample_weight"),
        "continuous y for a classifier": (lambda: fit(C(), Xs, yr_), ValueError, "label type"),
        "string y for a regressor": (lambda: fit(R(), Xs, np.array(["a"] * 40)), ValueError,
                                     "convert"),
        "X_val without y_val": (lambda: fit(C(), Xs, ys, X_val=Xs), ValueError, "go together"),
        "NaN X_val": (lambda: fit(C(), Xs, ys, X_val=nan(Xs), y_val=ys), ValueError, "NaN"),
        "X_val feature count": (lambda: fit(C(), Xs, ys, X_val=rng.rand(40, 6), y_val=ys),
                                ValueError, "features"),
        "X_val and y_val lengths": (lambda: fit(R(), Xs, yr_, X_val=Xs, y_val=yr_[:9]),
                                    ValueError, "X_val has 40 samples but y_val has 9"),
        "y_val classes": (lambda: fit(C(), Xs, ys, X_val=Xs, y_val=ys + 7), ValueError,
                          "y_val has classes not in"),
        "NaN y_val": (lambda: fit(R(), Xs, yr_, X_val=Xs, y_val=nan(yr_)), ValueError, "y_val"),
        "y_val target count": (lambda: fit(R(), Xs, yr_, X_val=Xs, y_val=np.ones((40, 2))),
                               ValueError, "y_val has 2 targets"),
        "negative poisson y_val": (lambda: fit(R(loss="poisson"), Xs, yr_, X_val=Xs,
                                               y_val=-yr_), ValueError,
                                   "non-negative targets y_val"),
        "X_val with lbfgs": (lambda: fit(R(solver="lbfgs"), Xs, yr_, X_val=Xs, y_val=yr_),
                             ValueError, "X_val needs a stochastic solver"),
        "a layer too wide to allocate": (lambda: fit(C(hidden_layer_sizes=(10**13,)), Xs, ys),
                                         MemoryError, ""),
        "dropout": (lambda: fit(C(dropout=0.1), Xs, ys), ValueError, "dropout is not available"),
        "a bad parameter": (lambda: fit(C(alpha=-1.0), Xs, ys), ValueError, "alpha"),
        "not a fastmlp estimator": (lambda: fit(object(), Xs, ys), TypeError,
                                    "fastmlp's estimators"),
        "not a client": (lambda: fastmlp_dask.fit(C(), Xs, ys, client="tcp://nowhere:8786"),
                         TypeError, "client must be a distributed.Client"),
    }


@pytest.mark.parametrize("case", sorted(_bad_inputs()))
def test_bad_input_gets_the_in_memory_fits_error(case):
    action, error, message = _bad_inputs()[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(error, match=message):
            action()


@pytest.mark.slow
def test_bad_input_gets_a_clear_error_and_leaves_the_model_as_it_was(client):
    model = fitted(classifier(solver="adam", max_iter=2, warm_start=True), X, y, client=client)
    saved = [a.copy() for a in weights_of(model)]
    bad = X.copy()
    bad[1500, 3] = np.nan
    cases = [
        ((bad, y), ValueError, r"(?s)Input X contains NaN.*\(in chunk 2\)"),
        ((X, y[:1999]), ValueError, "inconsistent numbers of samples"),
        ((X[:, :5], y), ValueError, "X has 5 features, but MLPClassifier is expecting 12"),
        ((X, np.where(y == 2, 7, y)), ValueError, "same classes as in the previous call"),
    ]
    for data, kind, message in cases:
        with pytest.raises(kind, match=message):
            fitted(model, *data, client=client)
        for a, b in zip(weights_of(model), saved):
            np.testing.assert_array_equal(a, b)
        assert model.n_iter_ == 2 and len(model.loss_curve_) == 2
    with pytest.raises(ValueError, match="dropout is not available"):
        fitted(classifier(dropout=0.2), X, y, client=client)
    with pytest.raises(ValueError, match="y_val has classes not in"):
        fitted(classifier(solver="adam"), X, y, client=client, X_val=X[:10], y_val=y[:10] + 5)
    with pytest.raises(TypeError, match="fastmlp's estimators"):
        fastmlp_dask.fit(object(), *darrays(X, y), client=client)
    Xd, yd = darrays(X, y)
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        fastmlp_dask.fit(classifier(), Xd[yd > 0], yd[yd > 0], client=client)


@pytest.mark.slow
def test_without_a_client_it_says_how_to_get_one():
    code = ("import dask.array as da, fastmlp, fastmlp.dask\n"
            "fastmlp.dask.fit(fastmlp.MLPClassifier(), da.ones((4, 2)), da.ones(4))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert "client=False to train in this process" in result.stderr


# ---- data larger than the cluster's memory ------------------------------------------------


def _labels(block, w):
    return (block @ w > 0).astype(np.int8)


def _status_bytes(key):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key):
                return int(line.split()[1]) * 1024  # kB
    raise KeyError(key)


def _peak():
    return _status_bytes("VmHWM:")


def _restart_peak():
    """Reset the worker process's peak resident memory to what it holds
    now (Linux: /proc/self/clear_refs), and return that."""
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    return _peak()


def _import_fastmlp_dask():
    importlib.import_module("fastmlp.dask")


@pytest.mark.slow
def test_data_streams_through_the_workers_chunk_by_chunk():
    """1 GiB generated lazily in 16 MiB chunks on two workers: every pass
    computes the chunks afresh on the workers, so a worker's peak memory
    over the fit grows by a small part of its 512 MiB share and nothing is
    gathered anywhere.  (No memory_limit: what a worker takes before any
    task runs depends on what its imports pull in, and a worker paused by a
    limit set too near that waits for ever; the peak shows the streaming.)"""
    n, d = 64 * 131_072, 32
    w = np.random.RandomState(0).standard_normal(d).astype(np.float32)
    Xl = da.random.default_rng(0).standard_normal((n, d), dtype=np.float32,
                                                   chunks=(n // 64, d))
    yl = Xl.map_blocks(_labels, w, drop_axis=1, dtype=np.int8)
    share = Xl.nbytes // 2
    try:
        _restart_peak()
    except OSError as error:  # not Linux, or a /proc that refuses the reset
        pytest.skip(f"peak memory cannot be reset here: {error}")
    with cluster(2, memory_limit=0) as c, distributed.Client(c) as client:
        client.wait_for_workers(2)
        # the fit's first task imports fastmlp (and scikit-learn, scipy...)
        # on the worker: import them first, so that what is measured is data
        client.run(_import_fastmlp_dask)
        before = client.run(_restart_peak)
        model = fastmlp.MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=1,
                                      random_state=0)
        with distributed.get_task_stream(client) as stream:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                fastmlp_dask.fit(model, Xl, yl, client=client)
        peaks = client.run(_peak)
        # each chunk computed once per pass: the check, then L-BFGS's
        # evaluations
        generated = [t for t in stream.data if "standard_normal" in str(t["key"])]
        assert len(generated) % 64 == 0 and 3 <= len(generated) // 64 <= 5
        # both workers took part, and neither held more than a quarter of
        # its share (a few 16 MiB chunks and their temporaries) at once
        assert {t["worker"] for t in generated} == set(before)
        for worker, peak in peaks.items():
            assert peak - before[worker] < share // 4, (peak - before[worker]) / 2**20
    sample = Xl[:20000].compute()
    assert model.score(sample, _labels(sample, w)) > 0.6  # one iteration from a coin flip


# ---- faults -------------------------------------------------------------------------------


def _kill_at(epoch, pid):
    def callback(model, record):
        if record.epoch == epoch:
            os.kill(pid, signal.SIGKILL)
    return callback


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")
def test_a_worker_killed_mid_fit_is_made_up_for(client):
    """Dask computes the lost chunks again from their graph and the fit
    carries on to the same weights as an undisturbed one."""
    client.wait_for_workers(2)
    pids = sorted(client.run(os.getpid).values())
    make = lambda **p: classifier(solver="adam", max_iter=6, **p)  # noqa: E731
    reference = fitted(make(), X, y, chunks=400)
    ours = fitted(make(callbacks=[_kill_at(3, pids[0])]), X, y, client=client, chunks=400)
    assert_same_weights(ours, reference)
    assert pids[0] not in client.run(os.getpid).values()

    client.wait_for_workers(2)
    pid = sorted(client.run(os.getpid).values())[1]
    make = lambda: classifier(solver="lbfgs", max_iter=40, tol=0)  # noqa: E731
    reference = fitted(make(), X, y, chunks=400)
    killer = threading.Timer(1.0, os.kill, (pid, signal.SIGKILL))
    killer.start()
    ours = fitted(make(), X, y, client=client, chunks=400)
    killer.join()
    assert_same_weights(ours, reference)
    assert pid not in client.run(os.getpid).values()
    client.wait_for_workers(2)


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")
def test_data_lost_for_good_raises_and_leaves_the_model_as_it_was(client):
    """Chunks scattered to the workers have no graph to compute them
    from: when every worker is killed mid-fit, the fit cannot go on."""
    client.wait_for_workers(2)
    workers = sorted(client.scheduler_info()["workers"])
    blocks = [client.scatter(part, workers=[workers[i % 2]])
              for i, part in enumerate(np.array_split(X, 4))]
    labels = [client.scatter(part, workers=[workers[i % 2]])
              for i, part in enumerate(np.array_split(y, 4))]
    Xs = da.concatenate([da.from_delayed(b, (500, 12), X.dtype) for b in blocks])
    ys = da.concatenate([da.from_delayed(b, (500,), y.dtype) for b in labels])
    model = classifier(solver="adam", max_iter=2, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fastmlp_dask.fit(model, Xs, ys, client=client)
    saved = [a.copy() for a in weights_of(model)]
    curve = list(model.loss_curve_)
    pids = list(client.run(os.getpid).values())

    def kill_all(model, record):
        if record.epoch == 1:
            for pid in pids:
                os.kill(pid, signal.SIGKILL)

    model.set_params(callbacks=[kill_all], max_iter=5)
    with pytest.raises(RuntimeError, match="left as it was before this fit"):
        fastmlp_dask.fit(model, Xs, ys, client=client)
    for a, b in zip(weights_of(model), saved):
        np.testing.assert_array_equal(a, b)
    assert model.loss_curve_ == curve and model.n_iter_ == 2
    client.wait_for_workers(2)


# ---- Ctrl-C --------------------------------------------------------------------------


@pytest.mark.slow
def test_ctrl_c_keeps_the_last_completed_epoch(client):
    # Ctrl-C after every epoch from the third on, as a user presses again
    # when a press is lost: Python drops a KeyboardInterrupt that lands in a
    # finalizer (seen in a dask Future's __del__ on a loaded machine)
    fitting, timers = threading.Event(), []

    def press():
        if fitting.is_set():
            _thread.interrupt_main()

    def interrupt(model, record):
        if record.epoch >= 3:
            timers.append(threading.Timer(0.05, press))
            timers[-1].start()

    params = dict(solver="adam", max_iter=1000, tol=0)
    fitting.set()
    try:
        with pytest.warns(UserWarning, match="Training interrupted by user."):
            ours = fitted(classifier(callbacks=[interrupt], **params), X, y, client=client)
    finally:
        fitting.clear()
        for timer in timers:
            timer.cancel()
            timer.join()
    assert 3 <= ours.n_iter_ < 1000 and len(ours.loss_curve_) == ours.n_iter_
    assert_same_weights(ours, fitted(classifier(**{**params, "max_iter": ours.n_iter_}), X, y))


@pytest.mark.slow
def test_ctrl_c_keeps_the_last_completed_lbfgs_iteration(client):
    params = dict(solver="lbfgs", max_iter=100_000, max_fun=100_000, tol=0)
    timer = threading.Timer(1.0, _thread.interrupt_main)
    timer.start()
    with pytest.warns(UserWarning, match="Training interrupted by user."):
        ours = fitted(classifier(**params), X, y, client=client)
    timer.join()
    assert 0 < ours.n_iter_ < 100_000
    reference = fitted(classifier(**{**params, "max_iter": ours.n_iter_}), X, y)
    assert_same_weights(ours, reference)
    assert ours.loss_ == reference.loss_
