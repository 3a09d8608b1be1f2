"""The training loop shared by MLPClassifier and MLPRegressor.

Python runs between epochs only. It validates input with scikit-learn's
utilities, draws the initial weights and the validation split from the
estimator's RandomState in scikit-learn's order, and hands the epochs to the
C engine (fastmlp._engine.Trainer), which shuffles, trains and applies the
stopping and learning-rate rules; Python looks in between epochs only to
score a validation set, print or call callbacks. L-BFGS runs scipy's
minimizer over the flat parameter vector with the loss and gradient
computed in C.

A fit that fails before its first epoch is complete (bad input, bad
parameters, a first epoch whose loss or weights are not finite) leaves the
estimator as it found it (`_Undo`).

Parameters live in one flat buffer (`_params`): every layer's weights, then
every layer's biases. `coefs_` and `intercepts_` are numpy views into it, so
writing into them changes the model; assigning new arrays to them (to set
starting weights) is noticed at the next fit or predict, which copies them
into a fresh buffer.
"""

import copy
import dataclasses
import signal
import threading
import time
import warnings
import weakref
from abc import ABC, abstractmethod
from typing import Any
from functools import lru_cache
from numbers import Integral, Real

import numpy as np
import scipy
import scipy.optimize
import scipy.sparse as sp
from sklearn.base import BaseEstimator, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state, shuffle
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from fastmlp import _engine
from fastmlp._optim import LR_REDUCED, StochasticOptimizer, stall_ending
from fastmlp.callbacks import EpochRecord
from fastmlp._params import (
    ACTIVATION_NAMES,
    ACTIVATION_SEQUENCE,
    ARRAY_LIST,
    BOOLEAN,
    CALLABLE_LIST,
    LAYER_SIZES,
    NONE,
    RANDOM_STATE,
    RATE_SEQUENCE,
    VERBOSE,
    Interval,
    InvalidParameterError,
    Options,
    count_as_float,
    validate_parameters,
)
from fastmlp._threads import adaptive_threads, effective_n_threads, thread_limit

_STOCHASTIC_SOLVERS = ("sgd", "adam", "adamw", "rprop")
WEIGHT_INITS = ("sklearn", "glorot_uniform", "he_uniform", "he_normal", "lecun_normal")

# Rows per pass through the network for the L-BFGS objective and for
# prediction: bounds the workspace whatever the data size.
_CHUNK_ROWS = 256
# Training batches larger than this pass through the network in pieces, so
# that a full-batch solver's memory does not grow with the data.
_TRAIN_CHUNK_ROWS = 1024
# Rows per pass of the fast prediction path, fewer when its workspace would
# take more than _PREDICT_WORK_BYTES (very wide layers).
_PREDICT_CHUNK_ROWS = 1024
_PREDICT_WORK_BYTES = 64 << 20
# Epochs one engine call may run when Python need not look in between: the
# call holds a loss for each, so a max_iter meant only as "until tol stops
# it" (10**12, say) costs no memory.
_EPOCHS_PER_CALL = 10_000

# What a pickled model holds for _best_params when they are its weights.
_BEST_ARE_THE_WEIGHTS = "the weights"

# scikit-learn's message when training ends with weights that are not finite.
_NON_FINITE = (
    "Solver produced non-finite parameter weights. The input data may contain large values "
    "and need to be preprocessed."
)

# Each fitted estimator's ready-made engine predictor, which remembers the
# arrays it was built from; kept outside the estimator so that predicting
# changes nothing in it (and copies and pickles carry no engine objects).
_PREDICTORS: "weakref.WeakKeyDictionary[BaseMultilayerPerceptron, Any]" = (
    weakref.WeakKeyDictionary()
)
# Each estimator's timing of thread counts (n_threads=None), kept the same
# way: partial_fit calls, each an epoch, carry on where the last one left.
_TUNERS: "weakref.WeakKeyDictionary[BaseMultilayerPerceptron, Any]" = (
    weakref.WeakKeyDictionary()
)


def _tuner(model, carry_on):
    """The engine's thread-count tuner for a fit of model with
    n_threads=None (None otherwise): the one of its last fit when carry_on
    (partial_fit) and the batch size is the same, else a fresh one."""
    if not adaptive_threads(model.n_threads):
        return None
    key = model.batch_size
    kept = _TUNERS.get(model) if carry_on else None
    if kept is None or kept[0] != key:
        kept = _TUNERS[model] = (key, _engine.Tuner())
    return kept[1]


def _predict_chunk_rows(net, n_threads, most=_PREDICT_CHUNK_ROWS):
    """Rows per pass of prediction for net: `most`, halved until the part of
    the workspace that grows with the rows fits in _PREDICT_WORK_BYTES (one
    row at least; the threads' own packing buffers do not count)."""
    try:
        fixed = net.workspace_bytes(1, n_threads)
    except MemoryError:  # beyond the address space
        return 1

    def fits(rows):
        try:
            return net.workspace_bytes(rows, n_threads) - fixed <= _PREDICT_WORK_BYTES
        except MemoryError:
            return False

    rows = most
    while rows > 1 and not fits(rows):
        rows //= 2
    return rows


def _put_back(model, saved):
    """Make the model's attributes `saved` again, one by one: the others get
    their saved values, then the ones added since go, so that a thread
    predicting meanwhile never finds the model without its weights."""
    state = model.__dict__
    state.update(saved)
    for name in [name for name in state if name not in saved]:
        del state[name]


# The models each thread is training (inside an _Undo's `with`).
_training = threading.local()


def _models_in_training():
    models = getattr(_training, "models", None)
    if models is None:
        models = _training.models = weakref.WeakSet()
    return models


