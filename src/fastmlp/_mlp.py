"""MLPClassifier and MLPRegressor: scikit-learn's multilayer perceptrons,
trained by the fastmlp C engine."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_array, column_or_1d, validate_data

from fastmlp._base import _STOCHASTIC_SOLVERS, BaseMultilayerPerceptron, _Undo
from fastmlp._params import DICT, NONE, Options


_COMMON_PARAMETERS_DOC = """
    hidden_layer_sizes : int or sequence of int, default=(100,)
        Width of each hidden layer; an empty sequence gives a network with
        no hidden layer.

    activation : str or sequence of str, default='relu'
        Activation of the hidden layers, one name for all or one per hidden
        layer: 'identity' (z), 'logistic' (1 / (1 + exp(-z))), 'tanh', 'relu'
        (max(z, 0)), and fastmlp's additions 'leaky_relu' (slope 0.01 below
        0), 'elu' (exp(z) - 1 below 0), 'gelu' (z Phi(z), the exact form),
        'softplus' (log(1 + exp(z))) and 'silu' (z / (1 + exp(-z))).

    solver : {'lbfgs', 'sgd', 'adam', 'adamw', 'rprop'}, default='adam'
        'sgd' is mini-batch gradient descent with momentum, 'adam' the Adam
        method of Kingma and Ba, 'lbfgs' the full-batch quasi-Newton method
        of scipy.optimize (often the better choice on small data sets).
        fastmlp adds 'adamw', Adam with decoupled weight decay (alpha is then
        the decay: each step multiplies the weights by 1 - learning_rate_init
        * alpha, and the loss has no L2 term), and 'rprop' (iRprop-,
        full-batch: one step per epoch on the whole training set, each
        weight's step starting at learning_rate_init).

    alpha : float, default=0.0001
        L2 penalty: 0.5 * alpha * sum of squared weights, divided by the
        summed sample weight of the batch, is added to the loss.

    batch_size : int or 'auto', default='auto'
        Mini-batch size of 'sgd' and 'adam'; 'auto' is min(200, n_samples).

    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Schedule of the 'sgd' step size: constant; learning_rate_init /
        (t + 1) ** power_t with t the samples seen, updated every epoch; or
        divided by 5 whenever n_iter_no_change + 1 epochs pass without an
        improvement of tol (training stops once it falls to 1e-6).

    learning_rate_init : float, default=0.001
        Initial step size of 'sgd' and 'adam'.

    power_t : float, default=0.5
        Exponent of the 'invscaling' schedule.

    max_iter : int, default=200
        Epochs for 'sgd' and 'adam', iterations for 'lbfgs'.

    shuffle : bool, default=True
        Shuffle the samples before every epoch ('sgd', 'adam').

    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the early-stopping split and the shuffles;
        the same value draws the same numbers as scikit-learn's estimator.

    tol : float, default=1e-4
        Training stops (or the 'adaptive' rate drops) once the loss, or the
        validation score with early stopping, has not improved by tol for
        n_iter_no_change + 1 consecutive epochs. 'lbfgs' uses it as its
        gradient tolerance.

    verbose : bool or int, default=False
        Any value above 0 prints scikit-learn's lines to stdout: the loss
        after every epoch, the validation score with early stopping, and why
        training stopped. For a live progress bar instead, pass
        callbacks=[fastmlp.callbacks.ProgressBar()].

    warm_start : bool, default=False
        Continue from the current weights on the next fit instead of drawing
        new ones. Assigning arrays to ``coefs_`` and ``intercepts_`` and
        fitting with warm_start=True starts from those weights.

    momentum : float, default=0.9
        Momentum of 'sgd', in [0, 1].

    nesterovs_momentum : bool, default=True
        Use Nesterov's momentum ('sgd' with momentum > 0).

    early_stopping : bool, default=False
        Hold out validation_fraction of the data (stratified for binary
        targets), stop when its score stalls, and keep the weights of the
        best epoch ('sgd', 'adam'). An epoch whose loss or weights are not
        finite then ends training the same way, with a ConvergenceWarning;
        without early stopping it raises ValueError.

    validation_fraction : float, default=0.1
        Share of the data held out for early stopping.

    beta_1, beta_2 : float, default=0.9, 0.999
        Decay rates of Adam's first and second moment estimates, in [0, 1).

    epsilon : float, default=1e-8
        Adam's numerical stabiliser.

    n_iter_no_change : int or inf, default=10
        Epochs without improvement tolerated before stopping.

    max_fun : int, default=15000
        Most loss evaluations 'lbfgs' may make.

    n_threads : int or None, default=None
        Threads used inside each mini-batch and prediction. None: at most
        the CPUs this process may use, lowered by OMP_NUM_THREADS and by
        threadpoolctl limits, and within that the count that times fastest,
        re-checked as the fit runs (never slower than one thread on a busy
        machine); -1 uses every CPU; -k all but k - 1 of them; k > 0
        exactly k (at most 256). Results are bit-for-bit the same for every
        value. (fastmlp addition.)

    dropout : float or sequence of float, default=0.0
        Inverted dropout during training: each hidden unit's output is zeroed
        with this probability (one rate for all hidden layers, or one per
        layer) and the rest scaled by 1 / (1 - rate); prediction uses the
        whole network. Masks come from a generator seeded by random_state:
        the same for any n_threads. Stochastic solvers only. (fastmlp
        addition.)

    weight_init : {'sklearn', 'glorot_uniform', 'he_uniform', 'he_normal', \
'lecun_normal'}, default='sklearn'
        How starting weights are drawn from random_state. 'sklearn' is
        scikit-learn's scheme (weights and biases uniform in
        +-sqrt(6 / (fan_in + fan_out)), 2 instead of 6 for logistic layers);
        the others draw the weights only, uniform in +-sqrt(6 / (fan_in +
        fan_out)) or +-sqrt(6 / fan_in), or normal with standard deviation
        sqrt(2 / fan_in) or sqrt(1 / fan_in), and start the biases at zero.
        (fastmlp addition.)

    coefs_init, intercepts_init : list of ndarray or None, default=None
        Starting weights of shapes (n_units_i, n_units_i+1) and biases of
        shapes (n_units_i+1,), used as given (copied) by every fit that
        starts afresh; what is not given is drawn by weight_init. (fastmlp
        addition.)

    early_stopping_metric : {'score', 'loss'}, default='score'
        What early stopping watches on the validation set: the score
        (scikit-learn's) or the loss. (fastmlp addition.)

    callbacks : list of callables or None, default=None
        Called after every epoch as callback(estimator, record), record a
        fastmlp.callbacks.EpochRecord; returning True stops training.
        Stochastic solvers only. (fastmlp addition.)

    clip_grad_norm : float or None, default=None
        Scale every step's gradient down to this L2 norm when it is larger.
        Stochastic solvers only. (fastmlp addition.)
"""

_COMMON_ATTRIBUTES_DOC = """
    loss_ : float
        Loss after the last epoch (or at the 'lbfgs' solution), L2 term
        included.

    best_loss_ : float or None
        Lowest loss over the epochs; None with early stopping ('sgd', 'adam').

    loss_curve_ : list of float
        Loss after every epoch ('sgd', 'adam'); warm-started fits and
        partial_fit calls append to it.

    validation_scores_ : list of float or None
        Validation score after every epoch with early stopping, else None.

    best_validation_score_ : float or None
        Best validation score with early stopping, else None (the best score
        even when early_stopping_metric='loss' picks the weights).

    validation_loss_curve_ : list of float
        With a validation set (X_val and y_val, or early stopping's split):
        its loss after every epoch, the data's loss alone without the L2
        term; warm starts and partial_fit append. (fastmlp addition.)

    best_validation_loss_ : float
        Lowest value of ``validation_loss_curve_``. (fastmlp addition.)

    t_ : int
        Training samples seen by the stochastic solver.

    coefs_ : list of ndarray, length ``n_layers_ - 1``
        coefs_[i] of shape (n_units_i, n_units_i+1) maps layer i to layer i+1.
        Views into one parameter buffer: writing into them changes the model,
        and arrays assigned to them are taken up by the next fit or predict.

    intercepts_ : list of ndarray, length ``n_layers_ - 1``
        intercepts_[i] of shape (n_units_i+1,) is the bias of layer i+1.

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Feature names seen during fit, when X had string column names.

    n_iter_ : int
        Epochs (or 'lbfgs' iterations) run by the last fit.

    n_layers_ : int
        Layers, input and output included.

    n_outputs_ : int
        Output units.

    out_activation_ : str
        Activation of the output layer.
"""


def _with_docs(cls):
    cls.__doc__ = cls.__doc__.replace("{parameters}", _COMMON_PARAMETERS_DOC.strip("\n"))
    cls.__doc__ = cls.__doc__.replace("{attributes}", _COMMON_ATTRIBUTES_DOC.strip("\n"))
    return cls


def _predictions_score(y_pred, y, sample_weight, score):
    """score(y, y_pred), or NaN when a prediction is not finite."""
    if np.issubdtype(np.asarray(y_pred).dtype, np.floating) and not np.isfinite(y_pred).all():
        return np.nan
    return score(y, y_pred, sample_weight=sample_weight)


@_with_docs
class MLPClassifier(ClassifierMixin, BaseMultilayerPerceptron):
    """Multilayer perceptron classifier trained by backpropagation in C.

    A drop-in replacement for sklearn.neural_network.MLPClassifier: the same
    parameters, attributes and methods, and, from the same random_state, the
    same model. Minimises the log-loss: softmax output for multiclass
    targets, one logistic unit per label for binary and multilabel targets.

    Parameters
    ----------
{parameters}

    class_weight : dict, 'balanced' or None, default=None
        Weights of the classes in the loss, multiplied into sample_weight:
        a dict {label: weight}, or 'balanced' for n_samples / (n_classes *
        count of the class). (fastmlp addition.)

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.

{attributes}

    Examples
    --------
    >>> from fastmlp import MLPClassifier
    >>> from sklearn.datasets import make_classification
    >>> X, y = make_classification(n_samples=200, random_state=0)
    >>> clf = MLPClassifier(max_iter=300, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:1]).shape
    (1, 2)
    """

    loss = "log_loss"

    _parameter_constraints: dict = {
        **BaseMultilayerPerceptron._parameter_constraints,
        "class_weight": [NONE, Options("balanced"), DICT],
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        n_threads=None,
        dropout=0.0,
        weight_init="sklearn",
        coefs_init=None,
        intercepts_init=None,
        early_stopping_metric="score",
        callbacks=None,
        clip_grad_norm=None,
        class_weight=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.n_threads = n_threads
        self.dropout = dropout
        self.weight_init = weight_init
        self.coefs_init = coefs_init
        self.intercepts_init = intercepts_init
        self.early_stopping_metric = early_stopping_metric
        self.callbacks = callbacks
        self.clip_grad_norm = clip_grad_norm
        self.class_weight = class_weight

    def _class_weighted(self, y, sample_weight, incremental):
        if self.class_weight is None:
            return sample_weight
        if incremental and self.class_weight == "balanced":
            raise ValueError(
                "class_weight='balanced' is not available to partial_fit, which sees one "
                "chunk of the data at a time; pass a dict of weights, e.g. from "
                "sklearn.utils.class_weight.compute_class_weight on all of y."
            )
        weights = compute_sample_weight(self.class_weight, np.asarray(y))
        return weights if sample_weight is None else weights * np.asarray(sample_weight)

    def _encode_targets(self, y):
        classes = unique_labels(y)
        if len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
            raise ValueError(
                f"y_val has classes not in `self.classes_`. `self.classes_` has "
                f"{self.classes_}. 'y_val' has {classes}."
            )
        return self._label_binarizer.transform(y).astype(bool)

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)

        # A new label binarizer on a fresh fit; otherwise the labels must
        # match those of the previous fit (warm_start) or be among the known
        # classes (partial_fit).
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
            if y.ndim == 1 and self._label_binarizer.y_type_ in ("binary", "multiclass"):
                # every label is one of the sorted classes_ just found: its
                # index is the binarizer's column (binary: the one column)
                codes = np.searchsorted(self.classes_, y)
                if self._label_binarizer.y_type_ == "binary":
                    return X, (codes == 1)[:, None]
                return X, np.arange(len(self.classes_)) == codes[:, None]
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in "
                        f"the previous call to fit. Previously got {self.classes_}, `y` "
                        f"has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has "
                    f"{self.classes_}. 'y' has {classes}."
                )
        # bool keeps float32 data from being promoted by the targets
        y = self._label_binarizer.transform(y).astype(bool)
        return X, y

    def _output_activation(self):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _engine_loss(self):
        return "log_loss" if self.out_activation_ == "softmax" else "binary_log_loss"

    def _labels(self, outputs):
        if self.n_outputs_ == 1:
            outputs = outputs.ravel()
        return self._label_binarizer.inverse_transform(outputs)

    def _score_outputs(self, outputs, y, sample_weight):
        return _predictions_score(self._labels(outputs), y, sample_weight, accuracy_score)

    def fit(
        self,
        X: Any,
        y: ArrayLike,
        sample_weight: Optional[ArrayLike] = None,
        *,
        X_val: Any = None,
        y_val: Optional[ArrayLike] = None,
    ) -> MLPClassifier:
        """Fit the model to X and y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data; float32 data is trained in float32.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels, or a label indicator matrix for multilabel data.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample in the loss (multiplied by class_weight's).
        X_val, y_val : array-like, default=None
            A validation set, of shapes (n_val, n_features) and like y: its
            loss is recorded after every epoch in ``validation_loss_curve_``,
            and early stopping watches it instead of holding out part of X.
            Stochastic solvers only. (fastmlp addition.)

        Returns
        -------
        self : MLPClassifier
        """
        return self._fit(X, y, sample_weight=sample_weight, X_val=X_val, y_val=y_val)

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(
                f"partial_fit is only available for stochastic optimizers. {self.solver} "
                "is not stochastic."
            )
        return True

    @available_if(lambda est: est._check_solver())
    def partial_fit(
        self,
        X: Any,
        y: ArrayLike,
        sample_weight: Optional[ArrayLike] = None,
        classes: Optional[ArrayLike] = None,
    ) -> MLPClassifier:
        """Train for one epoch over X and y, continuing from the current state.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels, or a label indicator matrix for multilabel data.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample in the loss.
        classes : array-like of shape (n_classes,), default=None
            Every class that may ever appear; required on the first call,
            optional (and checked) afterwards.

        Returns
        -------
        self : MLPClassifier
        """
        if getattr(self, "classes_", None) is None and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        undo = _Undo(self)  # the classes set here go too if the call fails
        with undo:
            self._take_classes(classes, y)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True, undo=undo)

    def _take_classes(self, classes, y):
        """On partial_fit's first call, the label encoding of `classes`;
        afterwards, a check that `classes` (when given) are the same."""
        if classes is None:
            return
        known = getattr(self, "classes_", None)
        if known is not None:
            if not np.array_equal(known, unique_labels(classes)):
                raise ValueError(
                    f"`classes={classes!r}` is not the same as on last call to "
                    f"partial_fit, was: {known!r}"
                )
            return
        self.classes_ = unique_labels(classes)
        self._label_binarizer = LabelBinarizer()
        if type_of_target(y).startswith("multilabel"):
            self._label_binarizer.fit(y)
        else:
            self._label_binarizer.fit(classes)

    def predict(self, X: Any) -> NDArray[Any]:
        """Predict class labels.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The samples.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_labels)
        """
        self._check_fitted()
        return self._labels(self._forward_pass_fast(X))

    def predict_proba(self, X: Any) -> NDArray[np.floating]:
        """Probability of each class.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``; for multilabel targets, the
            probability of each label.
        """
        self._check_fitted()
        return self._forward_pass_fast(X, two_class=self.n_outputs_ == 1)

    def predict_log_proba(self, X: Any) -> NDArray[np.floating]:
        """Natural logarithm of the probability of each class.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The samples.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            ``np.log(predict_proba(X))``.
        """
        proba = self.predict_proba(X)
        return np.log(proba, out=proba)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


@_with_docs
class MLPRegressor(RegressorMixin, BaseMultilayerPerceptron):
    """Multilayer perceptron regressor trained by backpropagation in C.

    A drop-in replacement for sklearn.neural_network.MLPRegressor: the same
    parameters, attributes and methods, and, from the same random_state, the
    same model. Minimises half the squared error (averaged over outputs in
    the reported loss), or half the Poisson deviance through an exponential
    output.

    Parameters
    ----------
    loss : {'squared_error', 'poisson'}, default='squared_error'
        'poisson' needs y >= 0 and uses an exponential output.

{parameters}

    out_activation : {'identity', 'logistic', 'tanh', 'relu', 'exp'} or None, \
default=None
        Output activation. None keeps scikit-learn's choice: identity for
        squared error, exp for Poisson. Another activation with squared
        error backpropagates through its derivative, delta = (p - y) f'(p),
        as in the classic textbook networks with logistic outputs.
        (fastmlp addition.)

    Attributes
    ----------
{attributes}

    Examples
    --------
    >>> from fastmlp import MLPRegressor
    >>> from sklearn.datasets import make_regression
    >>> X, y = make_regression(n_samples=200, n_features=10, random_state=0)
    >>> reg = MLPRegressor(max_iter=500, random_state=0).fit(X, y)
    >>> reg.predict(X[:2]).shape
    (2,)
    """

    _parameter_constraints: dict = {
        **BaseMultilayerPerceptron._parameter_constraints,
        "loss": [Options("squared_error", "poisson")],
        "out_activation": [NONE, Options("identity", "logistic", "tanh", "relu", "exp")],
    }

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        n_threads=None,
        dropout=0.0,
        weight_init="sklearn",
        coefs_init=None,
        intercepts_init=None,
        early_stopping_metric="score",
        callbacks=None,
        clip_grad_norm=None,
        out_activation=None,
    ):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.n_threads = n_threads
        self.dropout = dropout
        self.weight_init = weight_init
        self.coefs_init = coefs_init
        self.intercepts_init = intercepts_init
        self.early_stopping_metric = early_stopping_metric
        self.callbacks = callbacks
        self.clip_grad_norm = clip_grad_norm
        self.out_activation = out_activation

    def _validate_input(self, X, y, incremental, reset):
        if self.loss == "poisson" and self.out_activation not in (None, "exp"):
            raise ValueError(
                "loss='poisson' needs out_activation=None or 'exp', got "
                f"{self.out_activation!r}."
            )
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            y_numeric=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError("loss='poisson' needs non-negative targets y.")
        return X, y

    def _encode_targets(self, y):
        y = np.asarray(y)
        if y.dtype.kind not in "biuf":
            raise ValueError(f"y_val must hold numbers, got dtype {y.dtype}.")
        y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y_val")
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError("loss='poisson' needs non-negative targets y_val.")
        y = y.reshape(-1, 1) if y.ndim == 1 else y
        if y.shape[1] != self.n_outputs_:
            raise ValueError(
                f"y_val has {y.shape[1]} targets, the model is fitted on {self.n_outputs_}."
            )
        return y

    def _output_activation(self):
        if self.out_activation is not None:
            return self.out_activation
        return "exp" if self.loss == "poisson" else "identity"

    def _engine_loss(self):
        return self.loss

    def _values(self, outputs):
        return outputs.ravel() if outputs.shape[1] == 1 else outputs

    def _score_outputs(self, outputs, y, sample_weight):
        return _predictions_score(self._values(outputs), y, sample_weight, r2_score)

    def fit(
        self,
        X: Any,
        y: ArrayLike,
        sample_weight: Optional[ArrayLike] = None,
        *,
        X_val: Any = None,
        y_val: Optional[ArrayLike] = None,
    ) -> MLPRegressor:
        """Fit the model to X and y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data; float32 data is trained in float32.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample in the loss.
        X_val, y_val : array-like, default=None
            A validation set, of shapes (n_val, n_features) and like y: its
            loss is recorded after every epoch in ``validation_loss_curve_``,
            and early stopping watches it instead of holding out part of X.
            Stochastic solvers only. (fastmlp addition.)

        Returns
        -------
        self : MLPRegressor
        """
        return self._fit(X, y, sample_weight=sample_weight, X_val=X_val, y_val=y_val)

    def partial_fit(
        self, X: Any, y: ArrayLike, sample_weight: Optional[ArrayLike] = None
    ) -> MLPRegressor:
        """Train for one epoch over X and y, continuing from the current state.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample in the loss.

        Returns
        -------
        self : MLPRegressor
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X: Any) -> NDArray[np.floating]:
        """Predict targets.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The samples.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_targets)
        """
        self._check_fitted()
        return self._values(self._forward_pass_fast(X))
