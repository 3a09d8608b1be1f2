"""fastmlp: multilayer perceptrons trained on the CPU by a multithreaded C
engine, behind scikit-learn's MLPClassifier / MLPRegressor interface."""

import os

# Between two parallel loops of a batch, OpenMP (GNU) threads spin a while
# before they sleep; by default that while is too short on virtual machines,
# where waking a sleeping CPU is slow, and threads then cost more than they
# give. About 25 ms of spinning keeps them awake through training. Set
# before the engine loads OpenMP; a value the user set is kept.
os.environ.setdefault("GOMP_SPINCOUNT", "1000000")

from fastmlp._interop import from_sklearn
from fastmlp._mlp import MLPClassifier, MLPRegressor
from fastmlp._onnx import to_onnx
from fastmlp._params import InvalidParameterError
from fastmlp._persist import load, save

__version__ = "0.1.0"

__all__ = [
    "MLPClassifier",
    "MLPRegressor",
    "InvalidParameterError",
    "from_sklearn",
    "load",
    "save",
    "to_onnx",
    "__version__",
]