class _Undo:
    """The estimator's attributes as a fit found them, put back by
    `restore` (or by leaving a `with` block on an exception) until
    `training_begins` (the first completed epoch, or L-BFGS's start), whose
    results a later error, such as divergence, keeps by design.

    Every training call starts with one, which also refuses to train a
    model that this thread is training already (from one of its callbacks),
    before anything changes."""

    def __init__(self, model):
        if model in _models_in_training():
            raise RuntimeError(
                f"this {type(model).__name__} is being trained already, by the call that is "
                "running its callback; a callback cannot train its own model. Return True "
                "from the callback to stop training."
            )
        self.model = model
        # The optimizer is the one attribute a fit changes in place before
        # training (its state's precision), so it is copied.
        self.saved = {
            name: copy.copy(value) if isinstance(value, StochasticOptimizer) else value
            for name, value in model.__dict__.items()
        }

    def training_begins(self):
        self.saved = None

    def restore(self):
        if self.saved is not None:
            _put_back(self.model, self.saved)

    def __enter__(self):
        _models_in_training().add(self.model)
        return self

    def __exit__(self, kind, error, traceback):
        _models_in_training().discard(self.model)
        if kind is not None:
            self.restore()


@lru_cache(maxsize=1)
def _scipy_takes_iprint():
    major, minor = (int(p) for p in scipy.__version__.split(".")[:2])
    return (major, minor) < (1, 15)


def _check_csc(X):
    """ValueError unless X's CSC arrays are sound: scipy's conversion to CSR
    trusts them, and corrupt ones would make it write out of bounds (the CSR
    arrays are checked by the engine). Looks without changing X."""
    indptr, indices = X.indptr, X.indices
    n_rows, n_cols = X.shape
    if (indptr.ndim != 1 or indptr.size != n_cols + 1 or indptr[0] != 0
            or indptr[-1] > min(indices.size, X.data.size) or np.any(np.diff(indptr) < 0)):
        raise ValueError("malformed CSC matrix: indptr is not a valid column index")
    used = indices[: indptr[-1]]
    if used.size and (used.min() < 0 or used.max() >= n_rows):
        raise ValueError("malformed CSC matrix: row index out of range")


def _check_coo(X):
    """ValueError when X is a COO matrix whose indices leave its shape:
    scikit-learn's checks convert it to CSR through scipy, which trusts them
    and would write out of bounds. Anything else passes untouched."""
    if not (sp.issparse(X) and X.format == "coo"):
        return
    for index, size, name in ((X.row, X.shape[0], "row"), (X.col, X.shape[1], "column")):
        if index.size != X.data.size or (index.size and (index.min() < 0 or index.max() >= size)):
            raise ValueError(f"malformed COO matrix: {name} index out of range")


def _engine_input(X, dtype):
    """X as the engine reads it: a C-ordered array of `dtype`, or the
    (indptr, indices, values) arrays of its CSR form."""
    if sp.issparse(X):
        if X.format == "csc":
            _check_csc(X)
        X = X.tocsr()
        return (
            np.ascontiguousarray(X.indptr, dtype=np.int64),
            np.ascontiguousarray(X.indices, dtype=np.int64),
            np.ascontiguousarray(X.data, dtype=dtype),
        )
    return np.ascontiguousarray(X, dtype=dtype)


