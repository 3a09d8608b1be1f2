# Types of the Cython binding (_engine.pyx); see that file and csrc/fastmlp.h.
from typing import Any, Optional, Sequence

import numpy as np
from numpy.typing import NDArray

ACTIVATIONS: dict[str, int]
LOSSES: dict[str, int]
SOLVERS: dict[str, int]
SCHEDULES: dict[str, int]
HAVE_THREADS: bool
THREADS_BACKEND: str
LEAKY_SLOPE: float
MAX_THREADS: int
STOP: str
STOP_LR_TOO_SMALL: str
LR_REDUCED: str
DIVERGED: str

def isa() -> str: ...
def isa_built() -> list[str]: ...
def isa_supported(name: str) -> bool: ...
def set_isa(name: str) -> None: ...
def kernel(dtype: Any) -> str: ...
def workers_alive() -> int: ...
def param_layout(units: Sequence[int]) -> tuple[int, list[tuple[int, int]]]: ...

class Network:
    units: NDArray[np.int64]
    activations: NDArray[np.int32]
    dtype: np.dtype[Any]
    dropout: Optional[NDArray[np.float64]]
    def __init__(
        self,
        units: Sequence[int],
        activations: Sequence[str],
        loss: str,
        alpha: float,
        dtype: Any,
        dropout: Optional[Sequence[float]] = ...,
        dropout_seed: int = ...,
    ) -> None: ...
    @property
    def n_params(self) -> int: ...
    def workspace(self, rows: int, n_threads: int) -> NDArray[np.uint8]: ...

class Dataset:
    n_samples: int
    def __init__(self, net: Network, X: Any, y: Any = ..., sample_weight: Any = ...) -> None: ...

class Tuner:
    @property
    def threads(self) -> int: ...

class Trainer:
    learning_rate: float
    signals_held: int
    @property
    def adam_t(self) -> int: ...
    @property
    def t(self) -> int: ...
    @property
    def best_loss(self) -> float: ...
    @property
    def no_improvement(self) -> int: ...
    @property
    def step(self) -> int: ...
    def __init__(self, net: Network, data: Dataset, params: NDArray[Any], state: NDArray[Any],
                 order: NDArray[np.int64], **settings: Any) -> None: ...
    def run(self, max_epochs: int) -> tuple[NDArray[np.float64], Optional[str], bool]: ...

class Predictor:
    def __init__(self, net: Network, params: NDArray[Any], chunk: int, n_threads: int,
                 adaptive: bool = ...) -> None: ...
    def outputs(self, X: Any) -> Optional[NDArray[Any]]: ...

def shuffle(random_state: np.random.RandomState, order: NDArray[np.int64]) -> None: ...
def ctrl_c_taker() -> Optional[str]: ...
def loss_grad(net: Network, data: Dataset, params: NDArray[Any], grads: Optional[NDArray[Any]],
              work: NDArray[np.uint8], chunk: int, n_threads: int,
              tuner: Optional[Tuner] = ...) -> float: ...
def loss_grad_sums(net: Network, data: Dataset, params: NDArray[Any],
                   grads: Optional[NDArray[Any]], work: NDArray[np.uint8], chunk: int,
                   n_threads: int, rows: Optional[NDArray[np.int64]] = ...,
                   tuner: Optional[Tuner] = ...) -> tuple[float, float]: ...
def loss_grad_finish(net: Network, params: NDArray[Any], grads: Optional[NDArray[Any]],
                     wloss: float, wsum: float) -> float: ...
def predict(net: Network, data: Dataset, params: NDArray[Any], out: NDArray[Any],
            work: NDArray[np.uint8], chunk: int, n_threads: int,
            rows: Optional[NDArray[np.int64]] = ..., tuner: Optional[Tuner] = ...) -> None: ...
def __getattr__(name: str) -> Any: ...  # the single-kernel entry points used by the tests
