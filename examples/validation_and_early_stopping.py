"""
A validation set and early stopping
===================================

A validation set of your own: its loss is recorded every epoch, and early
stopping can watch that loss (not only the score) and keep the best weights.
"""

import warnings

from sklearn.exceptions import ConvergenceWarning
import numpy as np
from sklearn.datasets import make_regression
from sklearn.model_selection import train_test_split

from fastmlp import MLPRegressor

warnings.filterwarnings("ignore", category=ConvergenceWarning)  # short runs, on purpose

X, y = make_regression(300, 10, noise=20.0, random_state=0)
X_train, X_val, y_train, y_val = train_test_split(X / 3, y / 100, random_state=0)
model = MLPRegressor(hidden_layer_sizes=(128,), early_stopping=True, early_stopping_metric="loss",
                     learning_rate_init=0.01, max_iter=400, n_iter_no_change=20, random_state=0)
model.fit(X_train, y_train, X_val=X_val, y_val=y_val)
best = int(np.argmin(model.validation_loss_curve_))
print(f"stopped after {model.n_iter_} epochs; best validation loss "
      f"{model.best_validation_loss_:.4f} at epoch {best + 1}, whose weights the model keeps")
print(f"training loss went on down to {model.loss_curve_[-1]:.4f}: the later epochs overfitted")
