"""fastmlp against scikit-learn: the same parameters, data and random_state
must give the same weights.

float64 fits agree to rtol 1e-6 (in practice to rounding, ~1e-13); float32
fits to rtol 2e-3. A weight near zero is compared on the scale of its layer:
the absolute tolerance is rtol times the layer's largest weight. L-BFGS in float32 amplifies float32 rounding by about
ten times every five iterations in both libraries alike, so its float32 cases
stop after 10 iterations. Run this file as a script to print the largest
difference of every case (with --long-lbfgs: of L-BFGS over hundreds of
iterations, where float64 rounding differences grow too).
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn.neural_network as sk
from sklearn.datasets import (
    load_digits,
    make_classification,
    make_friedman1,
    make_multilabel_classification,
    make_regression,
)
from sklearn.exceptions import ConvergenceWarning

import fastmlp

SOLVERS = ["sgd", "adam", "lbfgs"]
ACTIVATIONS = ["identity", "logistic", "tanh", "relu"]
TASKS = ["binary", "multiclass", "multilabel", "regression"]
TOLERANCE = {np.float64: dict(rtol=1e-6), np.float32: dict(rtol=2e-3)}


def task_data(task, n=120):
    if task == "binary":
        X, y = make_classification(n, 6, n_informative=4, random_state=0)
    elif task == "multiclass":
        X, y = make_classification(n, 6, n_informative=4, n_classes=3, random_state=1)
    elif task == "multilabel":
        X, y = make_multilabel_classification(n, 6, n_classes=3, random_state=2)
    else:
        X, y = make_regression(n, 6, n_targets=2, noise=0.1, random_state=3)
        y = y / 100
    return X, y


def estimators(task):
    if task == "regression":
        return sk.MLPRegressor, fastmlp.MLPRegressor
    return sk.MLPClassifier, fastmlp.MLPClassifier


def fit_both(task, X, y, fit_params=None, **params):
    """scikit-learn's model and ours, fitted alike; both must give the same
    warnings (the ConvergenceWarning of fits cut short on purpose aside)."""
    fit_params = fit_params or {}
    models, warned = [], []
    for cls in estimators(task):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.simplefilter("ignore", ConvergenceWarning)
            models.append(cls(**params).fit(X, y, **fit_params))
        warned.append([(w.category, str(w.message)) for w in caught])
    assert warned[0] == warned[1]
    theirs, ours = models
    return theirs, ours


def max_difference(theirs, ours):
    return max(
        float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())
        for a, b in zip(theirs.coefs_ + theirs.intercepts_, ours.coefs_ + ours.intercepts_)
    )


def assert_same_model(theirs, ours, dtype, X=None):
    tol = TOLERANCE[dtype]
    rtol = tol["rtol"]
    assert len(ours.coefs_) == len(theirs.coefs_)
    for a, b in zip(theirs.coefs_ + theirs.intercepts_, ours.coefs_ + ours.intercepts_):
        assert a.shape == b.shape
        np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol * np.abs(a).max())
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.out_activation_ == theirs.out_activation_
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=tol["rtol"])
    if hasattr(theirs, "loss_curve_"):
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=tol["rtol"])
        assert ours.t_ == theirs.t_
    if X is not None:
        want = theirs.predict(X)
        scale = np.abs(want).max() if want.dtype.kind == "f" else 0
        np.testing.assert_allclose(ours.predict(X), want, rtol=rtol, atol=rtol * scale)


def base_params(solver, activation, dtype):
    max_iter = 10 if (solver == "lbfgs" and dtype == np.float32) else 30
    return dict(
        hidden_layer_sizes=(7, 5),
        activation=activation,
        solver=solver,
        max_iter=max_iter,
        batch_size=32,
        random_state=1,
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("solver", SOLVERS)
def test_fit_matches_sklearn(solver, activation, task, dtype):
    X, y = task_data(task)
    X = X.astype(dtype)
    theirs, ours = fit_both(task, X, y, **base_params(solver, activation, dtype))
    assert ours.coefs_[0].dtype == dtype  # float32 stays float32, L-BFGS included
    assert_same_model(theirs, ours, dtype, X)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("solver", SOLVERS)
def test_warm_start_from_assigned_weights_matches_sklearn(solver, activation, task, dtype):
    X, y = task_data(task)
    X = X.astype(dtype)
    params = base_params(solver, activation, dtype)
    theirs, ours = fit_both(task, X, y, **dict(params, max_iter=2))
    rng = np.random.RandomState(7)
    coefs = [rng.uniform(-0.5, 0.5, c.shape).astype(dtype) for c in theirs.coefs_]
    intercepts = [rng.uniform(-0.5, 0.5, b.shape).astype(dtype) for b in theirs.intercepts_]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for model in (theirs, ours):
            model.set_params(warm_start=True, max_iter=params["max_iter"])
            model.coefs_ = [c.copy() for c in coefs]
            model.intercepts_ = [b.copy() for b in intercepts]
            model.fit(X, y)
    assert_same_model(theirs, ours, dtype, X)


# Settings beyond the default grid, each a dict of constructor parameters
# plus optional "sample_weight", "sparse" and "task".
VARIANTS = {
    "sgd-constant-momentum": dict(solver="sgd", nesterovs_momentum=False),
    "sgd-invscaling": dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.5),
    "sgd-adaptive": dict(
        solver="sgd", learning_rate="adaptive", n_iter_no_change=2, tol=1e-2, max_iter=60
    ),
    "sgd-no-momentum": dict(solver="sgd", momentum=0.0),
    "adam-betas": dict(solver="adam", beta_1=0.8, beta_2=0.99, epsilon=1e-6, alpha=0.01),
    "early-stopping-sgd": dict(solver="sgd", early_stopping=True, max_iter=80),
    "early-stopping-adam-multiclass": dict(
        solver="adam", early_stopping=True, task="multiclass", validation_fraction=0.2
    ),
    "early-stopping-regression": dict(solver="adam", early_stopping=True, task="regression"),
    "early-stopping-sgd-adaptive": dict(
        solver="sgd", learning_rate="adaptive", early_stopping=True, n_iter_no_change=1,
        tol=0.05, max_iter=60,
    ),
    "sample-weight-adam": dict(solver="adam", sample_weight=True),
    "sample-weight-lbfgs": dict(solver="lbfgs", sample_weight=True, task="multiclass"),
    "sample-weight-early-stopping": dict(solver="sgd", sample_weight=True, early_stopping=True),
    "sparse-csr-adam": dict(solver="adam", sparse="csr"),
    "sparse-csc-lbfgs": dict(solver="lbfgs", sparse="csc", task="regression"),
    "no-shuffle": dict(solver="sgd", shuffle=False),
    "batch-larger-than-data": dict(solver="adam", batch_size=1000),
    # a batch the engine takes in two pieces (of at most 1024 rows, each in
    # blocks of 32 rows), their sums added before the step
    "batch-of-two-pieces": dict(solver="adam", batch_size=1500, n=2600, max_iter=5),
    "auto-batch": dict(solver="adam", batch_size="auto", task="multiclass"),
    "no-hidden-layer": dict(solver="adam", hidden_layer_sizes=()),
    "deep": dict(solver="adam", hidden_layer_sizes=(9, 8, 7, 6)),
    "tol-stops-early": dict(solver="adam", tol=0.05, n_iter_no_change=2, max_iter=200),
    "poisson": dict(solver="adam", task="poisson"),
    "poisson-lbfgs": dict(solver="lbfgs", task="poisson"),
    "random-state-instance": dict(solver="sgd", random_state="instance"),
}


def variant_setup(name):
    spec = dict(VARIANTS[name])
    task = spec.pop("task", "binary")
    use_sw = spec.pop("sample_weight", False)
    sparse = spec.pop("sparse", None)
    if task == "poisson":
        rng = np.random.RandomState(0)
        X = rng.uniform(-1, 1, (150, 5))
        y = rng.poisson(np.exp(X @ np.array([0.3, -0.2, 0.5, 0.1, 0.0])))
        data_task = "regression"
        spec["loss"] = "poisson"
    else:
        X, y = task_data(task, spec.pop("n", 120))
        data_task = task
    if sparse:
        X = sp.csr_matrix(np.where(np.abs(X) > 0.6, X, 0.0)).asformat(sparse)
    params = dict(hidden_layer_sizes=(7, 5), max_iter=30, batch_size=32, random_state=1)
    params.update(spec)
    fit_params = {}
    if use_sw:
        fit_params["sample_weight"] = np.random.RandomState(5).uniform(0.1, 3.0, X.shape[0])
    return data_task, X, y, params, fit_params


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_matches_sklearn(name):
    task, X, y, params, fit_params = variant_setup(name)
    if params.get("random_state") == "instance":
        theirs_cls, ours_cls = estimators(task)
        with pytest.warns(ConvergenceWarning):  # 30 epochs, on purpose
            theirs = theirs_cls(**dict(params, random_state=np.random.RandomState(3))).fit(X, y)
        with pytest.warns(ConvergenceWarning):
            ours = ours_cls(**dict(params, random_state=np.random.RandomState(3))).fit(X, y)
    else:
        theirs, ours = fit_both(task, X, y, fit_params, **params)
    assert_same_model(theirs, ours, np.float64, X)
    if params.get("early_stopping"):
        np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=1e-6)
        assert ours.best_validation_score_ == pytest.approx(theirs.best_validation_score_)
        assert ours.best_loss_ is None and theirs.best_loss_ is None
    elif params["solver"] != "lbfgs":
        assert ours.best_loss_ == pytest.approx(theirs.best_loss_, rel=1e-6)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_partial_fit_sequence_matches_sklearn(task, solver):
    X, y = task_data(task)
    theirs_cls, ours_cls = estimators(task)
    params = dict(hidden_layer_sizes=(6,), solver=solver, random_state=0, batch_size=25)
    theirs, ours = theirs_cls(**params), ours_cls(**params)
    extra = {}
    if task in ("binary", "multiclass"):
        extra = {"classes": np.unique(y)}
    elif task == "multilabel":
        extra = {"classes": np.arange(y.shape[1])}
    for start in range(0, 120, 40):
        part = slice(start, start + 40)
        theirs.partial_fit(X[part], y[part], **extra)
        ours.partial_fit(X[part], y[part], **extra)
        extra = {}
    for _ in range(3):
        theirs.partial_fit(X, y)
        ours.partial_fit(X, y)
    assert_same_model(theirs, ours, np.float64, X)


@pytest.mark.parametrize(
    "name", ["sgd-adaptive", "early-stopping-sgd-adaptive", "tol-stops-early", "early-stopping-sgd"]
)
def test_verbose_output_is_sklearns_line_for_line(name, capsys):
    task, X, y, params, fit_params = variant_setup(name)
    theirs, ours = fit_both(task, X, y, fit_params, **dict(params, verbose=True))
    printed = capsys.readouterr().out.splitlines()
    half = len(printed) // 2
    assert printed[:half] == printed[half:]
    assert any("did not improve" in line for line in printed)
    # printing runs one epoch per engine call: the model is the same
    quiet = fit_both(task, X, y, fit_params, **params)[1]
    for a, b in zip(ours.coefs_, quiet.coefs_):
        assert np.array_equal(a, b)


def test_probabilities_match_sklearn():
    X, y = task_data("multiclass")
    theirs, ours = fit_both("multiclass", X, y, hidden_layer_sizes=(8,), random_state=0, max_iter=50)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-9)
    np.testing.assert_allclose(ours.predict_log_proba(X), theirs.predict_log_proba(X), rtol=1e-9)
    assert ours.score(X, y) == theirs.score(X, y)


def _report():
    rows = []
    for dtype in (np.float64, np.float32):
        for task in TASKS:
            for activation in ACTIVATIONS:
                for solver in SOLVERS:
                    X, y = task_data(task)
                    theirs, ours = fit_both(
                        task, X.astype(dtype), y, **base_params(solver, activation, dtype)
                    )
                    rows.append((dtype.__name__, task, activation, solver, max_difference(theirs, ours)))
    for name in sorted(VARIANTS):
        task, X, y, params, fit_params = variant_setup(name)
        if params.get("random_state") == "instance":
            continue
        theirs, ours = fit_both(task, X, y, fit_params, **params)
        rows.append(("float64", name, "", params["solver"], max_difference(theirs, ours)))
    for row in rows:
        print(f"{row[0]:8s} {row[1]:32s} {row[2]:9s} {row[3]:6s} {row[4]:.2e}")


def test_warm_start_after_early_stopping_matches_sklearn():
    """A second warm-started fit that never beats the first fit's best
    validation score ends, in both libraries, with its last epoch's weights."""
    X, y = task_data("binary", n=60)
    params = dict(
        hidden_layer_sizes=(5,), solver="adam", early_stopping=True, warm_start=True,
        max_iter=6, random_state=1, learning_rate_init=0.05, n_iter_no_change=100,
    )
    theirs, ours = fit_both("binary", X, y, **params)
    for model in (theirs, ours):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
    assert_same_model(theirs, ours, np.float64, X)


