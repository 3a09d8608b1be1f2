"""fastmlp: multilayer perceptrons trained on the CPU by a multithreaded C
engine, behind scikit-learn's MLPClassifier / MLPRegressor interface."""

from fastmlp._mlp import MLPClassifier, MLPRegressor
from fastmlp._params import InvalidParameterError

__version__ = "0.1.0"

__all__ = ["MLPClassifier", "MLPRegressor", "InvalidParameterError", "__version__"]
