"""Estimator behaviour beyond the numbers: attributes, dtypes, sparse input,
pickling, the parameter buffer behind coefs_, messages and warnings."""

import copy
import io
import pickle
import subprocess
import sys
import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
import sklearn.neural_network as sk
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import fastmlp
from fastmlp import MLPClassifier, MLPRegressor, _engine

X, y = make_classification(200, 8, n_informative=5, n_classes=3, random_state=0)
Xr, yr = make_regression(200, 8, n_targets=2, random_state=0)


def quiet(model, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(*args, **kwargs)


def fitted_attributes(model):
    return sorted(k for k in vars(model) if k.endswith("_") and not k.startswith("_"))


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_fitted_attributes_are_sklearns(solver, early_stopping):
    params = dict(hidden_layer_sizes=(5,), solver=solver, max_iter=5, early_stopping=early_stopping)
    for ours_cls, theirs_cls, data in [
        (MLPClassifier, sk.MLPClassifier, (X, y)),
        (MLPRegressor, sk.MLPRegressor, (Xr, yr)),
    ]:
        ours, theirs = quiet(ours_cls(**params), *data), quiet(theirs_cls(**params), *data)
        # a validation set (early stopping's) adds its loss curve, documented
        added = set()
        if early_stopping and solver != "lbfgs":
            added = {"validation_loss_curve_", "best_validation_loss_"}
        assert set(fitted_attributes(ours)) == set(fitted_attributes(theirs)) | added
        for name in fitted_attributes(theirs):
            if name in ("coefs_", "intercepts_", "classes_"):
                continue
            assert type(getattr(ours, name)) is type(getattr(theirs, name)), name


def test_constructor_parameters_are_sklearns_plus_documented_additions():
    common = {
        "n_threads", "dropout", "weight_init", "coefs_init", "intercepts_init",
        "early_stopping_metric", "callbacks", "clip_grad_norm",
    }
    for ours, theirs, added in [
        (MLPClassifier(), sk.MLPClassifier(), common | {"class_weight"}),
        (MLPRegressor(), sk.MLPRegressor(), common | {"out_activation"}),
    ]:
        ours_params, theirs_params = ours.get_params(), theirs.get_params()
        assert set(ours_params) == set(theirs_params) | added
        for name, value in theirs_params.items():
            assert ours_params[name] == value, name
    assert MLPClassifier().loss == "log_loss"


def test_float32_is_kept_end_to_end():
    X32 = X.astype(np.float32)
    for solver in ("adam", "lbfgs"):
        model = quiet(MLPClassifier(hidden_layer_sizes=(6,), solver=solver, max_iter=5), X32, y)
        assert all(c.dtype == np.float32 for c in model.coefs_ + model.intercepts_)
        assert model.predict_proba(X32).dtype == np.float32
        assert model.predict_proba(X).dtype == np.float64
        np.testing.assert_allclose(model.predict_proba(X32), model.predict_proba(X32.astype(float)), rtol=1e-5)


@pytest.mark.parametrize("how", ["partial_fit", "warm_start"])
def test_training_on_after_the_hidden_sizes_changed_is_an_error(how):
    """A fitted model trained on with other hidden_layer_sizes raises a
    ValueError naming both sets of widths, and keeps its weights."""
    model = MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0,
                          warm_start=how == "warm_start")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    before = [w.copy() for w in model.coefs_ + model.intercepts_]
    model.set_params(hidden_layer_sizes=(7,))
    widths = r"widths \[%d, 5, %d\], but .* call for \[%d, 7, %d\]" % (
        (X.shape[1], len(model.classes_)) * 2)
    with pytest.raises(ValueError, match=widths):
        model.partial_fit(X, y) if how == "partial_fit" else model.fit(X, y)
    assert all(np.array_equal(a, b) for a, b in zip(model.coefs_ + model.intercepts_, before))


