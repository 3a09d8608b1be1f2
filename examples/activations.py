"""
Activations
===========

scikit-learn's four, fastmlp's five more, and one per layer, each fitting
the same nonlinear regression.
"""

import warnings

from sklearn.exceptions import ConvergenceWarning
from sklearn.datasets import make_friedman1
from sklearn.model_selection import train_test_split

from fastmlp import MLPRegressor

warnings.filterwarnings("ignore", category=ConvergenceWarning)  # short runs, on purpose

X, y = make_friedman1(2000, noise=0.5, random_state=0)  # a nonlinear target
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
for activation in ["relu", "tanh", "leaky_relu", "elu", "gelu", "softplus", "silu", ("gelu", "tanh")]:
    model = MLPRegressor(hidden_layer_sizes=(32, 16), activation=activation, solver="lbfgs",
                         max_iter=200, random_state=0).fit(X_train, y_train)
    print(f"{activation!s:20s} R^2 {model.score(X_test, y_test):.4f}")
