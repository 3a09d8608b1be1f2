"""Bad input gets a clear exception, raised before the engine runs."""

import re

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from fastmlp import InvalidParameterError, MLPClassifier, MLPRegressor

rng = np.random.RandomState(0)
X = rng.rand(30, 4)
y = np.arange(30) % 3


@pytest.fixture(scope="module")
def fitted():
    with pytest.warns(ConvergenceWarning):  # three epochs, on purpose
        return MLPClassifier(hidden_layer_sizes=(5,), max_iter=3).fit(X, y)


def with_value(a, where, value):
    a = a.astype(float).copy()
    a[where] = value
    return a


DATA_ERRORS = {
    "NaN in X": (lambda: MLPClassifier().fit(with_value(X, (3, 1), np.nan), y), "NaN"),
    "inf in X": (lambda: MLPRegressor().fit(with_value(X, (0, 0), np.inf), y), "infinity"),
    "NaN in y": (lambda: MLPRegressor().fit(X, with_value(y, 2, np.nan)), "NaN"),
    "inf in sample_weight": (
        lambda: MLPRegressor().fit(X, y, sample_weight=with_value(np.ones(30), 0, np.inf)),
        "infinity",
    ),
    "empty X": (lambda: MLPClassifier().fit(np.empty((0, 4)), []), "0 sample"),
    "no features": (lambda: MLPClassifier().fit(np.empty((30, 0)), y), "0 feature"),
    "mismatched lengths": (lambda: MLPClassifier().fit(X, y[:20]), "inconsistent numbers"),
    "sample_weight length": (
        lambda: MLPClassifier().fit(X, y, sample_weight=np.ones(5)),
        "sample_weight",
    ),
    "1-D X": (lambda: MLPClassifier().fit(X[:, 0], y), "2D array"),
    "3-D X": (lambda: MLPClassifier().fit(X[:, :, None], y), "dim 3"),
    "strings in X": (lambda: MLPClassifier().fit(np.full((30, 4), "a"), y), "convert string"),
    "complex X": (lambda: MLPClassifier().fit(X + 1j, y), "Complex"),
    "continuous y for a classifier": (lambda: MLPClassifier().fit(X, X[:, 0]), "label type"),
    "negative y with poisson": (lambda: MLPRegressor(loss="poisson").fit(X, y - 1.0), "non-negative"),
    "partial_fit without classes": (lambda: MLPClassifier().partial_fit(X, y), "classes must be"),
    "partial_fit with early stopping": (
        lambda: MLPClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2]),
        "early_stopping",
    ),
    "warm start with other classes": (
        lambda: MLPClassifier(warm_start=True, max_iter=2).fit(X, y).fit(X, y + 3),
        "same classes",
    ),
    "warm start with other layer widths": (
        lambda: MLPClassifier(warm_start=True, max_iter=2, hidden_layer_sizes=(3,))
        .fit(X, y)
        .set_params(hidden_layer_sizes=(4,))
        .fit(X, y),
        "widths",
    ),
}


# the warm-start cases fit two epochs before the fit that fails
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("case", sorted(DATA_ERRORS))
def test_bad_data_raises_a_clear_error(case):
    action, message = DATA_ERRORS[case]
    with pytest.raises(ValueError, match=re.escape(message)):
        action()


def test_assigned_weights_of_the_wrong_shape_are_refused_at_fit():
    model = MLPRegressor(hidden_layer_sizes=(3,), warm_start=True, max_iter=2)
    model.coefs_ = [np.ones((4, 3)), np.ones((2, 1))]
    model.intercepts_ = [np.ones(3), np.ones(1)]
    with pytest.raises(ValueError, match="does not follow"):
        model.fit(X, y)


def test_wrong_feature_count_at_predict(fitted):
    for method in (fitted.predict, fitted.predict_proba, fitted.predict_log_proba):
        with pytest.raises(ValueError, match="X has 6 features, but MLPClassifier is expecting 4"):
            method(rng.rand(2, 6))
    with pytest.raises(ValueError, match="NaN"):
        fitted.predict(with_value(X, (0, 0), np.nan))


def test_unseen_labels_in_partial_fit():
    model = MLPClassifier(hidden_layer_sizes=(3,)).partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match=r"`y` has classes not in `self.classes_`"):
        model.partial_fit(X, y + 1)
    with pytest.raises(ValueError, match="is not the same as on last call"):
        model.partial_fit(X, y, classes=[0, 1, 2, 3])


def test_partial_fit_is_absent_for_lbfgs():
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    assert hasattr(MLPClassifier(solver="adam"), "partial_fit")


