"""fastmlp: multilayer perceptrons trained on the CPU by a multithreaded C
engine, behind scikit-learn's MLPClassifier / MLPRegressor interface."""

from fastmlp._config import show_config
from fastmlp._interop import from_sklearn
from fastmlp._mlp import MLPClassifier, MLPRegressor
from fastmlp._onnx import to_onnx
from fastmlp._params import InvalidParameterError
from fastmlp._persist import load, save
from fastmlp._threads import _register_with_threadpoolctl

__version__ = "0.1.0"

_register_with_threadpoolctl()

__all__ = [
    "MLPClassifier",
    "MLPRegressor",
    "InvalidParameterError",
    "from_sklearn",
    "load",
    "save",
    "show_config",
    "to_onnx",
    "__version__",
]
