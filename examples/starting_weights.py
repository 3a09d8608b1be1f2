"""
Starting weights
================

Without a dummy fit: give them outright, or choose how they are drawn.
"""

import warnings

from sklearn.exceptions import ConvergenceWarning
import numpy as np
from sklearn.datasets import make_classification

from fastmlp import MLPClassifier

warnings.filterwarnings("ignore", category=ConvergenceWarning)  # short runs, on purpose

X, y = make_classification(500, 6, random_state=0)
rng = np.random.default_rng(1)
coefs = [rng.normal(0, 0.3, (6, 10)), rng.normal(0, 0.3, (10, 1))]
intercepts = [np.zeros(10), np.zeros(1)]
model = MLPClassifier(hidden_layer_sizes=(10,), coefs_init=coefs, intercepts_init=intercepts,
                      max_iter=1, learning_rate_init=1e-12).fit(X, y)
print("given weights used as they are:", np.allclose(model.coefs_[0], coefs[0]))
for scheme in ["sklearn", "glorot_uniform", "he_uniform", "he_normal", "lecun_normal"]:
    model = MLPClassifier(hidden_layer_sizes=(64,), weight_init=scheme, max_iter=30,
                          random_state=0).fit(X, y)
    print(f"weight_init={scheme:15s} accuracy {model.score(X, y):.3f}")
