"""
Training with Dask
==================

Beyond one machine: one model trained by a cluster of worker processes on
data generated and kept on the workers (``fastmlp.dask.fit``: each worker
computes the gradient of its chunks, the client adds them up), and a grid
search whose fits run on the workers (``pip install fastmlp[dask]``).
"""

import tempfile
import warnings

import dask
import dask.array as da
import joblib
import numpy as np
from distributed import Client, LocalCluster
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

import fastmlp.dask
from fastmlp import MLPClassifier

warnings.filterwarnings("ignore", category=ConvergenceWarning)  # short runs, on purpose


def labels(block, weights):
    """Three classes: which of three linear scores of the features is the
    highest."""
    return np.argmax(block @ weights, axis=1)


if __name__ == "__main__":
    weights = np.random.RandomState(0).standard_normal((20, 3)).astype(np.float32)
    # Dask's scratch space in a folder removed at the end
    with tempfile.TemporaryDirectory() as scratch, \
            dask.config.set({"temporary-directory": scratch}), \
            LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        # 200,000 rows in 4 chunks of 50,000, generated on the workers
        X = da.random.default_rng(0).standard_normal((200_000, 20), dtype=np.float32,
                                                     chunks=(50_000, 20))
        y = X.map_blocks(labels, weights, drop_axis=1, dtype=np.int64)
        X, y = client.persist([X, y])
        X_test = np.random.RandomState(1).standard_normal((5000, 20)).astype(np.float32)
        y_test = labels(X_test, weights)

        # Full batch: the workers sum loss and gradient over their chunks,
        # the client adds the sums up in chunk order and runs L-BFGS
        params = dict(hidden_layer_sizes=(32,), solver="lbfgs", max_iter=50, random_state=0)
        model = fastmlp.dask.fit(MLPClassifier(**params), X, y)
        print(f"L-BFGS over {X.numblocks[0]} chunks on {len(client.nthreads())} workers: "
              f"accuracy {model.score(X_test, y_test):.3f}")
        # the same fit computed chunk by chunk in this process: the same weights
        here = fastmlp.dask.fit(MLPClassifier(**params), X, y, client=False)
        same = all(np.array_equal(a, b) for a, b in zip(model.coefs_, here.coefs_))
        print(f"the same weights as the fit computed in this process: {same}")

        # Mini-batches: each step of 8,000 rows takes 2,000 from every chunk;
        # early stopping holds out a tenth of every chunk
        adam = fastmlp.dask.fit(MLPClassifier(hidden_layer_sizes=(32,), batch_size=8000,
                                              learning_rate_init=0.01, early_stopping=True,
                                              max_iter=12, random_state=0), X, y)
        print(f"Adam in steps of 8,000 rows: {adam.n_iter_} epochs, best validation score "
              f"{adam.best_validation_score_:.3f}, accuracy {adam.score(X_test, y_test):.3f}")

        search = GridSearchCV(MLPClassifier(hidden_layer_sizes=(16,), max_iter=20, random_state=0),
                              {"alpha": [1e-4, 1e-2], "learning_rate_init": [1e-3, 1e-2]},
                              cv=3, n_jobs=-1)
        with joblib.parallel_backend("dask"):  # the cross-validation fits run on the workers
            search.fit(X_test, y_test)
        print(f"grid search on the workers: best {search.best_params_}, score {search.best_score_:.3f}")
