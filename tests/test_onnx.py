"""ONNX export: onnxruntime gives fastmlp's predictions (extra fastmlp[onnx])."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_multilabel_classification, make_regression
from sklearn.exceptions import ConvergenceWarning

import fastmlp

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

ACTIVATIONS = ["identity", "logistic", "tanh", "relu", "leaky_relu", "elu", "gelu", "softplus", "silu"]


def fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


def run(model, X):
    proto = fastmlp.to_onnx(model, X)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"X": X})))


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
def test_classifier_matches_onnxruntime(activation, task):
    if task == "multilabel":
        X, y = make_multilabel_classification(200, 6, n_classes=3, random_state=0)
    else:
        X, y = make_classification(200, 6, n_informative=4, n_classes=2 if task == "binary" else 3,
                                   random_state=0)
        y = np.array(["ant", "bee", "cat"])[y]  # string labels travel too
    X = X.astype(np.float32)
    model = fit(fastmlp.MLPClassifier(hidden_layer_sizes=(9, 5), activation=activation,
                                      max_iter=20, random_state=0), X, y)
    out = run(model, X)
    np.testing.assert_allclose(out["probabilities"], model.predict_proba(X), atol=1e-5)
    np.testing.assert_array_equal(out["label"], model.predict(X))


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("output", [None, "logistic", "exp"])
def test_regressor_matches_onnxruntime(activation, output):
    X, y = make_regression(200, 6, n_targets=2, random_state=0)
    y = np.abs(y) / 300 if output == "exp" else y / 300
    model = fit(fastmlp.MLPRegressor(hidden_layer_sizes=(8,), activation=activation,
                                     out_activation=output, max_iter=20, random_state=0),
                X.astype(np.float32), y)
    out = run(model, X.astype(np.float32))
    np.testing.assert_allclose(out["variable"], model.predict(X.astype(np.float32)), atol=1e-5, rtol=1e-5)


def test_float64_graph_from_a_float64_sample():
    X, y = make_classification(100, 4, random_state=0)
    model = fit(fastmlp.MLPClassifier(hidden_layer_sizes=(5,), max_iter=10, random_state=0), X, y)
    out = run(model, X)
    assert out["probabilities"].dtype == np.float64
    np.testing.assert_allclose(out["probabilities"], model.predict_proba(X), rtol=1e-12)


@pytest.mark.parametrize("labels", ["one class", "beyond int64"])
def test_unusual_labels_come_out_as_predict_gives_them(labels):
    X, y = make_classification(60, 4, random_state=0)
    X = X.astype(np.float32)
    if labels == "one class":
        y = np.full(len(y), 7)
    else:
        y = (y + np.iinfo(np.int64).max).astype(np.uint64)
    model = fit(fastmlp.MLPClassifier(hidden_layer_sizes=(3,), max_iter=5, random_state=0), X, y)
    out = run(model, X)
    assert out["label"].dtype == model.predict(X).dtype
    np.testing.assert_array_equal(out["label"], model.predict(X))
    np.testing.assert_allclose(out["probabilities"], model.predict_proba(X), atol=1e-5)


def test_model_declares_the_oldest_ir_version_its_opset_allows():
    from onnx import helper

    X, y = make_classification(60, 4, random_state=0)
    model = fit(fastmlp.MLPClassifier(hidden_layer_sizes=(3,), max_iter=5, random_state=0), X, y)
    proto = fastmlp.to_onnx(model)
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", 17)]
    assert proto.ir_version == helper.find_min_ir_version_for(proto.opset_import) == 8
