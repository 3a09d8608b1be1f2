"""The hand-worked backpropagation example (shared/WORKED_EXAMPLE.md) and
XOR, reproduced through the public estimators."""

import re

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
    run_xor,
    time_in_turns,
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


def demo_lines(run):
    lines = []
    run(lines.append)
    return lines


def test_the_demo_writes_each_rule_just_above_its_numbers():
    lines = demo_lines(run_worked_example)
    for rule, number in [
        ("a = 1 / (1 + exp(-z))", "0.539915, 0.463813"),
        ("E = 1/2 sum_k (y_k - a_k)^2", "E = 0.106669"),
        ("d_o = dE/dz_o = (a_o - y) a_o (1 - a_o)", "-0.037272, 0.105726"),
        ("d_h = dE/dz_h = (d_o W_o^T) a_h (1 - a_h)", "-0.009204, -0.011497"),
        ("w(i->j) <- w(i->j) - 1.2 * d_j * a_i", "0.37 -> 0.394148"),
    ]:
        at = [k for k, line in enumerate(lines) if rule in line]
        assert len(at) == 1, rule
        assert number in lines[at[0] + 1], (rule, lines[at[0] + 1])


def test_after_1000_epochs_each_output_stands_next_to_its_target():
    lines = demo_lines(run_worked_example)
    outputs = [[0.985311, 0.106104], [0.888154, 0.884828], [0.100659, 0.113992]]
    for target, output in zip(WORKED_Y, outputs):
        pair = (f"[{target[0]:.6f}, {target[1]:.6f}]", f"[{output[0]:.6f}, {output[1]:.6f}]")
        assert any(pair[0] in line and pair[1] in line for line in lines), pair


def test_one_rounding_throughout_the_worked_example_and_xor():
    text = "\n".join(demo_lines(run_worked_example) + demo_lines(run_xor))
    numbers = re.findall(r"-?\d+\.\d+", text)
    given = {"0.37", "0.1", "1.2"}  # the walk-through's own starting weights and learning rate
    assert len(numbers) > 40
    assert [n for n in numbers if n not in given and len(n.split(".")[1]) != 6] == []


def test_xor_shows_each_points_probabilities_a_coin_flip_without_hidden_layer():
    lines = demo_lines(run_xor)
    models = {}
    for hidden in [(), (2,)]:
        models[hidden] = fit_quietly(
            MLPClassifier(hidden, activation="logistic", solver="lbfgs", random_state=0), XOR_X, XOR_Y
        ).predict_proba(XOR_X)[:, 1]
    np.testing.assert_allclose(models[()], 0.5, atol=1e-3)  # what the demo calls a coin flip
    for k in range(4):
        row = [f"{models[()][k]:.6f}", f"{models[(2,)][k]:.6f}"]
        assert any(line.split()[:3] == [f"{XOR_X[k, 0]:.0f}", f"{XOR_X[k, 1]:.0f}", str(XOR_Y[k])]
                   and all(p in line for p in row) for line in lines), row
    assert any("coin flip" in line for line in lines)
    assert any("hidden layer (2,): 4/4 points right" in line for line in lines)


def test_timing_takes_turns_and_reports_the_median_of_each():
    # a clock whose readings make the three fits of "a" take 1, 5 and 2 s,
    # and those of "b" 10, 30 and 20 s, in turns a b a b a b
    durations = iter([1, 10, 5, 30, 2, 20])
    now = [0.0]

    def clock():
        return now[0]

    def fit(name):
        def run():
            calls.append(name)
            now[0] += next(durations)
            return name.upper()
        return run

    calls = []
    timed = time_in_turns({"a": fit("a"), "b": fit("b")}, rounds=3, clock=clock)
    assert calls == ["a", "b"] * 3
    assert timed == {"a": ("A", 2.0), "b": ("B", 20.0)}
