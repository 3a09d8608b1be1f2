"""The hand-worked backpropagation example (shared/WORKED_EXAMPLE.md) and
XOR, reproduced through the public estimators."""

import numpy as np
import pytest

from fastmlp import MLPClassifier
from fastmlp._demo import (
    WORKED_X,
    WORKED_Y,
    XOR_X,
    XOR_Y,
    fit_quietly,
    run_worked_example,
    worked_example_model,
)


def test_first_update_reproduces_every_weight():
    model = fit_quietly(worked_example_model(1), WORKED_X[:1], WORKED_Y[:1])
    np.testing.assert_allclose(model.coefs_[0], [[0.105522, 0.306898], [-0.205522, 0.543102]], atol=1e-6)
    np.testing.assert_allclose(model.intercepts_[0], [0.021044, -0.006203], atol=1e-6)
    np.testing.assert_allclose(model.coefs_[1], [[0.394148, -0.288500], [0.920745, -0.178845]], atol=1e-6)
    np.testing.assert_allclose(model.intercepts_[1], [0.354726, 0.143128], atol=1e-6)
    # E of the first sample before its update, summed over the two outputs
    assert model.loss_ * 2 == pytest.approx(0.106669, abs=1e-6)


def test_forward_values_and_deltas_printed_by_the_demo():
    lines = []
    run_worked_example(lines.append)
    text = "\n".join(lines)
    for number in [
        "0.160000, -0.145000",
        "0.539915, 0.463813",
        "0.927201, 0.095561",
        "0.716507, 0.523872",
        "E = 0.106669",
        "-0.037272, 0.105726",
        "-0.009204, -0.011497",
        "0.37 -> 0.394148",
        "0.1 -> 0.105522",
        "summed E = 0.523640",
    ]:
        assert number in text


def test_one_epoch_and_a_thousand():
    epoch = fit_quietly(worked_example_model(1), WORKED_X, WORKED_Y)
    assert epoch.loss_ * 3 * 2 == pytest.approx(0.523640, abs=1e-6)
    trained = fit_quietly(worked_example_model(1000), WORKED_X, WORKED_Y)
    assert trained.n_iter_ == 1000
    np.testing.assert_allclose(
        trained.predict(WORKED_X),
        [[0.985311, 0.106104], [0.888154, 0.884828], [0.100659, 0.113992]],
        atol=1e-6,
    )


def test_two_logistic_hidden_units_fit_xor_and_no_hidden_layer_cannot():
    hidden = fit_quietly(
        MLPClassifier((2,), activation="logistic", solver="lbfgs", random_state=0), XOR_X, XOR_Y
    )
    np.testing.assert_array_equal(hidden.predict(XOR_X), XOR_Y)
    linear = fit_quietly(
        MLPClassifier((), activation="logistic", solver="lbfgs", random_state=0), XOR_X, XOR_Y
    )
    assert linear.n_layers_ == 2
    assert (linear.predict(XOR_X) == XOR_Y).sum() <= 3