class BaseMultilayerPerceptron(BaseEstimator, ABC):
    """Base class of the estimators: parameter buffer, training loop, forward
    pass. Use MLPClassifier or MLPRegressor."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": [LAYER_SIZES],
        "activation": [Options(*ACTIVATION_NAMES), ACTIVATION_SEQUENCE],
        "solver": [Options("lbfgs", "sgd", "adam", "adamw", "rprop")],
        "alpha": [Interval(Real, 0, None, "left")],
        "batch_size": [Options("auto"), Interval(Integral, 1, None, "left")],
        "learning_rate": [Options("constant", "invscaling", "adaptive")],
        "learning_rate_init": [Interval(Real, 0, None, "neither")],
        "power_t": [Interval(Real, 0, None, "left")],
        "max_iter": [Interval(Integral, 1, None, "left")],
        "shuffle": [BOOLEAN],
        "random_state": [RANDOM_STATE],
        "tol": [Interval(Real, 0, None, "left")],
        "verbose": [VERBOSE],
        "warm_start": [BOOLEAN],
        "momentum": [Interval(Real, 0, 1, "both")],
        "nesterovs_momentum": [BOOLEAN],
        "early_stopping": [BOOLEAN],
        "validation_fraction": [Interval(Real, 0, 1, "left")],
        "beta_1": [Interval(Real, 0, 1, "left")],
        "beta_2": [Interval(Real, 0, 1, "left")],
        "epsilon": [Interval(Real, 0, None, "neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, "left"), Options(np.inf)],
        "max_fun": [Interval(Integral, 1, None, "left")],
        "n_threads": [
            NONE,
            Interval(Integral, None, -1, "right"),
            Interval(Integral, 1, _engine.MAX_THREADS, "both"),
        ],
        "dropout": [Interval(Real, 0, 1, "left"), RATE_SEQUENCE],
        "weight_init": [Options(*WEIGHT_INITS)],
        "coefs_init": [NONE, ARRAY_LIST],
        "intercepts_init": [NONE, ARRAY_LIST],
        "early_stopping_metric": [Options("score", "loss")],
        "callbacks": [NONE, CALLABLE_LIST],
        "clip_grad_norm": [NONE, Interval(Real, 0, None, "neither"), Options(np.inf)],
    }

    @abstractmethod
    def __init__(self):
        """Subclasses store every constructor argument unchanged."""

    # ---- what the subclasses define -------------------------------------

    @abstractmethod
    def _validate_input(self, X, y, incremental, reset):
        """Validated X and the 2-D target the network is trained on."""

    @abstractmethod
    def _output_activation(self):
        """Name of the output activation for the current parameters."""

    @abstractmethod
    def _engine_loss(self):
        """Name of the engine loss for the fitted output activation."""

    @abstractmethod
    def _score_outputs(self, outputs, y, sample_weight):
        """Validation score of network outputs against y (early stopping)."""

    # ---- network layout and the parameter buffer ---------------------------

    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if not hasattr(sizes, "__iter__"):
            sizes = [sizes]
        sizes = list(sizes)
        # Not integers: a ValueError that is also the TypeError scikit-learn
        # raises then.
        if any(
            isinstance(s, (bool, np.bool_)) or not isinstance(s, (Integral, Real)) for s in sizes
        ):
            raise InvalidParameterError(f"hidden_layer_sizes must hold integers, got {sizes}.")
        if np.any(np.array(sizes) <= 0):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        if any(not -np.inf < s < np.inf or int(s) != s for s in sizes):
            raise InvalidParameterError(f"hidden_layer_sizes must hold integers, got {sizes}.")
        return [int(s) for s in sizes]

    def _units_from_coefs(self, coefs=None, intercepts=None):
        """Layer widths implied by coefs_, checked against intercepts_ (or by
        the lists given, as one thread read them)."""
        coefs = list(self.coefs_ if coefs is None else coefs)
        intercepts = list(self.intercepts_ if intercepts is None else intercepts)
        if not coefs or len(coefs) != len(intercepts):
            raise ValueError(
                "coefs_ and intercepts_ must be lists of the same non-zero length, got "
                f"{len(coefs)} and {len(intercepts)} arrays."
            )
        units = []
        for i, (c, b) in enumerate(zip(coefs, intercepts)):
            c, b = np.asarray(c), np.asarray(b)
            if c.ndim != 2 or (units and c.shape[0] != units[-1]):
                raise ValueError(
                    f"coefs_[{i}] has shape {c.shape}, which does not follow the "
                    "previous layer."
                )
            if b.shape != (c.shape[1],):
                raise ValueError(
                    f"intercepts_[{i}] has shape {b.shape}, expected ({c.shape[1]},)."
                )
            if i == 0:
                units.append(c.shape[0])
            units.append(c.shape[1])
        return units

    def _views_intact(self, params, offsets, coefs, intercepts):
        base = params.__array_interface__["data"][0]
        step = params.itemsize
        for (w_off, b_off), c, b in zip(offsets, coefs, intercepts):
            for arr, off in ((c, w_off), (b, b_off)):
                if (
                    not isinstance(arr, np.ndarray)
                    or arr.base is not params
                    or not arr.flags.c_contiguous
                    or arr.__array_interface__["data"][0] != base + off * step
                ):
                    return False
        return True

    def _point_views(self, params, units, offsets):
        self.coefs_ = [
            params[w : w + units[i] * units[i + 1]].reshape(units[i], units[i + 1])
            for i, (w, _) in enumerate(offsets)
        ]
        self.intercepts_ = [params[b : b + units[i + 1]] for i, (_, b) in enumerate(offsets)]

    def _own_params(self, dtype, coefs, intercepts, units):
        """The model's flat buffer when it is in `dtype` and the lists coefs
        and intercepts (of layer widths units) are views into it; else None.
        Copies nothing."""
        n_params, offsets = _engine.param_layout(units)
        params = self.__dict__.get("_params")
        if (
            params is not None
            and params.dtype == dtype
            and params.size == n_params
            and self._views_intact(params, offsets, coefs, intercepts)
        ):
            return params
        return None

    def _flat_params(self, dtype, coefs, intercepts, units=None):
        """(buffer, own): the flat parameters in `dtype` holding what the
        lists coefs and intercepts hold; own when the buffer is the model's
        (_own_params), else a new buffer the model does not know. Changes
        nothing in the model, so that a prediction leaves a fit under way in
        another thread alone.

        units, when given, are the widths the data and parameters call for;
        weights of other shapes raise ValueError.
        """
        found = self._units_from_coefs(coefs, intercepts)
        if units is not None and list(units) != found:
            raise ValueError(
                f"coefs_ and intercepts_ describe layers of widths {found}, but the data "
                f"and hidden_layer_sizes call for {list(units)}."
            )
        own = self._own_params(dtype, coefs, intercepts, found)
        if own is not None:
            return own, True
        n_params, offsets = _engine.param_layout(found)
        params = np.empty(n_params, dtype=dtype)
        for i, (w, b) in enumerate(offsets):
            params[w : w + found[i] * found[i + 1]] = np.asarray(coefs[i]).ravel()
            params[b : b + found[i + 1]] = np.asarray(intercepts[i])
        return params, False

    def _load_params(self, dtype, units=None):
        """The flat parameter buffer in `dtype`, holding what coefs_ and
        intercepts_ hold now, with coefs_ and intercepts_ views into it (a
        fit's way: the model's buffer is what it trains)."""
        params, own = self._flat_params(dtype, self.coefs_, self.intercepts_, units)
        if not own:
            found = self._units_from_coefs()
            self._params = params
            self._point_views(params, found, _engine.param_layout(found)[1])
        return params

    def _hidden_activations(self, n_hidden):
        """The activation of each hidden layer."""
        if isinstance(self.activation, str):
            return [self.activation] * n_hidden
        names = list(self.activation)
        if len(names) != n_hidden:
            raise ValueError(
                f"activation lists {len(names)} activations for {n_hidden} hidden layers."
            )
        return names

    def _activations(self, n_layers):
        return self._hidden_activations(n_layers - 1) + [self.out_activation_]

    def _dropout_rates(self, n_hidden):
        """Dropout rate of each hidden layer, or None when there is none."""
        if isinstance(self.dropout, Real):
            rates = [float(self.dropout)] * n_hidden
        else:
            rates = [float(r) for r in self.dropout]
            if len(rates) != n_hidden:
                raise ValueError(
                    f"dropout lists {len(rates)} rates for {n_hidden} hidden layers."
                )
        return rates if any(rates) else None

    def _network(self, units, dtype, loss=None, dropout=None, dropout_seed=0, penalty=True):
        """The engine's network; penalty=False leaves the L2 term out of
        its loss (as AdamW, which decays the weights itself, always does)."""
        alpha = float(self.alpha) if penalty and self.solver != "adamw" else 0.0
        return _engine.Network(
            units,
            self._activations(len(units) - 1),
            loss or self._engine_loss(),
            alpha,
            dtype,
            dropout,
            dropout_seed,
        )

    # ---- persistence -----------------------------------------------------------

    def save(self, file: Any) -> None:
        """Write the fitted model in fastmlp's format, for fastmlp.load.

        The file is an .npz archive of the arrays with JSON metadata, which
        fastmlp.load reads back without running any code from the file.
        Callbacks are code and are not saved (the loaded model has
        callbacks=None); saving a model that has some warns so. Same as
        fastmlp.save(model, file). (fastmlp addition; pickle and joblib work
        too.)

        Parameters
        ----------
        file : str, os.PathLike or binary file object
            Where to write; a path's file is created or replaced.
        """
        from fastmlp._persist import warn_if_callbacks, write

        write(self, file)
        warn_if_callbacks(self, stacklevel=3)

    def to_sklearn(self) -> Any:
        """The equal scikit-learn estimator.

        Weights, fitted attributes and optimizer state are copied; a
        ValueError names what scikit-learn cannot express. See also
        fastmlp.from_sklearn. (fastmlp addition.)

        Returns
        -------
        sklearn.neural_network.MLPClassifier or MLPRegressor
        """
        from fastmlp._interop import to_sklearn

        return to_sklearn(self)

    # ---- pickling: state only, never workspaces or views ----------------------

    def __getstate__(self):
        # a copy: object.__getstate__ may hand back the live __dict__ itself
        state = dict(super().__getstate__())
        params = state.pop("_params", None)
        if params is not None and state.get("_best_params") is params:
            # early stopping ended on the best weights, which are then the
            # weights themselves: one array after loading too
            state["_best_params"] = _BEST_ARE_THE_WEIGHTS
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        tied = isinstance(state.get("_best_params"), str)
        # Unpickled (or deep-copied), coefs_ and intercepts_ are arrays of
        # their own. They become views of one buffer again now, not at the
        # first prediction, so that an array a user takes from them stays
        # the model's, as it does in a fitted one. Weights that do not fit
        # together are left for the next call to report.
        params = None
        if self.__dict__.get("coefs_") is not None:
            try:
                params = self._load_params(self._stored_dtype())
            except Exception:
                pass
        if tied:
            self._best_params = params

    def _stored_dtype(self, coefs=None):
        """The dtype the weights are kept in: float32 if coefs_ (or coefs, as
        one thread read them) is, else float64."""
        first = (self.coefs_ if coefs is None else coefs)[0]
        return np.float32 if np.asarray(first).dtype == np.float32 else np.float64

    def _training_dtype(self, x_dtype, first_pass):
        """The dtype a fit trains in: float32 for float32 X, else float64;
        but a fitted model trained on (a warm start, partial_fit) keeps its
        weights' dtype whatever X's, as scikit-learn's keeps its weights."""
        if not first_pass and hasattr(self, "n_layers_"):
            return np.dtype(self._stored_dtype())
        return np.dtype(np.float32 if x_dtype == np.float32 else np.float64)

    # ---- initialisation ------------------------------------------------------

    def _initialize(self, y, layer_units, dtype, draw_weights=True):
        """Set the fitted state a first fit starts from; set the starting
        weights unless the user assigned them to coefs_ already."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._output_activation()

        if draw_weights:
            self.coefs_, self.intercepts_ = self._starting_weights(layer_units, dtype)
        self._best_params = self._load_params(dtype, layer_units).copy()

        if self.solver in _STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _starting_weights(self, layer_units, dtype):
        """coefs_init / intercepts_init where given, the rest drawn from the
        RandomState by weight_init: scikit-learn's scheme draws each layer's
        weights, then its biases, uniform in +-sqrt(factor / (fan_in +
        fan_out)), factor 2 for logistic layers and 6 otherwise; the others
        draw only weights and start the biases at zero."""
        n = len(layer_units) - 1
        for name, given in (
            ("coefs_init", self.coefs_init),
            ("intercepts_init", self.intercepts_init),
        ):
            if given is not None and len(given) != n:
                raise ValueError(f"{name} has {len(given)} arrays for {n} layers.")
        hidden = self._hidden_activations(n - 1)
        rs, scheme = self._random_state, self.weight_init
        coefs, intercepts = [], []
        for i, (fan_in, fan_out) in enumerate(zip(layer_units[:-1], layer_units[1:])):
            if isinstance(self.activation, str) or not hidden:
                logistic = self.activation == "logistic"
            else:
                logistic = hidden[min(i, len(hidden) - 1)] == "logistic"
            bound = np.sqrt((2.0 if logistic else 6.0) / (fan_in + fan_out))
            if self.coefs_init is not None:
                coef = self._given(self.coefs_init[i], (fan_in, fan_out), f"coefs_init[{i}]")
            elif scheme == "sklearn":
                coef = rs.uniform(-bound, bound, (fan_in, fan_out))
            elif scheme == "glorot_uniform":
                limit = np.sqrt(6.0 / (fan_in + fan_out))
                coef = rs.uniform(-limit, limit, (fan_in, fan_out))
            elif scheme == "he_uniform":
                limit = np.sqrt(6.0 / fan_in)
                coef = rs.uniform(-limit, limit, (fan_in, fan_out))
            elif scheme == "he_normal":
                coef = rs.normal(0.0, np.sqrt(2.0 / fan_in), (fan_in, fan_out))
            else:
                coef = rs.normal(0.0, np.sqrt(1.0 / fan_in), (fan_in, fan_out))
            if self.intercepts_init is not None:
                intercept = self._given(
                    self.intercepts_init[i], (fan_out,), f"intercepts_init[{i}]"
                )
            elif scheme == "sklearn":
                intercept = rs.uniform(-bound, bound, fan_out)
            else:
                intercept = np.zeros(fan_out)
            coefs.append(coef.astype(dtype, copy=False))
            intercepts.append(intercept.astype(dtype, copy=False))
        return coefs, intercepts

    @staticmethod
    def _given(array, shape, name):
        array = np.array(array, dtype=np.float64)
        if array.shape != shape:
            raise ValueError(f"{name} has shape {array.shape}, the network needs {shape}.")
        if not np.isfinite(array).all():
            raise ValueError(f"{name} holds NaN or infinite values.")
        return array

    # ---- fit -----------------------------------------------------------------

    def _fit(self, X, y, sample_weight=None, incremental=False, X_val=None, y_val=None,
             undo=None):
        """Validate, then train; undo (an _Undo taken before the caller
        changed anything) puts the estimator back if the fit fails before
        training starts."""
        with undo or _Undo(self) as undo:
            return self._fit_unguarded(X, y, sample_weight, incremental, X_val, y_val, undo)

    def _fit_unguarded(self, X, y, sample_weight, incremental, X_val, y_val, undo):
        hidden = self._checked_settings(X_val, y_val)
        stochastic = self.solver in _STOCHASTIC_SOLVERS
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)

        sample_weight = self._class_weighted(y, sample_weight, incremental)
        _check_coo(X)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        X = X.astype(self._training_dtype(X.dtype, first_pass), copy=False)
        n_features = X.shape[1]
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        self.n_outputs_ = y.shape[1]
        layer_units = [n_features] + hidden + [self.n_outputs_]
        self._hidden_activations(len(hidden))

        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(y, layer_units, X.dtype)
        elif not hasattr(self, "n_layers_"):
            # coefs_ and intercepts_ were assigned before any fit: start from them.
            self._initialize(y, layer_units, X.dtype, draw_weights=False)

        dtype = X.dtype
        params = self._load_params(dtype, layer_units)
        n_threads = effective_n_threads(self.n_threads)

        if stochastic:
            self._fit_stochastic(X, y, sample_weight, X_val, y_val, params, layer_units,
                                 incremental, n_threads, undo)
        else:
            net = self._network(layer_units, dtype)
            data = self._dataset(net, X, y, sample_weight)
            undo.training_begins()
            work = net.workspace(_CHUNK_ROWS, n_threads)
            tuner = _tuner(self, False)

            def objective(params, grads):
                return _engine.loss_grad(net, data, params, grads, work, _CHUNK_ROWS,
                                         n_threads, tuner)

            self._fit_lbfgs(params, objective)

        if not np.isfinite(self._params).all():
            raise ValueError(_NON_FINITE)
        return self

    def _checked_settings(self, X_val, y_val):
        """Check the parameters and what goes with the solver; returns the
        hidden layer sizes."""
        validate_parameters(self, self._parameter_constraints)
        hidden = self._hidden_sizes()
        if self.solver not in _STOCHASTIC_SOLVERS:
            for name, value in (("dropout", self._dropout_rates(len(hidden))),
                                ("callbacks", self.callbacks),
                                ("clip_grad_norm", self.clip_grad_norm),
                                ("X_val", X_val is not None)):
                if value:
                    raise ValueError(f"{name} needs a stochastic solver, not solver='lbfgs'.")
        if (X_val is None) != (y_val is None):
            raise ValueError("X_val and y_val go together: give both or neither.")
        return hidden

    def _class_weighted(self, y, sample_weight, incremental):
        """Sample weights with the class weights folded in (classifiers)."""
        return sample_weight

    def _dataset(self, net, X, y, sample_weight=None):
        dtype = net.dtype
        return _engine.Dataset(
            net,
            _engine_input(X, dtype),
            None if y is None else np.ascontiguousarray(y, dtype=dtype),
            None if sample_weight is None else np.ascontiguousarray(sample_weight, dtype),
        )

    def _fit_lbfgs(self, params, objective, interruptible=False, stacklevel=5):
        """L-BFGS from params (INOUT) on objective(params, grads), which
        returns the loss and writes the gradient into grads. On Ctrl-C the
        model keeps the weights of the last completed iteration (those it
        started from before the first); interruptible: the fit then ends
        with a warning, else KeyboardInterrupt goes through, as in
        scikit-learn. stacklevel: of the convergence warning, that of fit's
        caller."""
        grads = np.empty_like(params)

        # For float32 data scipy evaluates the objective at float32 points. The
        # loss scikit-learn hands back is then float32 for the softmax log-loss
        # and float64 for the others; it is rounded the same way.
        rounded = params.dtype.type if self._engine_loss() == "log_loss" else float

        def loss_and_grad(x):
            params[:] = x
            loss = objective(params, grads)
            return float(rounded(loss)), grads.astype(np.float64)

        options = {"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol}
        if _scipy_takes_iprint():
            options["iprint"] = 1 if self.verbose else -1
        start = params.copy()
        # the last completed iteration: how many, its point (where it started
        # before the first) and its loss
        reached = {"iterations": 0, "point": start.copy(), "loss": None}

        def keep(intermediate_result):
            reached["iterations"] += 1
            reached["point"][:] = intermediate_result.x
            reached["loss"] = intermediate_result.fun

        try:
            result = scipy.optimize.minimize(
                loss_and_grad,
                start.copy(),
                method="L-BFGS-B",
                jac=True,
                options=options,
                callback=keep,
            )
        except KeyboardInterrupt:
            # not the point of a line search the signal came in
            self.n_iter_ = reached["iterations"]
            params[:] = reached["point"]
            if reached["loss"] is not None:
                self.loss_ = np.float64(reached["loss"])
            if not interruptible:
                raise
            warnings.warn("Training interrupted by user.")
            return
        self.n_iter_ = min(result.nit, self.max_iter)
        if result.status != 0:
            # What failed and scipy's reason are said as scikit-learn says
            # them, for warning filters written for it; the advice is ours.
            if self.n_iter_ == self.max_iter:
                advice = f"Raise max_iter (now {self.max_iter}) to let it converge; scaling"
            elif result.nfev >= self.max_fun:
                advice = f"Raise max_fun (now {self.max_fun}) to let it converge; scaling"
            else:
                advice = "Scaling"
            message = (
                f"lbfgs failed to converge after {self.n_iter_} iteration(s) "
                f"(status={result.status}):\n{result.message}\n\n{advice} the data (for "
                "example with sklearn.preprocessing.StandardScaler) often helps."
            )
            # at the caller of fit: _fit_lbfgs < _fit_unguarded < _fit < fit < caller
            warnings.warn(message, ConvergenceWarning, stacklevel=stacklevel)
        self.loss_ = np.float64(result.fun)
        if np.isfinite(result.x).all():
            params[:] = result.x
        else:
            params[:] = start
            raise ValueError(_NON_FINITE + " (The model keeps the weights it started from.)")

    def _fit_stochastic(self, X, y, sample_weight, X_val, y_val, params, layer_units,
                        incremental, n_threads, undo):
        dtype = params.dtype
        optimizer = self._stochastic_optimizer(params, incremental)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        train_rows = None
        if X_val is not None:
            X_val, y_val, val_targets = self._validation_set(X_val, y_val)
            sw_val = None
        elif early_stopping:
            # Split row indices rather than rows: the same draw as splitting X.
            stratify = y if is_classifier(self) and self.n_outputs_ == 1 else None
            train_rows, val_rows = train_test_split(
                np.arange(y.shape[0]),
                random_state=self._random_state,
                test_size=self.validation_fraction,
                stratify=stratify,
            )
            if val_rows.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' "
                    "or the size of your dataset."
                )
            X_val, val_targets = X[val_rows], y[val_rows]
            y_val = self._label_binarizer.inverse_transform(val_targets) if is_classifier(
                self
            ) else val_targets
            sw_val = None if sample_weight is None else sample_weight[val_rows]
        n_samples = y.shape[0] if train_rows is None else train_rows.shape[0]
        self._samples_per_epoch = n_samples

        rates = self._dropout_rates(len(layer_units) - 2)
        if not rates:
            self.__dict__.pop("_dropout_seed", None)
        elif not incremental or "_dropout_seed" not in self.__dict__:
            self._dropout_seed = int(self._random_state.randint(np.iinfo(np.int32).max))
            self._dropout_step = 0
        net = self._network(layer_units, dtype, dropout=rates,
                            dropout_seed=getattr(self, "_dropout_seed", 0))
        data = self._dataset(net, X, y, sample_weight)

        batch_size = self._batch_rows(n_samples)
        # Epochs shuffle `order` in place; the rows are never moved.
        order = np.arange(n_samples) if train_rows is None else train_rows.astype(np.int64)
        trainer = _engine.Trainer(
            net,
            data,
            params,
            optimizer.state,
            order,
            solver=optimizer.solver,
            learning_rate=optimizer.learning_rate,
            momentum=optimizer.momentum,
            nesterov=optimizer.nesterov,
            beta_1=optimizer.beta_1,
            beta_2=optimizer.beta_2,
            epsilon=optimizer.epsilon,
            adam_t=optimizer.t,
            schedule=optimizer.lr_schedule,
            learning_rate_init=optimizer.learning_rate_init,
            power_t=optimizer.power_t,
            tol=self.tol,
            n_iter_no_change=count_as_float(self.n_iter_no_change),
            watch_loss=not early_stopping,
            t=self.t_,
            best_loss=np.inf if early_stopping else self.best_loss_,
            no_improvement=self._no_improvement_count,
            shuffle=self.shuffle and self.solver != "rprop",
            random_state=self._random_state,
            batch_size=batch_size,
            chunk=_TRAIN_CHUNK_ROWS,
            n_threads=n_threads,
            tuner=_tuner(self, incremental),
            weight_decay=float(self.alpha) if self.solver == "adamw" else 0.0,
            clip_norm=float(self.clip_grad_norm or 0.0),
            step=getattr(self, "_dropout_step", 0),
        )
        validation = None
        if X_val is not None:
            validation = _Validation.in_memory(self, layer_units, params, X_val, y_val,
                                               val_targets, sw_val, n_threads)
        self._train_epochs(trainer, optimizer, validation, params, incremental, bool(rates),
                           undo)

    def _stochastic_optimizer(self, params, incremental):
        """The optimizer state a fit of a stochastic solver carries on from
        (partial_fit) or starts afresh, in the parameters' precision."""
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = StochasticOptimizer(
                self.solver,
                params.size,
                params.dtype,
                learning_rate_init=self.learning_rate_init,
                lr_schedule=self.learning_rate,
                momentum=self.momentum,
                nesterov=self.nesterovs_momentum,
                power_t=self.power_t,
                beta_1=self.beta_1,
                beta_2=self.beta_2,
                epsilon=self.epsilon,
            )
        self._optimizer.astype(params.dtype)
        return self._optimizer

    def _batch_rows(self, n_samples):
        """Rows per optimizer step over n_samples training rows."""
        if self.solver == "rprop":
            return n_samples  # iRprop- steps on the whole training set
        if self.batch_size == "auto":
            return min(200, n_samples)
        if self.batch_size > n_samples:
            warnings.warn(
                "Got `batch_size` less than 1 or larger than sample size. It is "
                "going to be clipped"
            )
        return int(np.clip(self.batch_size, 1, n_samples))

    def _train_epochs(self, trainer, optimizer, validation, params, incremental, dropout, undo):
        """The epochs of a stochastic solver: trainer.run(epochs) trains (in
        the engine, or over chunks of data elsewhere: see fastmlp.dask) and
        Python looks in between to score the validation set, print, call
        callbacks and decide, as scikit-learn does."""
        early_stopping = self.early_stopping
        if validation is not None:
            # a fresh fit starts the curve; warm starts and partial_fit append
            if not self.loss_curve_ or not hasattr(self, "validation_loss_curve_"):
                self.validation_loss_curve_ = []
                self.best_validation_loss_ = np.inf

        # Python is needed after every epoch only to print, to look at a
        # validation set or to call callbacks; otherwise all epochs run in one
        # call.
        callbacks = list(self.callbacks or [])
        lines = bool(self.verbose)  # scikit-learn's printed lines, at any level
        per_call = 1 if (validation or lines or incremental or callbacks) else _EPOCHS_PER_CALL
        watch = "Validation loss" if self.early_stopping_metric == "loss" else "Validation score"
        # fixed for the fit, as scikit-learn's range(max_iter), whatever a
        # callback sets
        max_iter = self.max_iter
        self.n_iter_ = 0
        stopped = interrupted = diverged = False
        # Ctrl-C inside the engine ends trainer.run; anywhere else in the loop
        # (scoring, printing, callbacks) it arrives as KeyboardInterrupt.
        try:
            while self.n_iter_ < max_iter and not (stopped or interrupted):
                started = time.perf_counter()
                epochs = min(per_call, max_iter - self.n_iter_)
                losses, event, interrupted = trainer.run(epochs)
                if losses.size:
                    undo.training_begins()
                optimizer.learning_rate, optimizer.t = trainer.learning_rate, trainer.adam_t
                self.t_ = trainer.t
                if dropout:
                    self._dropout_step = trainer.step
                if not early_stopping:
                    self.best_loss_ = np.float64(trainer.best_loss)
                    self._no_improvement_count = trainer.no_improvement
                for loss in losses:
                    self.n_iter_ += 1
                    self.loss_ = np.float64(loss)
                    self.loss_curve_.append(self.loss_)
                    if lines:
                        print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
                if interrupted:
                    break
                if event == _engine.DIVERGED:
                    # the engine put back the last finite epoch's weights
                    diverged = True
                    _pass_on_sigint(trainer.signals_held)
                    break
                record = EpochRecord(
                    epoch=self.n_iter_,
                    loss=float(self.loss_),
                    learning_rate=float(optimizer.learning_rate),
                    seconds=time.perf_counter() - started,
                    max_iter=max_iter,
                )
                if validation is not None and losses.size:
                    record = validation.update(record, early_stopping)
                    if early_stopping and self._no_improvement_count > self.n_iter_no_change:
                        event = optimizer.trigger_stopping()
                        if event == LR_REDUCED:
                            self._no_improvement_count = 0
                            trainer.learning_rate = optimizer.learning_rate
                if event is not None:
                    stopped = event != LR_REDUCED
                    if lines:
                        print(
                            "%s did not improve more than tol=%f for %d consecutive epochs.%s"
                            % (
                                watch if early_stopping else "Training loss",
                                self.tol,
                                self.n_iter_no_change,
                                stall_ending(event, optimizer.learning_rate),
                            )
                        )
                if losses.size and any([bool(callback(self, record)) for callback in callbacks]):
                    stopped = True
                _pass_on_sigint(trainer.signals_held)
                if incremental:
                    break
                if self.n_iter_ == max_iter and not stopped:
                    warnings.warn(
                        "Stochastic Optimizer: Maximum iterations (%d) reached and the "
                        "optimization hasn't converged yet." % max_iter,
                        ConvergenceWarning,
                    )
        except KeyboardInterrupt:
            interrupted = True
            if validation is not None:
                validation.fill_unscored(self.n_iter_, early_stopping)
        if interrupted:
            warnings.warn("Training interrupted by user.")

        if diverged:
            epoch = self.n_iter_ + 1
            if epoch > 1 and early_stopping:
                # as scikit-learn, which trains on with NaN weights but ends
                # with the best validation epoch's
                best = validation.best_epoch
                kept = (
                    "no epoch of this fit improved the validation score, and early stopping "
                    "ends it as it would at max_iter" if best is None else
                    "early stopping keeps the weights of epoch %d, the best on the validation "
                    "set" % best
                )
                warnings.warn(
                    "Training stopped at epoch %d, whose loss or weights were not finite; %s. "
                    "The input data may contain large values and need to be preprocessed."
                    % (epoch, kept),
                    ConvergenceWarning,
                )
            else:
                if epoch == 1:
                    undo.restore()
                    kept = "the model is left as it was before this call"
                else:
                    kept = "the model keeps the weights of the epoch before"
                raise ValueError(
                    "%s (Training stopped at epoch %d, whose loss or weights were not finite; "
                    "%s.)" % (_NON_FINITE, epoch, kept)
                )
        if early_stopping:
            # The restored weights and the best weights are then one array, as
            # in scikit-learn (whose coefs_ become its best-weights list): a
            # later warm start that never beats this score keeps training
            # them and ends with its last epoch's weights.
            params[:] = self._best_params
            self._best_params = params

    def _validation_set(self, X_val, y_val):
        """A user's validation set checked like training data: (X, targets for
        scoring, targets as the network is trained on)."""
        _check_coo(X_val)
        X_val = validate_data(
            self, X_val, accept_sparse=["csr", "csc"], dtype=(np.float64, np.float32), reset=False
        )
        targets = self._encode_targets(y_val)
        if targets.shape[0] != X_val.shape[0]:
            raise ValueError(
                f"X_val has {X_val.shape[0]} samples but y_val has {targets.shape[0]}."
            )
        return X_val, y_val, targets

    # ---- forward pass --------------------------------------------------------

    def _check_fitted(self):
        """NotFittedError unless the model has weights (a dictionary lookup,
        where scikit-learn's check scans every attribute)."""
        if "coefs_" not in self.__dict__:
            check_is_fitted(self, "coefs_")

    def _outputs(self, net, data, params, n_threads, work=None):
        """Network outputs for every row of data, by the engine; work, when
        given, is a workspace for _CHUNK_ROWS rows."""
        n = data.n_samples
        out = np.empty((n, net.units[-1]), dtype=net.dtype)
        chunk = (_CHUNK_ROWS if work is not None
                 else _predict_chunk_rows(net, n_threads, min(_CHUNK_ROWS, max(n, 1))))
        if work is None:
            work = net.workspace(chunk, n_threads)
        _engine.predict(net, data, params, out, work, chunk, n_threads)
        return out

    def _fast_outputs(self, X, two_class=False):
        """Outputs for a plain, finite, C-ordered array of the weights' dtype
        (with two_class, as in _forward_pass_fast), with one cheap look at X
        instead of scikit-learn's full validation (which also warns about
        feature names: models fitted on named features take the general
        path). None when X does not qualify."""
        state = self.__dict__
        if "feature_names_in_" in state:
            return None
        cached = _PREDICTORS.get(self)
        # a threadpoolctl limit changes the default thread count; a list of
        # activations goes in item by item, so a change made in place shows
        activation = self.activation
        names = tuple(activation) if isinstance(activation, (list, tuple)) else (activation,)
        settings = (*names, state["out_activation_"], self.n_threads, thread_limit())
        # the lists as this thread found them: a fit in another thread may
        # replace them meanwhile, and the predictor watches what it was
        # built from
        coefs, intercepts = state["coefs_"], state["intercepts_"]
        if cached is None or not cached.built_from(coefs, intercepts, *settings):
            units = self._units_from_coefs(coefs, intercepts)
            stored = self._stored_dtype(coefs)
            params = self._own_params(stored, coefs, intercepts, units)
            if params is None:
                # weights set by hand: the general path copies them each call
                return None
            net = self._network(units, stored, loss="squared_error")
            threads = effective_n_threads(self.n_threads)
            cached = _engine.Predictor(net, params, _predict_chunk_rows(net, threads), threads,
                                       adaptive_threads(self.n_threads))
            cached.watch(coefs, intercepts, *settings)
            _PREDICTORS[self] = cached
        return cached.outputs(X, two_class)

    def _forward_pass_fast(self, X, check_input=True, two_class=False):
        """Output-layer activations for X, of shape (n_samples, n_outputs);
        with two_class and a single output, the rows (1 - p, p) of shape
        (n_samples, 2).

        Computed in float32 when both X and the weights are float32, else in
        float64.
        """
        if check_input:
            outputs = self._fast_outputs(X, two_class)
            if outputs is not None:
                return outputs
            _check_coo(X)
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        coefs, intercepts = self.coefs_, self.intercepts_
        units = self._units_from_coefs(coefs, intercepts)
        stored = self._stored_dtype(coefs)
        params, _ = self._flat_params(stored, coefs, intercepts)
        dtype = np.float32 if X.dtype == np.float32 and stored == np.float32 else np.float64
        params = params.astype(dtype, copy=False)
        net = self._network(units, dtype, loss="squared_error")
        data = _engine.Dataset(net, _engine_input(X, dtype))
        outputs = self._outputs(net, data, params, effective_n_threads(self.n_threads))
        if two_class and outputs.shape[1] == 1:
            return np.hstack([1 - outputs, outputs])
        return outputs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def _pass_on_sigint(count):
    """Raise the SIGINTs that the engine held back for a handler of the
    user's (its epoch under way completed first), now that the epochs are
    counted and scored: the handler runs once for each; a KeyboardInterrupt
    from it stops the fit as Ctrl-C does."""
    for _ in range(count):
        signal.raise_signal(signal.SIGINT)