@pytest.mark.parametrize("how", ["partial_fit", "warm_start"])
@pytest.mark.parametrize("first, then", [(np.float64, np.float32), (np.float32, np.float64)])
def test_a_fitted_model_trained_on_keeps_its_weights_dtype(how, first, then):
    """partial_fit and warm starts train on in the weights' dtype whatever
    X's, as scikit-learn's keep theirs; a float64 model continued on float32
    X is then trained in float64, to scikit-learn's weights."""
    def continued(cls):
        model = cls(hidden_layer_sizes=(5,), max_iter=5, random_state=0,
                    warm_start=how == "warm_start")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(Xr.astype(first), yr)
            if how == "partial_fit":
                model.partial_fit(Xr.astype(then), yr)
            else:
                model.fit(Xr.astype(then), yr)
        return model

    ours, theirs = continued(MLPRegressor), continued(sk.MLPRegressor)
    assert [c.dtype for c in ours.coefs_ + ours.intercepts_] == [
        c.dtype for c in theirs.coefs_ + theirs.intercepts_] == [np.dtype(first)] * 4
    if first == np.float64:
        for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_input_trains_like_dense(fmt):
    dense = np.where(np.abs(X) > 0.5, X, 0.0)
    params = dict(hidden_layer_sizes=(7,), max_iter=10, random_state=0)
    a = quiet(MLPClassifier(**params), dense, y)
    b = quiet(MLPClassifier(**params), sp.csr_matrix(dense).asformat(fmt), y)
    for u, v in zip(a.coefs_, b.coefs_):
        np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(b.predict_proba(sp.csr_matrix(dense).asformat(fmt)), a.predict_proba(dense), rtol=1e-12)


def test_coefs_are_views_into_one_buffer_and_assignment_is_taken_up():
    model = quiet(MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, random_state=0), Xr, yr)
    before = model.predict(Xr[:3])
    model.coefs_[1][:] = 0.0
    np.testing.assert_allclose(model.predict(Xr[:3]), np.broadcast_to(model.intercepts_[1], (3, 2)))
    model.coefs_ = [np.ones((8, 4)), np.full((4, 2), 0.5)]
    model.intercepts_ = [np.zeros(4), np.zeros(2)]
    expected = np.maximum(Xr[:3] @ np.ones((8, 4)), 0) @ np.full((4, 2), 0.5)
    np.testing.assert_allclose(model.predict(Xr[:3]), expected, rtol=1e-12)
    assert not np.allclose(before, expected)
    # after a prediction the assigned arrays are views into the engine's buffer again
    model.coefs_[0][0, 0] = 2.0
    assert model.predict(Xr[:1])[0, 0] != expected[0, 0]