@pytest.mark.parametrize(
    "change", [dict(momentum=0.1), dict(nesterovs_momentum=False), dict(beta_1=0.5), dict(learning_rate_init=0.5)]
)
def test_partial_fit_keeps_the_first_calls_optimizer_settings(change):
    X, y = task_data("multiclass")
    solver = "adam" if "beta_1" in change else "sgd"
    theirs = sk.MLPClassifier(hidden_layer_sizes=(6,), solver=solver, random_state=0)
    ours = fastmlp.MLPClassifier(hidden_layer_sizes=(6,), solver=solver, random_state=0)
    for model in (theirs, ours):
        model.partial_fit(X, y, classes=np.unique(y))
        model.set_params(**change)
        model.partial_fit(X, y)
        model.partial_fit(X, y)
    assert_same_model(theirs, ours, np.float64, X)


def test_string_parameters_may_be_numpy_strings():
    X, y = task_data("binary")
    theirs, ours = fit_both(
        "binary", X, y, solver=np.str_("sgd"), activation=np.str_("tanh"), max_iter=5,
        random_state=0, learning_rate=np.str_("invscaling"),
    )
    assert_same_model(theirs, ours, np.float64, X)
    Xr, yr = task_data("regression")
    model = fastmlp.MLPRegressor(loss=np.str_("squared_error"), max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(Xr, yr)
    assert model.n_iter_ == 3


def test_lbfgs_convergence_warning_starts_like_sklearns():
    X, y = task_data("multiclass")
    with pytest.warns(ConvergenceWarning, match=r"^lbfgs failed to converge after 3 iteration\(s\)"):
        fastmlp.MLPClassifier(solver="lbfgs", max_iter=3).fit(X, y)


@pytest.mark.parametrize("stop", ["max_iter", "max_fun", "abnormal"])
def test_lbfgs_convergence_warning_has_sklearns_first_lines_then_advice(stop):
    X, y = task_data("regression")
    params = {"max_iter": dict(max_iter=2), "max_fun": dict(max_fun=2),
              "abnormal": dict(max_iter=30)}[stop]
    if stop == "abnormal":
        X = X * 1e300  # the line search fails at once
    messages = []
    for cls in (sk.MLPRegressor, fastmlp.MLPRegressor):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with np.errstate(all="ignore"):
                try:
                    cls(hidden_layer_sizes=(3,), solver="lbfgs", random_state=0, **params).fit(X, y)
                except ValueError:
                    pass
        found = [w for w in caught if w.category is ConvergenceWarning]
        assert len(found) == 1
        messages.append(str(found[0].message))
    assert found[0].filename == __file__  # ours points at the line that called fit
    theirs, ours = (m.split("\n\n") for m in messages)
    assert ours[0] == theirs[0]  # what failed, and scipy's reason
    advice = {"max_iter": "Raise max_iter (now 2)", "max_fun": "Raise max_fun (now 2)",
              "abnormal": "Scaling the data"}[stop]
    assert ours[1].startswith(advice)


@pytest.mark.parametrize("name, value", [
    ("alpha", -1.0), ("momentum", 2.0), ("validation_fraction", 1.0), ("epsilon", 0.0),
    ("learning_rate_init", 0), ("tol", -1), ("max_iter", 0), ("n_iter_no_change", 0),
])
def test_a_number_out_of_range_is_described_as_sklearn_does(name, value):
    X, y = task_data("binary")
    errors = []
    for cls in (sk.MLPClassifier, fastmlp.MLPClassifier):
        with pytest.raises(ValueError) as error:
            cls(**{name: value}).fit(X, y)
        errors.append(str(error.value))
    # "The 'alpha' parameter of MLPClassifier must be a float in the range [0.0, inf)."
    assert errors[1].split(" or ")[0].split(". Got")[0] == errors[0].split(" or ")[0].split(". Got")[0]


def test_a_non_integer_layer_size_is_a_type_error_as_in_sklearn():
    X, y = task_data("binary")
    for cls in (sk.MLPClassifier, fastmlp.MLPClassifier):
        with pytest.raises(TypeError):
            cls(hidden_layer_sizes=(2.5,)).fit(X, y)
    with pytest.raises(ValueError, match=r"hidden_layer_sizes must hold integers, got \[2.5\]"):
        fastmlp.MLPClassifier(hidden_layer_sizes=(2.5,)).fit(X, y)


def long_lbfgs_data(name):
    """(task, X, y, network) of the long L-BFGS fits: digits, and a smooth
    nonlinear regression."""
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        return "multiclass", X / 16, y, dict(hidden_layer_sizes=(64,))
    X, y = make_friedman1(1000, noise=0.5, random_state=0)
    return "regression", X, y, dict(hidden_layer_sizes=(32, 16), activation="tanh")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["digits", "friedman1"])
