"""
More optimizers
===============

AdamW (decoupled weight decay), full-batch iRprop-, and gradient clipping.
"""

import warnings

from sklearn.exceptions import ConvergenceWarning
import numpy as np
from sklearn.datasets import make_classification

from fastmlp import MLPClassifier

warnings.filterwarnings("ignore", category=ConvergenceWarning)  # short runs, on purpose

X, y = make_classification(3000, 20, n_informative=8, random_state=0)
norm = lambda m: np.sqrt(sum((c**2).sum() for c in m.coefs_))  # noqa: E731
for solver, extra in [("adam", {}), ("adamw", {"alpha": 0.1}), ("rprop", {"learning_rate_init": 0.01}),
                      ("sgd", {"learning_rate_init": 0.5, "clip_grad_norm": 1.0})]:
    model = MLPClassifier(hidden_layer_sizes=(64,), solver=solver, max_iter=60, random_state=0,
                          **extra).fit(X, y)
    print(f"{solver:6s} {extra!s:45s} accuracy {model.score(X, y):.3f}  weight norm {norm(model):.2f}")