def test_assigning_starting_weights_before_any_fit():
    coefs = [np.full((8, 3), 0.1), np.full((3, 2), -0.2)]
    intercepts = [np.zeros(3), np.zeros(2)]
    model = MLPRegressor(hidden_layer_sizes=(3,), warm_start=True, max_iter=1, solver="sgd", shuffle=False)
    model.coefs_, model.intercepts_ = [c.copy() for c in coefs], [b.copy() for b in intercepts]
    quiet(model, Xr, yr)
    reference = quiet(
        sk.MLPRegressor(hidden_layer_sizes=(3,), warm_start=True, max_iter=1, solver="sgd", shuffle=False),
        Xr,
        yr,
    )
    reference.coefs_, reference.intercepts_ = [c.copy() for c in coefs], [b.copy() for b in intercepts]
    quiet(reference, Xr, yr)
    for a, b in zip(model.coefs_, reference.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_the_optimizer_state_starts_on_a_cache_line_however_the_model_was_made(solver):
    """numpy often starts an array 16 bytes past a 32-byte boundary, and the
    optimizer step ran at half speed or less with its state there."""
    def starts_on_a_line(model):
        return model._optimizer.state.ctypes.data % _engine.LINE == 0

    settings = dict(hidden_layer_sizes=(7,), max_iter=2, solver=solver, random_state=0)
    model = quiet(MLPRegressor(**settings), Xr.astype(np.float32), yr)
    saved = io.BytesIO()
    model.save(saved)
    saved.seek(0)
    made = [model, pickle.loads(pickle.dumps(model)), copy.deepcopy(model),
            fastmlp.load(saved),
            fastmlp.from_sklearn(quiet(sk.MLPRegressor(**settings), Xr, yr))]
    assert all(starts_on_a_line(m) for m in made)
    for m in made:
        m.partial_fit(Xr, yr)
        assert starts_on_a_line(m)
    optimizer = model._optimizer
    # a fit's undo record copies the optimizer but shares its state
    assert copy.copy(optimizer).state is optimizer.state
    # a state unpickled off a line is moved onto one
    off = np.empty(optimizer.state.nbytes + 2 * _engine.LINE, np.uint8)
    skip = (-off.ctypes.data) % _engine.LINE + 4
    off = off[skip : skip + optimizer.state.nbytes].view(optimizer.state.dtype)
    off[...] = optimizer.state
    moved = copy.copy(optimizer)
    moved.__setstate__({**optimizer.__dict__, "state": off})
    assert moved.state.ctypes.data % _engine.LINE == 0
    np.testing.assert_array_equal(moved.state, optimizer.state)
    before = optimizer.state.copy()
    optimizer.astype(np.float64)
    assert optimizer.state.dtype == np.float64 and starts_on_a_line(model)
    np.testing.assert_array_equal(optimizer.state, before)


def test_aligned_empty_starts_on_a_line_and_refuses_negative_sizes():
    for n in (0, 1, 7, 1000):
        for dtype in (np.float32, np.float64, np.int64):
            a = _engine.aligned_empty(n, dtype)
            assert a.shape == (n,) and a.dtype == dtype and a.flags.c_contiguous
            assert n == 0 or a.ctypes.data % _engine.LINE == 0
    with pytest.raises(ValueError, match="at least 0"):
        _engine.aligned_empty(-1, np.float64)


@pytest.mark.parametrize("dump", ["pickle", "joblib"])
def test_pickle_round_trip_predicts_the_same_and_keeps_training(dump):
    model = MLPClassifier(hidden_layer_sizes=(6,), random_state=0)
    model.partial_fit(X, y, classes=np.unique(y))
    if dump == "pickle":
        copy = pickle.loads(pickle.dumps(model))
    else:
        buffer = io.BytesIO()
        joblib.dump(model, buffer)
        buffer.seek(0)
        copy = joblib.load(buffer)
    np.testing.assert_array_equal(copy.predict_proba(X), model.predict_proba(X))
    model.partial_fit(X, y)
    copy.partial_fit(X, y)
    for a, b in zip(model.coefs_, copy.coefs_):
        np.testing.assert_array_equal(a, b)


def test_pickle_holds_state_not_workspaces():
    model = quiet(MLPClassifier(hidden_layer_sizes=(50,), max_iter=2, solver="sgd"), X, y)
    n_params = sum(c.size for c in model.coefs_ + model.intercepts_)
    state = pickle.dumps(model)
    # weights, best weights and velocity: three copies of the parameters
    assert len(state) < 3 * 8 * n_params + 20000
    assert "_params" not in model.__getstate__()
    # rebuilt on loading: the weights are views of one buffer again
    loaded = pickle.loads(state)
    assert all(a.base is loaded._params for a in loaded.coefs_ + loaded.intercepts_)


def test_verbose_prints_sklearns_lines(capsys):
    quiet(MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, verbose=True), X, y)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("Iteration 1, loss = ")
    quiet(MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, verbose=True, early_stopping=True), X, y)
    assert "Validation score: " in capsys.readouterr().out


