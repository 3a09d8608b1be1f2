"""
Regression in float32, saved to a file
======================================

Multi-output regression, float32 end to end, and the model saved to a file
that cannot run code when loaded.
"""

import warnings

from sklearn.exceptions import ConvergenceWarning
import tempfile
from pathlib import Path

import numpy as np
from sklearn.datasets import make_regression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import fastmlp

warnings.filterwarnings("ignore", category=ConvergenceWarning)  # short runs, on purpose

X, y = make_regression(5000, 20, n_targets=3, noise=5.0, random_state=0)
X = StandardScaler().fit_transform(X).astype(np.float32)
y = (y / y.std()).astype(np.float32)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

model = fastmlp.MLPRegressor(hidden_layer_sizes=(64, 32), max_iter=50, random_state=0)
model.fit(X_train, y_train)
print(f"R^2 on held-out data: {model.score(X_test, y_test):.4f}")
print(f"weights and predictions stay float32: {model.coefs_[0].dtype}, {model.predict(X_test).dtype}")

with tempfile.TemporaryDirectory() as folder:  # removed, with the model file, at the end
    path = Path(folder) / "regressor.npz"
    model.save(path)
    again = fastmlp.load(path)
print(f"reloaded from {path.name}: same predictions = {np.array_equal(again.predict(X_test), model.predict(X_test))}")
