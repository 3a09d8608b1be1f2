"""Results do not depend on the thread count, and fits in concurrent Python
threads (the engine releases the GIL) give what they give alone."""

import threading
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


def fit(n_threads, solver, data=X, **params):
    model = MLPClassifier(
        hidden_layer_sizes=(256, 128),
        solver=solver,
        batch_size=512,
        max_iter=3,
        random_state=0,
        n_threads=n_threads,
        **params,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(data, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_bit_identical_for_any_thread_count(solver, dtype):
    models = [fit(k, solver, X.astype(dtype)) for k in (1, 2, 3, 8)]
    for other in models[1:]:
        for a, b in zip(models[0].coefs_ + models[0].intercepts_, other.coefs_ + other.intercepts_):
            assert np.array_equal(a, b)
        assert other.loss_ == models[0].loss_
    probas = [m.predict_proba(X.astype(dtype)) for m in models]
    for p in probas[1:]:
        assert np.array_equal(p, probas[0])


def test_bit_identical_for_sparse_input():
    Xs = sp.csr_matrix(np.where(np.abs(X) > 1.0, X, 0.0))
    a, b = fit(1, "adam", Xs, early_stopping=True), fit(3, "adam", Xs, early_stopping=True)
    for u, v in zip(a.coefs_, b.coefs_):
        assert np.array_equal(u, v)


def test_concurrent_fits_in_python_threads_match_serial_fits():
    Xr = X[:, :20]
    target = X[:, 20]

    def make(seed):
        return MLPRegressor(hidden_layer_sizes=(64,), max_iter=5, random_state=seed, n_threads=1)

    serial = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        serial = [make(seed).fit(Xr, target) for seed in range(4)]
        concurrent = [make(seed) for seed in range(4)]
        threads = [threading.Thread(target=m.fit, args=(Xr, target)) for m in concurrent]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for a, b in zip(serial, concurrent):
        assert np.array_equal(a.coefs_[0], b.coefs_[0])


def test_n_threads_resolution():
    assert effective_n_threads(3) == (3 if _engine.HAVE_THREADS else 1)
    assert effective_n_threads(None) >= 1
    assert effective_n_threads(-1) >= effective_n_threads(-2) >= 1
    with pytest.raises(ValueError):
        MLPClassifier(n_threads=0).fit(X, y)