@pytest.mark.parametrize("verbose", [True, 2, 10])
@pytest.mark.parametrize("tqdm_installed", [False, True])
def test_any_verbose_prints_sklearns_lines_with_or_without_tqdm(verbose, tqdm_installed, capsys,
                                                                  monkeypatch):
    if tqdm_installed:
        pytest.importorskip("tqdm")
    else:
        monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now fails
    for early_stopping in (False, True):
        params = dict(hidden_layer_sizes=(4,), tol=10.0, n_iter_no_change=2, random_state=0,
                      early_stopping=early_stopping, verbose=verbose)
        sk.MLPClassifier(**params).fit(X, y)
        theirs = capsys.readouterr().out
        MLPClassifier(**params).fit(X, y)
        ours = capsys.readouterr().out
        # capsys is not a terminal: nothing may replace the lines there
        assert ours == theirs
        assert "did not improve more than tol=10.000000" in ours


def test_stopping_messages_and_convergence_warning(capsys):
    with pytest.warns(ConvergenceWarning, match="Maximum iterations \\(4\\) reached"):
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=4).fit(X, y)
    model = MLPClassifier(hidden_layer_sizes=(4,), tol=10.0, n_iter_no_change=2, verbose=True).fit(X, y)
    # the first epoch sets the best loss; n_iter_no_change + 1 epochs later it stops
    assert model.n_iter_ == 4
    assert "Training loss did not improve more than tol=10.000000 for 2 consecutive epochs. Stopping." in (
        capsys.readouterr().out
    )


def test_diverging_fit_raises_instead_of_keeping_nan_weights():
    big = Xr * 1e150
    with pytest.raises(ValueError, match="non-finite parameter weights"):
        quiet(MLPRegressor(hidden_layer_sizes=(4,), solver="sgd", max_iter=3), big, yr)


HUGE = np.finfo(np.float64).max * np.random.RandomState(0).uniform(size=(10, 2))
HUGE_Y = np.random.RandomState(0).standard_normal(10)


def public_state(model):
    return {k: v for k, v in vars(model).items() if not k.startswith("_")}


def assert_same_state(before, after):
    assert before.keys() == after.keys()
    for name, value in before.items():
        if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
            for a, b in zip(value, after[name]):
                np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_array_equal(np.asarray(value, dtype=object),
                                          np.asarray(after[name], dtype=object))


@pytest.mark.parametrize("verbose", [False, True])
def test_a_first_epoch_that_diverges_raises_sklearns_error_and_changes_nothing(verbose):
    message = ("^Solver produced non-finite parameter weights. The input data may contain large "
               "values and need to be preprocessed.")
    model = MLPRegressor(verbose=verbose)
    with pytest.raises(ValueError, match=message):
        model.fit(HUGE, HUGE_Y)
    assert public_state(model) == public_state(MLPRegressor(verbose=verbose))  # still unfitted
    # a fitted model keeps its fit, whether refitted, warm-started or partially fitted
    small = np.random.RandomState(1).uniform(size=(10, 2))
    for method, params in [("fit", {}), ("fit", {"warm_start": True}), ("partial_fit", {})]:
        model = quiet(MLPRegressor(hidden_layer_sizes=(3,), max_iter=5, random_state=0,
                                   verbose=verbose, **params), small, HUGE_Y)
        before = copy.deepcopy(public_state(model))
        with pytest.raises(ValueError, match=message):
            getattr(model, method)(HUGE, HUGE_Y)
        assert_same_state(before, public_state(model))
        np.testing.assert_array_equal(model.predict(small), quiet(
            MLPRegressor(hidden_layer_sizes=(3,), max_iter=5, random_state=0), small, HUGE_Y
        ).predict(small))


