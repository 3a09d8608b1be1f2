"""Beyond one machine: partial_fit under dask-ml's Incremental on a
distributed cluster of worker processes, and a hyperparameter search on
joblib's dask backend (extra fastmlp[dask])."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning

import fastmlp

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
wrappers = pytest.importorskip("dask_ml.wrappers")


@pytest.fixture(scope="module")
def client():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
            silence_logs=50,
        )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


X, y = make_classification(4000, 20, n_informative=10, n_classes=3, random_state=0)


@pytest.mark.slow
def test_incremental_training_on_worker_processes_matches_in_memory(client):
    X_d, y_d = da.from_array(X, chunks=1000), da.from_array(y, chunks=1000)
    assert X_d.numblocks[0] == 4
    params = dict(hidden_layer_sizes=(32,), random_state=0, learning_rate_init=0.01)
    distributed_model = wrappers.Incremental(fastmlp.MLPClassifier(**params), shuffle_blocks=False)
    local = fastmlp.MLPClassifier(**params)
    for _ in range(5):  # epochs
        distributed_model.partial_fit(X_d, y_d, classes=[0, 1, 2])
        for start in range(0, 4000, 1000):
            local.partial_fit(X[start : start + 1000], y[start : start + 1000], classes=[0, 1, 2])
    trained = distributed_model.estimator_
    # the workers ran the same partial_fit calls in the same order: the same model
    for a, b in zip(trained.coefs_, local.coefs_):
        np.testing.assert_array_equal(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        in_memory = fastmlp.MLPClassifier(max_iter=5, **params).fit(X, y)
    assert abs(trained.score(X, y) - in_memory.score(X, y)) < 0.03
    assert trained.score(X, y) > 0.8


@pytest.mark.slow
def test_grid_search_runs_its_fits_on_the_workers(client):
    import joblib
    from sklearn.model_selection import GridSearchCV

    search = GridSearchCV(
        fastmlp.MLPClassifier(hidden_layer_sizes=(16,), max_iter=20, random_state=0),
        {"alpha": [1e-4, 1e-2], "learning_rate_init": [1e-3, 1e-2]},
        cv=2,
        n_jobs=-1,
    )
    with distributed.get_task_stream(client) as stream, joblib.parallel_backend("dask"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            search.fit(X, y)
    workers = {task["worker"] for task in stream.data}
    # joblib batches the 8 fits (4 candidates x 2 folds) into tasks the workers ran
    assert stream.data and all(w.startswith("tcp://") for w in workers)
    assert search.best_score_ > 0.7


def test_models_pickle_small():
    import pickle

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = fastmlp.MLPClassifier(hidden_layer_sizes=(64,), solver="lbfgs", max_iter=5).fit(X, y)
    weights = sum(c.nbytes + b.nbytes for c, b in zip(model.coefs_, model.intercepts_))
    assert len(pickle.dumps(model)) < 2 * weights + 10_000