class _Validation:
    """A validation set watched after every epoch: its score and loss are
    recorded, and with early stopping they decide progress and keep the best
    weights. measure() gives the score and loss (the data's loss alone,
    without the L2 term) of the current weights, params."""

    def __init__(self, model, params, measure):
        self.model, self.params, self.measure = model, params, measure
        self.scored = 0  # epochs of this fit scored so far
        self.best_epoch = None  # the epoch of this fit whose weights early stopping keeps

    @classmethod
    def in_memory(cls, model, units, params, X, y, targets, sample_weight, n_threads):
        """The validation set X (y for scoring, targets as the network is
        trained on), scored in this process."""
        net = model._network(units, params.dtype, penalty=False)
        if targets.ndim == 1:
            targets = targets.reshape(-1, 1)
        data = model._dataset(net, X, targets, sample_weight)
        work = net.workspace(_CHUNK_ROWS, n_threads)

        def measure():
            outputs = model._outputs(net, data, params, n_threads, work)
            score = float(model._score_outputs(outputs, y, sample_weight))
            loss = float(_engine.loss_grad(net, data, params, None, work, _CHUNK_ROWS, n_threads))
            return score, loss

        return cls(model, params, measure)

    def update(self, record, early_stopping):
        """Score the current weights; returns the record with them."""
        m = self.model
        score, loss = self.measure()
        m.validation_loss_curve_.append(np.float64(loss))
        if early_stopping:
            m.validation_scores_.append(score)
        self.scored += 1
        if early_stopping:
            if m.verbose:
                print("Validation score: %f" % score)
            if m.early_stopping_metric == "loss":
                worse = loss > m.best_validation_loss_ - m.tol
                better = loss < m.best_validation_loss_
            else:
                worse = score < m.best_validation_score_ + m.tol
                better = score > m.best_validation_score_
            m._no_improvement_count = m._no_improvement_count + 1 if worse else 0
            if better:
                m._best_params = self.params.copy()
                self.best_epoch = record.epoch
            m.best_validation_score_ = max(m.best_validation_score_, score)
        m.best_validation_loss_ = np.float64(min(m.best_validation_loss_, loss))
        return dataclasses.replace(record, validation_loss=loss, validation_score=score)

    def fill_unscored(self, epochs, early_stopping):
        """After Ctrl-C cut scoring short: NaN for every epoch of this fit
        trained but not scored, so that the validation curves stay aligned
        with loss_curve_."""
        m = self.model
        for _ in range(epochs - self.scored):
            m.validation_loss_curve_.append(np.float64(np.nan))
            if early_stopping:
                m.validation_scores_.append(np.nan)
        self.scored = max(self.scored, epochs)
