"""
Handwritten digits
==================

fastmlp next to scikit-learn's MLPClassifier: same parameters, same
random_state, same model.
"""

import warnings

from sklearn.exceptions import ConvergenceWarning
import time

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SklearnMLP

from fastmlp import MLPClassifier

warnings.filterwarnings("ignore", category=ConvergenceWarning)  # short runs, on purpose

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, random_state=0)
params = dict(hidden_layer_sizes=(128,), max_iter=60, random_state=0)
for name, cls in [("fastmlp", MLPClassifier), ("scikit-learn", SklearnMLP)]:
    start = time.perf_counter()
    model = cls(**params).fit(X_train, y_train)
    print(f"{name:12s} accuracy {model.score(X_test, y_test):.4f} in {time.perf_counter() - start:.2f} s")
