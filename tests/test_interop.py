"""fastmlp <-> scikit-learn conversion of fitted models."""

import io
import warnings

import joblib
import numpy as np
import pytest
import sklearn.neural_network as sk
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

import fastmlp

X, y = make_classification(300, 6, n_informative=4, n_classes=3, random_state=0)
Xr, yr = make_regression(300, 6, n_targets=2, random_state=0)


def quiet(model, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(*args)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_from_sklearn_predicts_the_same_and_trains_on_the_same(solver):
    theirs = quiet(sk.MLPClassifier(hidden_layer_sizes=(7,), solver=solver, max_iter=5,
                                    random_state=0), X, y)
    ours = fastmlp.from_sklearn(theirs)
    assert isinstance(ours, fastmlp.MLPClassifier)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    # the weights are views of one buffer, as after a fit: the fast
    # prediction path caches its predictor
    from fastmlp._base import _PREDICTORS

    assert ours in _PREDICTORS
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-12)
    if solver != "lbfgs":
        ours.partial_fit(X, y)
        theirs.partial_fit(X, y)
        for a, b in zip(ours.coefs_, theirs.coefs_):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_to_sklearn_predicts_the_same_and_trains_on_the_same(solver):
    ours = quiet(fastmlp.MLPRegressor(hidden_layer_sizes=(8,), solver=solver, max_iter=5,
                                      random_state=0), Xr, yr / 100)
    theirs = ours.to_sklearn()
    assert type(theirs) is sk.MLPRegressor
    np.testing.assert_allclose(theirs.predict(Xr), ours.predict(Xr), rtol=1e-12)
    ours.partial_fit(Xr, yr / 100)
    theirs.partial_fit(Xr, yr / 100)
    for a, b in zip(ours.coefs_, theirs.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    back = fastmlp.from_sklearn(joblib.load(_dump(theirs)))
    np.testing.assert_allclose(back.predict(Xr), theirs.predict(Xr), rtol=1e-12)


def _dump(model):
    import io

    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    buffer.seek(0)
    return buffer


@pytest.mark.parametrize(
    "params,named",
    [
        (dict(activation="gelu"), "activation='gelu'"),
        (dict(activation=("relu", "tanh"), hidden_layer_sizes=(4, 3)), "one per layer"),
        (dict(solver="adamw"), "solver='adamw'"),
        (dict(dropout=0.2), "dropout=0.2"),
        (dict(class_weight="balanced"), "class_weight='balanced'"),
        (dict(clip_grad_norm=1.0), "clip_grad_norm=1.0"),
        (dict(early_stopping=True, early_stopping_metric="loss"), "early_stopping_metric='loss'"),
    ],
)
def test_to_sklearn_names_what_sklearn_cannot_express(params, named):
    model = quiet(fastmlp.MLPClassifier(**{"hidden_layer_sizes": (4,), "max_iter": 2, **params}), X, y)
    with pytest.raises(ValueError, match=f"cannot express .*{named.replace('(', '.').replace(')', '.')}"):
        model.to_sklearn()


def test_from_sklearn_refuses_other_objects():
    with pytest.raises(TypeError, match="MLPClassifier or MLPRegressor"):
        fastmlp.from_sklearn(object())
    with pytest.raises(ValueError, match="fitted"):
        fastmlp.from_sklearn(sk.MLPClassifier())


def test_a_model_of_the_wrong_library_is_named_with_its_module():
    ours = quiet(fastmlp.MLPClassifier(hidden_layer_sizes=(3,), max_iter=2), X, y)
    with pytest.raises(TypeError, match=r"got fastmlp\.MLPClassifier, which is a fastmlp model"):
        fastmlp.from_sklearn(ours)
    with pytest.raises(TypeError, match=r"got sklearn\.linear_model\.LogisticRegression$"):
        fastmlp.from_sklearn(LogisticRegression())
    theirs = quiet(sk.MLPRegressor(hidden_layer_sizes=(3,), max_iter=2), Xr, yr)
    for action in (fastmlp.save, fastmlp.to_onnx):
        with pytest.raises(TypeError, match=r"got sklearn\.neural_network\.MLPRegressor, "
                                            r"scikit-learn's: convert it with fastmlp\.from_sklearn"):
            action(theirs, io.BytesIO())
        with pytest.raises(TypeError, match=r"fastmlp MLPClassifier or MLPRegressor, got object$"):
            action(object(), io.BytesIO())