def test_long_lbfgs_fits_end_as_low_as_sklearns(name):
    """Over hundreds of iterations L-BFGS magnifies rounding differences
    until the weights part (as scikit-learn's own do when the rows are
    reordered), but the two fits descend alike to the same loss. (Either may
    stop some iterations early, when L-BFGS finds the loss no longer falls
    by more than its relative tolerance: where depends on the rounding.)"""
    task, X, y, network = long_lbfgs_data(name)
    theirs, ours = fit_both(task, X, y, solver="lbfgs", max_iter=500, tol=0.0, random_state=0,
                            **network)
    assert theirs.n_iter_ > 300 and ours.n_iter_ > 300
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=0.1)


def _report_long_lbfgs():
    """The largest weight difference of float64 L-BFGS fits run to max_iter
    (tol=0), fastmlp against scikit-learn, and scikit-learn against itself
    on the same rows in another order: the same objective, summed in
    another order, so what is left is rounding."""
    print("data       max_iter  iterations  fastmlp-sklearn  sklearn-reordered  "
          "loss sklearn/fastmlp")
    for name in ("digits", "friedman1"):
        task, X, y, network = long_lbfgs_data(name)
        order = np.random.RandomState(1).permutation(len(X))
        for max_iter in (30, 100, 200, 500, 1000):
            params = dict(solver="lbfgs", max_iter=max_iter, tol=0.0, random_state=0, **network)
            theirs, ours = fit_both(task, X, y, **params)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                reordered = estimators(task)[0](**params).fit(X[order], y[order])
            print(f"{name:10s} {max_iter:8d}  {theirs.n_iter_:4d}/{ours.n_iter_:<4d}  "
                  f"{max_difference(theirs, ours):15.2e}  {max_difference(theirs, reordered):17.2e}"
                  f"  {theirs.loss_:.4g}/{ours.loss_:.4g}")


if __name__ == "__main__":
    import sys

    _report_long_lbfgs() if "--long-lbfgs" in sys.argv[1:] else _report()
