"""
Class weights
=============

Weighting a rare class moves the decision boundary toward it, so more of
it is found.
"""

import warnings

from sklearn.exceptions import ConvergenceWarning
from sklearn.datasets import make_classification
from sklearn.metrics import recall_score

from fastmlp import MLPClassifier

warnings.filterwarnings("ignore", category=ConvergenceWarning)  # short runs, on purpose

X, y = make_classification(2000, 4, n_informative=2, n_redundant=0, weights=[0.95, 0.05],
                           class_sep=0.3, flip_y=0.02, random_state=0)
for class_weight in (None, "balanced", {0: 1, 1: 5}):
    model = MLPClassifier(hidden_layer_sizes=(8,), max_iter=100, random_state=0,
                          class_weight=class_weight).fit(X, y)
    print(f"class_weight={class_weight!s:16s} rare-class recall {recall_score(y, model.predict(X)):.2f}, "
          f"predicted rare {int((model.predict(X) == 1).sum())} of {int((y == 1).sum())} true")
