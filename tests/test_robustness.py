"""Divergence, concurrent use, memory growth, and random configurations
(hypothesis): never a crash, a silent NaN model, or a thread-dependent
answer."""

import gc
import threading
import tracemalloc
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning

from fastmlp import MLPClassifier, MLPRegressor

X, y = make_classification(300, 10, n_informative=6, n_classes=3, random_state=0)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_a_diverging_fit_raises_and_keeps_finite_weights(momentum):
    model = MLPRegressor(
        hidden_layer_sizes=(8,), solver="sgd", momentum=momentum, learning_rate_init=50.0,
        max_iter=100, random_state=0,
    )
    with pytest.raises(ValueError, match="non-finite parameter weights"):
        model.fit(X, y * 1e4)
    assert 0 <= model.n_iter_ < 100
    assert all(np.isfinite(c).all() for c in model.coefs_ + model.intercepts_)


def test_one_model_predicts_the_same_from_eight_threads():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPClassifier(hidden_layer_sizes=(256, 128), max_iter=3, random_state=0).fit(X, y)
    big = np.random.default_rng(0).standard_normal((3000, 10))
    expected = model.predict_proba(big)
    results, errors = [None] * 8, []

    def work(i):
        try:
            for _ in range(20):
                results[i] = model.predict_proba(big)
                assert np.array_equal(results[i], expected)
        except AssertionError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(np.array_equal(r, expected) for r in results)


def rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    pytest.skip("no /proc/self/status")


@pytest.mark.slow
def test_repeated_fit_predict_partial_fit_does_not_leak():
    def cycle():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = MLPClassifier(hidden_layer_sizes=(32,), max_iter=2, random_state=0).fit(X, y)
            model.predict_proba(X)
            model.partial_fit(X, y)
            MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=3).fit(X, y).predict(X)

    for _ in range(20):
        cycle()
    gc.collect()
    before = rss_mib()
    for _ in range(300):
        cycle()
    gc.collect()
    assert rss_mib() - before < 20


@pytest.mark.parametrize("solver,batch_size", [("rprop", "auto"), ("adam", 20_000)])
def test_full_batch_training_memory_does_not_grow_with_the_data(solver, batch_size):
    """A 20,000-row batch passes through the network in pieces: the fit's
    buffers stay a fraction of what the whole batch's activations would
    take (20,000 x 64 hidden units x 8 bytes x 3 buffers = 31 MB)."""
    rng = np.random.RandomState(0)
    Xb = rng.rand(20_000, 50)
    model = MLPRegressor(hidden_layer_sizes=(64,), solver=solver, batch_size=batch_size,
                         max_iter=2, random_state=0)
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(Xb, Xb[:, 0])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 40),
    n_features=st.integers(1, 6),
    widths=st.lists(st.integers(1, 12), min_size=0, max_size=3),
    activation=st.sampled_from(["identity", "logistic", "tanh", "relu"]),
    solver=st.sampled_from(["sgd", "adam", "lbfgs"]),
    dtype=st.sampled_from([np.float32, np.float64]),
    batch_size=st.one_of(st.just("auto"), st.integers(1, 50)),
    n_classes=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_random_configurations_fit_predict_and_repeat(
    n, n_features, widths, activation, solver, dtype, batch_size, n_classes, seed
):
    rng = np.random.default_rng(seed)
    Xh = rng.standard_normal((n, n_features)).astype(dtype)
    yh = rng.integers(0, n_classes, n)
    params = dict(
        hidden_layer_sizes=tuple(widths), activation=activation, solver=solver,
        batch_size=batch_size, max_iter=3, random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MLPClassifier(**params).fit(Xh, yh)
        again = MLPClassifier(**params).fit(Xh, yh)
    proba = model.predict_proba(Xh)
    assert proba.shape == (n, len(np.unique(yh)) if len(np.unique(yh)) > 1 else 2) or len(np.unique(yh)) == 1
    assert np.isfinite(proba).all()
    assert proba.dtype == dtype
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    assert set(model.predict(Xh)) <= set(yh)
    for a, b in zip(model.coefs_ + model.intercepts_, again.coefs_ + again.intercepts_):
        assert np.array_equal(a, b)
