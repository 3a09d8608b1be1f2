"""
Training with Dask
==================

Beyond one machine: incremental training over a dask array too large for
one chunk, on a cluster of worker processes, and a grid search whose fits
run on the workers (``pip install fastmlp[dask]``).
"""

import tempfile
import warnings

import dask
import dask.array as da
import joblib
from dask_ml.wrappers import Incremental
from distributed import Client, LocalCluster
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

from fastmlp import MLPClassifier

warnings.filterwarnings("ignore", category=ConvergenceWarning)  # short runs, on purpose

if __name__ == "__main__":
    X, y = make_classification(20000, 20, n_informative=10, n_classes=3, random_state=0)
    X_d, y_d = da.from_array(X, chunks=5000), da.from_array(y, chunks=5000)
    # Dask's scratch space in a folder removed at the end
    with tempfile.TemporaryDirectory() as scratch, \
            dask.config.set({"temporary-directory": scratch}), \
            LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster):
        model = Incremental(MLPClassifier(hidden_layer_sizes=(32,), random_state=0),
                            shuffle_blocks=False)
        for epoch in range(5):  # each call: one partial_fit per block, on the workers
            model.partial_fit(X_d, y_d, classes=[0, 1, 2])
        print(f"incremental training over {X_d.numblocks[0]} blocks: "
              f"accuracy {model.estimator_.score(X, y):.3f}")

        search = GridSearchCV(MLPClassifier(hidden_layer_sizes=(16,), max_iter=20, random_state=0),
                              {"alpha": [1e-4, 1e-2], "learning_rate_init": [1e-3, 1e-2]},
                              cv=3, n_jobs=-1)
        with joblib.parallel_backend("dask"):  # the cross-validation fits run on the workers
            search.fit(X, y)
        print(f"grid search on the workers: best {search.best_params_}, score {search.best_score_:.3f}")