INVALID_PARAMETERS = [
    ("hidden_layer_sizes", "abc"),
    ("activation", "swish"),
    ("activation", None),
    ("solver", "newton"),
    ("alpha", -1.0),
    ("alpha", np.nan),
    ("batch_size", 0),
    ("batch_size", "big"),
    ("learning_rate", "cosine"),
    ("learning_rate_init", 0.0),
    ("power_t", -0.5),
    ("max_iter", 0),
    ("max_iter", 2.5),
    ("shuffle", "yes"),
    ("random_state", "seed"),
    ("tol", -1e-3),
    ("verbose", -1),
    ("warm_start", 1),
    ("momentum", 1.5),
    ("nesterovs_momentum", None),
    ("early_stopping", "no"),
    ("validation_fraction", 1.0),
    ("beta_1", 1.0),
    ("beta_2", -0.1),
    ("epsilon", 0.0),
    ("n_iter_no_change", 0),
    ("max_fun", 0),
    ("n_threads", 0),
    ("n_threads", 1.5),
]


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize("name,value", INVALID_PARAMETERS)
def test_invalid_parameter_is_named_in_the_error(cls, name, value):
    model = cls(**{name: value})
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter of {cls.__name__}"):
        model.fit(X, y)
    assert not hasattr(model, "coefs_")


@pytest.mark.parametrize("value,message", [((3, 0), "> 0"), ((3, -2), "> 0"), ((3, 2.5), "integers")])
def test_hidden_layer_sizes_must_be_positive_integers(value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        MLPClassifier(hidden_layer_sizes=value).fit(X, y)


def test_regressor_only_parameters():
    with pytest.raises(InvalidParameterError, match="'loss' parameter of MLPRegressor"):
        MLPRegressor(loss="huber").fit(X, y)
    with pytest.raises(InvalidParameterError, match="'out_activation' parameter"):
        MLPRegressor(out_activation="softmax").fit(X, y)
    with pytest.raises(ValueError, match="out_activation=None or 'exp'"):
        MLPRegressor(loss="poisson", out_activation="identity").fit(X, y)


def test_a_layer_too_wide_to_allocate_raises_memory_error():
    with pytest.raises(MemoryError):
        MLPClassifier(hidden_layer_sizes=(10**13,)).fit(X, y)


def test_thread_counts_out_of_range_are_refused():
    with pytest.raises(InvalidParameterError, match="'n_threads' parameter"):
        MLPClassifier(n_threads=100000).fit(X, y)
    from fastmlp import _engine

    with pytest.raises(ValueError, match="n_threads must be between"):
        _engine.dense_forward(np.empty((2, 2)), np.ones((2, 2)), np.ones((2, 2)), np.ones(2), n_threads=-1)


def test_hidden_layer_sizes_must_not_be_a_one_shot_iterator():
    with pytest.raises(InvalidParameterError, match="'hidden_layer_sizes'"):
        MLPClassifier(hidden_layer_sizes=(s for s in (5, 7))).fit(X, y)


def test_engine_objects_refuse_what_would_read_out_of_bounds():
    from fastmlp import _engine

    net = _engine.Network([4, 3, 2], ["relu", "identity"], "squared_error", 0.0, np.float64)
    other = _engine.Network([5, 3, 2], ["relu", "identity"], "squared_error", 0.0, np.float64)
    data = _engine.Dataset(other, np.ones((6, 5)), np.ones((6, 2)))
    params = np.zeros(net.n_params)
    with pytest.raises(ValueError, match="other widths or dtype"):
        _engine.loss_grad(net, data, params, np.empty_like(params), net.workspace(4, 1), 4, 1)
    single = _engine.Network([4, 3, 2], ["relu", "identity"], "squared_error", 0.0, np.float32)
    with pytest.raises(ValueError, match="other widths or dtype"):
        _engine.predict(single, _engine.Dataset(net, np.ones((6, 4))), params.astype(np.float32),
                        np.empty((6, 2), np.float32), single.workspace(4, 1), 4, 1)
    with pytest.raises(ValueError, match="read-only"):
        net.units[0] = 10**7
    with pytest.raises(ValueError, match="out of the engine's range"):
        _engine.Network([2**62, 4, 1], ["relu", "identity"], "squared_error", 0.0, np.float64)
    with pytest.raises(ValueError, match="y must be an array of shape"):
        _engine.Dataset(net, np.ones((6, 4)), np.ones((5, 2)))


def test_softmax_of_zero_columns_is_a_no_op():
    from fastmlp import _engine

    A = np.empty((3, 0))
    _engine.activation_forward(A, "softmax")
    assert A.shape == (3, 0)
