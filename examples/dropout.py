"""
Dropout
=======

On a small noisy data set a wide network memorises the training set;
dropout narrows the gap between training and validation accuracy.
"""

import warnings

from sklearn.exceptions import ConvergenceWarning
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split

from fastmlp import MLPClassifier

warnings.filterwarnings("ignore", category=ConvergenceWarning)  # short runs, on purpose

X, y = make_classification(300, 20, n_informative=4, flip_y=0.3, random_state=3, class_sep=0.8)
X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.5, random_state=0)
for rate in (0.0, 0.5, [0.5, 0.2]):
    model = MLPClassifier(hidden_layer_sizes=(128, 128), dropout=rate, max_iter=100,
                          batch_size=32, random_state=0).fit(X_train, y_train)
    train, val = model.score(X_train, y_train), model.score(X_val, y_val)
    print(f"dropout={rate!s:10s} train {train:.3f}  validation {val:.3f}  gap {train - val:.3f}")