def test_divergence_with_early_stopping_ends_with_the_best_weights_as_sklearn_does():
    X, y = make_regression(300, 5, noise=1, random_state=2)
    params = dict(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=0.01,
                  early_stopping=True, random_state=0, max_iter=50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn's overflows and its max_iter warning
        theirs = sk.MLPRegressor(**params).fit(X, y)
    diverged = int(np.argmin(np.isfinite(theirs.loss_curve_)))  # epochs before the first NaN
    assert 1 < diverged < 50
    best = int(np.argmax(theirs.validation_scores_[:diverged])) + 1
    with pytest.warns(ConvergenceWarning, match=f"epoch {diverged + 1}, whose loss.* epoch {best}, the best"):
        ours = MLPRegressor(**params).fit(X, y)
    assert ours.n_iter_ == diverged
    # rounding differences grow with the loss as it blows up
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_[:diverged], rtol=1e-6)
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_[:diverged],
                               rtol=1e-6)
    assert ours.best_validation_score_ == pytest.approx(theirs.best_validation_score_, rel=1e-12)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    # without early stopping the same fit raises, keeping the last finite epoch
    with pytest.raises(ValueError, match="non-finite parameter weights"):
        MLPRegressor(**dict(params, early_stopping=False)).fit(X, y)


def test_multilabel_and_multioutput_shapes():
    Y = np.stack([y == 0, y == 1], axis=1).astype(int)
    clf = quiet(MLPClassifier(hidden_layer_sizes=(5,), max_iter=5), X, Y)
    assert clf.predict(X).shape == (200, 2)
    assert clf.predict_proba(X).shape == (200, 2)
    reg = quiet(MLPRegressor(hidden_layer_sizes=(5,), max_iter=5), Xr, yr)
    assert reg.predict(Xr).shape == (200, 2)
    reg1 = quiet(MLPRegressor(hidden_layer_sizes=(5,), max_iter=5), Xr, yr[:, 0])
    assert reg1.predict(Xr).shape == (200,)


def test_works_inside_pipeline_grid_search_and_cross_validation():
    pipe = make_pipeline(
        StandardScaler(),
        MLPClassifier(hidden_layer_sizes=(8,), max_iter=100, learning_rate_init=0.01, random_state=0),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(pipe, X, y, cv=3)
        search = GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1e-2]}, cv=2).fit(X, y)
    assert scores.mean() > 0.5
    assert search.best_params_["mlpclassifier__alpha"] in (1e-4, 1e-2)
    cloned = clone(MLPRegressor(out_activation="tanh", n_threads=2))
    assert cloned.get_params()["out_activation"] == "tanh"


def test_feature_names_are_recorded():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(8)])
    model = quiet(MLPClassifier(hidden_layer_sizes=(3,), max_iter=2), frame, y)
    assert list(model.feature_names_in_) == list(frame.columns)
    assert model.n_features_in_ == 8


@pytest.mark.slow
def test_demo_command_runs():
    result = subprocess.run(
        [sys.executable, "-m", "fastmlp", "demo"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert "0.394148" in result.stdout and "0.105522" in result.stdout
    assert "hidden layer (2,): 4/4 points right" in result.stdout
    assert "test accuracy" in result.stdout
    assert "fits 3 times, in turns; the times are medians" in result.stdout
    assert "x faster (median " in result.stdout


def test_fast_prediction_path_gives_the_general_paths_results():
    model = quiet(MLPClassifier(hidden_layer_sizes=(7,), max_iter=5, random_state=0), X, y)
    fast = model.predict_proba(X)  # a C-ordered float64 array: the fast path
    general = model.predict_proba(X.tolist())  # a list: full validation
    np.testing.assert_array_equal(fast, general)
    np.testing.assert_array_equal(model.predict_proba(np.asfortranarray(X)), general)
    # other byte orders and unaligned buffers take the general path's copy
    np.testing.assert_array_equal(model.predict_proba(X.astype(X.dtype.newbyteorder())), general)
    raw = np.zeros(X.nbytes + 1, dtype=np.uint8)
    unaligned = np.frombuffer(raw.data, dtype=X.dtype, count=X.size, offset=1).reshape(X.shape)
    unaligned[...] = X
    assert not unaligned.flags.aligned
    np.testing.assert_array_equal(model.predict_proba(unaligned), general)
    with pytest.raises(ValueError, match="NaN"):
        model.predict(np.where(X > 2, np.nan, X))
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :5])
    # weights written in place, or assigned anew, are seen by the next call
    model.coefs_[1][:] = 0
    np.testing.assert_allclose(model.predict_proba(X[:2]).std(axis=0), 0, atol=1e-12)
    model.coefs_ = [np.ones((8, 7)), np.ones((7, 3))]
    model.intercepts_ = [np.zeros(7), np.zeros(3)]
    rows = model.predict_proba(X[:4])
    np.testing.assert_allclose(rows, 1 / 3)


