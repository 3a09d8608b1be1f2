"""Every entry point against malformed input: a clear exception naming what
was wrong, or (for unusual but valid arrays) a correct result. The whole
table also runs in a child process, so that a crash of the interpreter
shows up as a failure rather than ending the test run."""

import io
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import fastmlp
from fastmlp import InvalidParameterError, MLPClassifier, MLPRegressor

rng = np.random.RandomState(0)
X = rng.rand(40, 4)
y = np.arange(40) % 3
yr = rng.rand(40)


def fitted_classifier():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(X, y)


def fitted_regressor():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MLPRegressor(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(X, yr)


def corrupt_csc():
    """X as CSC with one row index past the last row: converting it to CSR
    unchecked would write out of bounds."""
    A = sp.csc_matrix(X)
    A.indices[3] = 1000
    return A


def corrupt_coo():
    """X as COO with one row index past the last row (scikit-learn's checks
    would convert it to CSR through scipy, unchecked)."""
    A = sp.coo_matrix(X)
    A.row[3] = 10**6
    return A


def with_nan(a, value=np.nan):
    a = np.array(a, dtype=float)
    a.flat[1] = value
    return a


def entry_points(bad_X):
    """(name, action) for every way X reaches a model."""
    return {
        "fit": lambda: MLPClassifier(max_iter=2).fit(bad_X, y[: len(bad_X)] if np.ndim(bad_X) else y),
        "partial_fit": lambda: MLPClassifier().partial_fit(bad_X, y[: len(bad_X)], classes=[0, 1, 2]),
        "predict": lambda: fitted_classifier().predict(bad_X),
        "predict_proba": lambda: fitted_classifier().predict_proba(bad_X),
        "predict_log_proba": lambda: fitted_classifier().predict_log_proba(bad_X),
        "score": lambda: fitted_classifier().score(bad_X, y[: len(bad_X)]),
        "regressor predict": lambda: fitted_regressor().predict(bad_X),
        "set_params then fit": lambda: fitted_regressor().set_params(alpha=0.1).fit(bad_X, yr[: len(bad_X)]),
    }


BAD_X = {
    "NaN": (with_nan(X), "NaN"),
    "inf": (with_nan(X, np.inf), "infinity"),
    "wrong feature count": (rng.rand(40, 6), "features"),
    "1-D": (X[:, 0], "2D array"),
    "3-D": (X[:, :, None], "dim 3"),
    "empty": (np.empty((0, 4)), "0 sample"),
    "strings": (np.full((40, 4), "x"), "(?i)string"),
    "complex": (X + 1j, "Complex"),
    "objects": (np.array([[object()] * 4] * 40), "float"),
}

CASES = {}
for bad_name, (bad_X, message) in BAD_X.items():
    for entry, action in entry_points(bad_X).items():
        if bad_name == "wrong feature count" and "fit" in entry:
            continue  # a fresh fit learns the feature count
        CASES[f"{entry}: {bad_name} X"] = (action, (ValueError, TypeError), message)

CASES.update(
    {
        "fit: NaN y": (lambda: MLPRegressor().fit(X, with_nan(yr)), ValueError, "NaN"),
        "fit: inf sample_weight": (
            lambda: MLPRegressor().fit(X, yr, sample_weight=with_nan(np.ones(40), np.inf)),
            ValueError,
            "infinity",
        ),
        "partial_fit: NaN sample_weight": (
            lambda: MLPClassifier().partial_fit(X, y, sample_weight=with_nan(np.ones(40)), classes=[0, 1, 2]),
            ValueError,
            "NaN",
        ),
        "fit: zero-length y": (lambda: MLPClassifier().fit(X, []), ValueError, "0 sample"),
        "fit: mismatched lengths": (lambda: MLPClassifier().fit(X, y[:30]), ValueError, "inconsistent"),
        "fit: sample_weight length": (
            lambda: MLPClassifier().fit(X, y, sample_weight=np.ones(3)),
            ValueError,
            "sample_weight",
        ),
        "fit: continuous y for a classifier": (lambda: MLPClassifier().fit(X, yr), ValueError, "label type"),
        "fit: string y for a regressor": (
            lambda: MLPRegressor().fit(X, np.array(["a"] * 40)),
            ValueError,
            "convert",
        ),
        "partial_fit: unseen labels": (
            lambda: MLPClassifier().partial_fit(X, y, classes=[0, 1, 2]).partial_fit(X, y + 5),
            ValueError,
            "classes not in",
        ),
        "partial_fit: no classes": (lambda: MLPClassifier().partial_fit(X, y), ValueError, "classes must be"),
        "predict: not fitted": (lambda: MLPClassifier().predict(X), NotFittedError, "not fitted"),
        "score: wrong y length": (lambda: fitted_classifier().score(X, y[:5]), ValueError, "inconsistent"),
        "load: not a model": (lambda: fastmlp.load(io.BytesIO(b"junk")), ValueError, "not a fastmlp model"),
        "load: missing file": (lambda: fastmlp.load("/nonexistent/model.npz"), FileNotFoundError, "model.npz"),
        "fit: a layer too wide to allocate": (
            lambda: MLPClassifier(hidden_layer_sizes=(10**13,)).fit(X, y),
            MemoryError,
            "",
        ),
        "fit: X_val without y_val": (lambda: MLPClassifier().fit(X, y, X_val=X), ValueError, "go together"),
        "fit: NaN X_val": (lambda: MLPClassifier().fit(X, y, X_val=with_nan(X), y_val=y), ValueError, "NaN"),
        "fit: X_val feature count": (
            lambda: MLPClassifier().fit(X, y, X_val=rng.rand(40, 6), y_val=y),
            ValueError,
            "features",
        ),
        "fit: X_val and y_val lengths": (
            lambda: MLPRegressor().fit(X, yr, X_val=X, y_val=yr[:9]),
            ValueError,
            "X_val has 40 samples but y_val has 9",
        ),
        "fit: y_val classes": (
            lambda: MLPClassifier().fit(X, y, X_val=X, y_val=y + 7),
            ValueError,
            "y_val has classes not in",
        ),
        "fit: NaN y_val": (lambda: MLPRegressor().fit(X, yr, X_val=X, y_val=with_nan(yr)), ValueError, "y_val"),
        "fit: y_val target count": (
            lambda: MLPRegressor().fit(X, yr, X_val=X, y_val=np.ones((40, 2))),
            ValueError,
            "y_val has 2 targets",
        ),
        "fit: negative poisson y_val": (
            lambda: MLPRegressor(loss="poisson").fit(X, yr, X_val=X, y_val=-yr),
            ValueError,
            "non-negative targets y_val",
        ),
        "predict: CSC with a row index out of range": (
            lambda: fitted_regressor().predict(corrupt_csc()),
            ValueError,
            "malformed CSC matrix",
        ),
        "fit: CSC with a row index out of range": (
            lambda: MLPRegressor(max_iter=2).fit(corrupt_csc(), yr),
            ValueError,
            "malformed CSC matrix",
        ),
        "predict: COO with a row index out of range": (
            lambda: fitted_regressor().predict(corrupt_coo()),
            ValueError,
            "malformed COO matrix: row index",
        ),
        "partial_fit: COO with a row index out of range": (
            lambda: MLPRegressor().partial_fit(corrupt_coo(), yr),
            ValueError,
            "malformed COO matrix: row index",
        ),
        "fit: COO X_val with a row index out of range": (
            lambda: MLPRegressor(max_iter=2).fit(X, yr, X_val=corrupt_coo(), y_val=yr),
            ValueError,
            "malformed COO matrix: row index",
        ),
        "fit: X_val with lbfgs": (
            lambda: MLPRegressor(solver="lbfgs").fit(X, yr, X_val=X, y_val=yr),
            ValueError,
            "X_val needs a stochastic solver",
        ),
    }
)

INVALID_PARAMETERS = {
    "hidden_layer_sizes": [(3, 0), (-2,), "abc", (2.5,), (np.inf,), (np.nan,)],
    "activation": ["swish", None, ("relu", "bogus")],
    "solver": ["newton"],
    "alpha": [-1.0, np.nan, "x", np.inf],
    "batch_size": [0, -3, "big"],
    "learning_rate": ["cosine"],
    "learning_rate_init": [0.0, -1.0, np.inf, 10**400],
    "power_t": [-0.5, np.inf],
    "max_iter": [0, 2.5],
    "tol": [-1.0, np.inf],
    "momentum": [1.5, -0.1],
    "validation_fraction": [1.0, -0.2],
    "beta_1": [1.0],
    "beta_2": [-0.1],
    "epsilon": [0.0, np.inf],
    "n_iter_no_change": [0],
    "max_fun": [0],
    "n_threads": [0, 10**6],
    "random_state": ["seed"],
    "shuffle": ["yes"],
}
for name, values in INVALID_PARAMETERS.items():
    for value in values:
        for cls in (MLPClassifier, MLPRegressor):
            CASES[f"{cls.__name__}({name}={value!r})"] = (
                lambda cls=cls, name=name, value=value: cls(**{name: value}).fit(X, yr if cls is MLPRegressor else y),
                (ValueError, TypeError),
                name,
            )


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_raises_a_clear_error(case):
    action, error, message = CASES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(error, match=message):
            action()


def test_a_csc_matrix_is_checked_without_being_changed():
    """Entries past the last column's end are not part of the matrix: they
    are neither read nor pruned from the caller's arrays."""
    A = sp.csc_matrix(X)
    A.indices = np.concatenate([A.indices, [1000, -5]])
    A.data = np.concatenate([A.data, [9.0, 9.0]])
    arrays = (A.indices, A.indptr, A.data)
    model = fitted_regressor()
    np.testing.assert_array_equal(model.predict(A), model.predict(X))
    assert all(a is b for a, b in zip(arrays, (A.indices, A.indptr, A.data)))
    assert A.indices.size == A.data.size == A.indptr[-1] + 2


def test_the_table_covers_every_entry_point_and_many_cases():
    assert len(CASES) >= 150
    for entry in ("fit", "partial_fit", "predict", "predict_proba", "score", "set_params", "load"):
        assert any(name.startswith(entry) for name in CASES)


def test_the_table_cannot_crash_the_interpreter():
    """Run every case in one child process: a segfault or abort there fails
    this test instead of killing the test run."""
    code = (
        "import sys, warnings\n"
        f"sys.path.insert(0, {str(__import__('pathlib').Path(__file__).parent)!r})\n"
        "warnings.simplefilter('ignore')\n"
        "import test_bad_input as t\n"
        "for name in sorted(t.CASES):\n"
        "    action, error, message = t.CASES[name]\n"
        "    try:\n"
        "        action()\n"
        "    except error:\n"
        "        continue\n"
        "    print('NO ERROR:', name)\n"
        "print('all cases ran')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("all cases ran"), result.stdout
    assert "NO ERROR" not in result.stdout


def unusual_arrays():
    """Valid inputs in unusual layouts: each must give the plain array's result."""
    fortran = np.asfortranarray(X)
    readonly = X.copy()
    readonly.setflags(write=False)
    strided = np.repeat(X, 2, axis=1)[:, ::2]
    return {
        "Fortran order": fortran,
        "read-only": readonly,
        "non-contiguous": strided,
        "list": X.tolist(),
        "float32 view of float64": X.astype(np.float32).astype(np.float64),
        "int": (X * 10).astype(int),
        "bool": X > 0.5,
    }


@pytest.mark.parametrize("kind", sorted(unusual_arrays()))
def test_unusual_but_valid_arrays_work(kind):
    data = unusual_arrays()[kind]
    expected = np.asarray(data, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(data, y)
        b = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(expected, y)
    for u, v in zip(a.coefs_, b.coefs_):
        np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(a.predict_proba(data), b.predict_proba(expected))


def test_memory_mapped_arrays_work(tmp_path):
    path = tmp_path / "X.dat"
    mapped = np.memmap(path, dtype=np.float64, mode="w+", shape=X.shape)
    mapped[:] = X
    mapped.flush()
    readonly = np.memmap(path, dtype=np.float64, mode="r", shape=X.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(readonly, yr)
    np.testing.assert_array_equal(model.predict(readonly), model.predict(X))


def test_a_single_sample_and_a_single_class_fit():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = MLPRegressor(hidden_layer_sizes=(3,), max_iter=3).fit(X[:1], yr[:1])
        single_class = MLPClassifier(hidden_layer_sizes=(3,), max_iter=3).fit(X, np.zeros(40, int))
    assert one.predict(X[:2]).shape == (2,)
    assert set(single_class.predict(X)) == {0}


# Bad calls on a fitted model, each of which must leave it as it was.
X32 = X.astype(np.float32)
LOSES_NOTHING = {
    "fit: NaN X": lambda m, t: m.fit(with_nan(X), t),
    "fit: invalid parameter": lambda m, t: m.set_params(alpha=-1.0).fit(X, t),
    "warm start: wrong feature count": lambda m, t: m.set_params(warm_start=True).fit(
        rng.rand(40, 6), t
    ),
    "warm start: NaN y_val": lambda m, t: m.set_params(warm_start=True).fit(
        X, t, X_val=X, y_val=with_nan(t)
    ),
    # float32 data moves the optimizer's state to float32 before X_val fails
    "warm start in float32: NaN X_val": lambda m, t: m.set_params(warm_start=True).fit(
        X32, t, X_val=with_nan(X32), y_val=t
    ),
    "partial_fit: wrong feature count": lambda m, t: m.partial_fit(rng.rand(40, 6), t),
    "partial_fit: NaN sample_weight": lambda m, t: m.partial_fit(
        X, t, sample_weight=with_nan(np.ones(40))
    ),
    "fit: X_val with lbfgs": lambda m, t: m.set_params(solver="lbfgs").fit(X, t, X_val=X, y_val=t),
}


@pytest.mark.parametrize("estimator", ["classifier", "regressor"])
@pytest.mark.parametrize("case", sorted(LOSES_NOTHING))
def test_a_failed_call_leaves_a_fitted_model_as_it_was(estimator, case):
    model = fitted_classifier() if estimator == "classifier" else fitted_regressor()
    targets = y if estimator == "classifier" else yr
    params = model.get_params()
    before = pickle.dumps(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises((ValueError, TypeError)):
            LOSES_NOTHING[case](model, targets)
    model.set_params(**params)
    assert pickle.dumps(model) == before
    # and it trains on exactly as an untouched copy does
    untouched = pickle.loads(before)
    model.partial_fit(X, targets)
    untouched.partial_fit(X, targets)
    for a, b in zip(model.coefs_ + model.intercepts_, untouched.coefs_ + untouched.intercepts_):
        np.testing.assert_array_equal(a, b)


def test_a_failed_first_partial_fit_sets_no_classes():
    model = MLPClassifier(hidden_layer_sizes=(4,))
    with pytest.raises(ValueError, match="NaN"):
        model.partial_fit(with_nan(X), y, classes=[0, 1, 2])
    assert "classes_" not in model.__dict__
    with pytest.raises(ValueError, match="classes must be passed"):
        model.partial_fit(X, y)
    model.partial_fit(X, y, classes=[0, 1, 2, 3])  # other classes are still welcome
    assert list(model.classes_) == [0, 1, 2, 3]


def test_pickling_leaves_the_model_as_it_was():
    model = fitted_classifier()
    params = model._params
    pickle.dumps(model)
    assert model.__dict__["_params"] is params
    assert np.shares_memory(model.coefs_[0], params)