def test_a_list_of_activations_changed_in_place_is_seen_by_the_fast_path():
    model = quiet(MLPClassifier(hidden_layer_sizes=(6, 5), activation=["relu", "tanh"],
                                max_iter=5, random_state=0), X, y)
    before = model.predict_proba(X)  # builds the fast path's predictor
    model.activation[1] = "logistic"
    after = model.predict_proba(X)
    assert not np.array_equal(after, before)
    np.testing.assert_array_equal(after, model.predict_proba(np.asfortranarray(X)))


def test_a_max_iter_beyond_memory_trains_until_tol_stops_it():
    """max_iter only bounds the epochs: 10**12 or 2**63 cost no memory, and
    a fit that runs longer than one engine call's share of epochs ends as
    one whose epochs each go through Python (a callback forces that)."""
    Xs, ys = X[:30], y[:30]
    reference = quiet(MLPClassifier(hidden_layer_sizes=(3,), max_iter=10**5, random_state=0), Xs, ys)
    assert reference.n_iter_ < 10**5
    for max_iter in (10**12, 2**63):
        model = quiet(MLPClassifier(hidden_layer_sizes=(3,), max_iter=max_iter, random_state=0), Xs, ys)
        assert model.n_iter_ == reference.n_iter_
        np.testing.assert_array_equal(model.coefs_[0], reference.coefs_[0])
    params = dict(hidden_layer_sizes=(2,), solver="sgd", tol=0, n_iter_no_change=np.inf,
                  max_iter=10_500, random_state=0)
    at_once = quiet(MLPRegressor(**params), X[:4], X[:4, 0])
    each = quiet(MLPRegressor(**params, callbacks=[lambda model, record: None]), X[:4], X[:4, 0])
    assert at_once.n_iter_ == each.n_iter_ == 10_500
    assert at_once.loss_curve_ == each.loss_curve_
    for a, b in zip(at_once.coefs_ + at_once.intercepts_, each.coefs_ + each.intercepts_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_fast_path_matches_the_general_path_and_checks_every_chunk(dtype):
    yb = (y == 0).astype(int)
    Xd = X.astype(dtype)
    model = quiet(MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0), Xd, yb)
    fast = model.predict_proba(Xd)
    general = model.predict_proba(np.asfortranarray(Xd))  # not C-ordered: the general path
    assert fast.dtype == dtype and fast.shape == (len(X), 2)
    np.testing.assert_array_equal(fast, general)
    p = model._forward_pass_fast(Xd)[:, 0]
    np.testing.assert_array_equal(fast, np.column_stack([1 - p, p]))
    # a NaN in a row far past the first chunk the engine checks
    big = np.tile(Xd, (10, 1))
    big[1500, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.predict_proba(big)
    # replacing one array of the list is seen too
    model.coefs_[1] = np.zeros_like(model.coefs_[1])
    np.testing.assert_array_equal(model.predict_proba(Xd[:3]), model.predict_proba(Xd[3:6]))


def test_binary_probabilities_have_two_columns_summing_to_one():
    yb = (y == 0).astype(int)
    model = quiet(MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0), X, yb)
    proba = model.predict_proba(X)
    assert proba.shape == (200, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-12)
    np.testing.assert_array_equal(model.predict(X), (proba[:, 1] > 0.5).astype(int))
