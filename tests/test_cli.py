"""The `fastmlp` command, run end to end through the installed entry point."""

import csv
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris, make_regression
from sklearn.exceptions import ConvergenceWarning

import fastmlp

# The console script pip installs next to the interpreter.
COMMAND = shutil.which("fastmlp", path=str(Path(sys.executable).parent)) or shutil.which("fastmlp")


def run(*args, env=None, cwd=None):
    assert COMMAND, "the fastmlp command is not installed (pip install .)"
    return subprocess.run([COMMAND, *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env, cwd=cwd)


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def one_line_error(result):
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastmlp: error: "), result.stderr
    return lines[0]


IRIS = load_iris()
IRIS_COLUMNS = ["species", "sepal_length", "sepal_width", "petal_length", "petal_width"]
IRIS_PARAMS = dict(hidden_layer_sizes=(8,), max_iter=300, random_state=0, solver="lbfgs")


@pytest.fixture
def iris_csv(tmp_path):
    # the target first: the features are the other columns, whatever their place
    path = tmp_path / "iris.csv"
    write_csv(path, IRIS_COLUMNS, [[t, *x] for x, t in zip(IRIS.data, IRIS.target)])
    return path


def test_no_arguments_print_the_help_and_the_usage_names_the_command():
    result = run()
    assert result.returncode == 0
    assert result.stdout.startswith("usage: fastmlp ")
    for command in ("demo", "train", "predict", "info"):
        assert command in result.stdout
    as_module = subprocess.run([sys.executable, "-m", "fastmlp", "--help"], capture_output=True,
                               text=True, timeout=60)
    assert as_module.stdout.startswith("usage: python -m fastmlp ")


def test_version():
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"fastmlp {fastmlp.__version__}"


def test_demo_plot_without_matplotlib_names_the_extra_before_running(tmp_path):
    # a matplotlib that cannot be imported, ahead of the real one
    (tmp_path / "hide" / "matplotlib").mkdir(parents=True)
    (tmp_path / "hide" / "matplotlib" / "__init__.py").write_text(
        "raise ImportError('matplotlib is hidden by the test')\n"
    )
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "hide"))
    result = run("demo", "--plot", tmp_path / "pictures", env=env)
    assert result.returncode == 2
    assert "pip install 'fastmlp[plot]'" in result.stderr
    assert result.stdout == ""  # the demo did not start
    assert not (tmp_path / "pictures").exists()


@pytest.mark.slow
def test_train_predict_and_info_on_csv(iris_csv, tmp_path):
    model_path = tmp_path / "iris.npz"
    result = run("train", iris_csv, "--target", "species", "--param", "hidden_layer_sizes=8",
                 "max_iter=300", "random_state=0", "--param", "solver=lbfgs", "-o", model_path)
    assert result.returncode == 0, result.stderr
    assert "MLPClassifier" in result.stdout and "150 rows" in result.stdout
    assert str(model_path) in result.stdout

    # the same model as in Python, with the features named by the header
    model = fastmlp.load(model_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        expected = fastmlp.MLPClassifier(**IRIS_PARAMS).fit(IRIS.data, IRIS.target)
    assert list(model.feature_names_in_) == IRIS_COLUMNS[1:]
    for a, b in zip(model.coefs_, expected.coefs_):
        np.testing.assert_array_equal(a, b)
    labels = expected.predict(IRIS.data)

    printed = run("predict", model_path, iris_csv)
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    assert lines[0] == "prediction"
    assert [int(v) for v in lines[1:]] == labels.tolist()

    # columns picked by name: another order, without the target, gives the same
    reordered = tmp_path / "reordered.csv"
    columns = IRIS_COLUMNS[:0:-1]
    write_csv(reordered, columns, IRIS.data[:, ::-1])
    out = tmp_path / "predictions.csv"
    result = run("predict", model_path, reordered, "-o", out)
    assert result.returncode == 0, result.stderr
    assert out.read_text().splitlines() == lines

    info = run("info", model_path)
    assert info.returncode == 0, info.stderr
    for text in ("MLPClassifier", "4 -> 8 (relu) -> 3 (softmax)", "petal_width", "0, 1, 2",
                 "solver='lbfgs'", "float64"):
        assert text in info.stdout


@pytest.mark.slow
def test_train_a_regressor_on_npy_and_npz_and_predict_to_npy(tmp_path):
    X, y = make_regression(120, 3, noise=1.0, random_state=0)
    y = y / y.std()
    np.save(tmp_path / "table.npy", np.column_stack([X, y]))
    np.savez(tmp_path / "data.npz", X=X, y=y)
    params = dict(hidden_layer_sizes=(5,), max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        expected = fastmlp.MLPRegressor(**params).fit(X, y).predict(X)
    for data, target in [("table.npy", ["--target", "-1"]), ("data.npz", [])]:
        model_path = tmp_path / f"{data}.model.npz"
        result = run("train", tmp_path / data, *target, "--regressor", "--param",
                     "hidden_layer_sizes=(5,)", "max_iter=20", "random_state=0", "-o", model_path)
        assert result.returncode == 0, result.stderr
        # the ConvergenceWarning of 20 epochs, on one line
        assert "fastmlp: warning: Stochastic Optimizer: Maximum iterations (20)" in result.stderr
        out = tmp_path / f"{data}.predictions.npy"
        result = run("predict", model_path, tmp_path / "data.npz", "-o", out)
        assert result.returncode == 0, result.stderr
        np.testing.assert_array_equal(np.load(out), expected)


@pytest.fixture(scope="module")
def bad_cases(tmp_path_factory):
    """name: (arguments, what the one-line error must say)"""
    tmp = tmp_path_factory.mktemp("bad")
    write_csv(tmp / "words.csv", ["a", "b"], [[1, 2], [3, "three"]])
    write_csv(tmp / "ragged.csv", ["a", "b", "c"], [[1, 2, 3], [4, 5]])
    write_csv(tmp / "good.csv", ["a", "b", "t"], [[1, 2, 0], [3, 4, 1], [5, 6, 0], [7, 8, 1]])
    (tmp / "empty.csv").write_text("")
    (tmp / "binary.csv").write_bytes(b"\xff\xfe\x00\x01garbage")
    np.save(tmp / "flat.npy", np.arange(4.0))
    with open(tmp / "renamed.npz", "wb") as f:  # an .npy under another name: read as a table
        np.save(f, np.ones((3, 2)))
    np.savez(tmp / "many.npz", a=np.ones((2, 2)), b=np.ones((2, 2)))
    (tmp / "notes.txt").write_text("not a model\n")
    write_csv(tmp / "fewer.csv", ["a"], [[1], [2]])
    np.savez(tmp / "bytes.npz", X=np.ones((4, 2)), y=np.array([b"a", b"b", b"a", b"b"]))
    model = fastmlp.MLPClassifier(hidden_layer_sizes=(2,), solver="lbfgs", max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(np.array([[1.0, 2], [3, 4], [5, 6], [7, 8]]), [0, 1, 0, 1])
    model.feature_names_in_ = np.array(["a", "b"], dtype=object)
    model.save(tmp / "model.npz")
    train = ["train", tmp / "good.csv", "--target", "t"]
    out = ["-o", tmp / "m.npz"]
    return {
        "missing data": (["train", tmp / "nowhere.csv", "--target", "t", *out], "nowhere.csv"),
        "words in a csv": (["train", tmp / "words.csv", "--target", "b", *out],
                           "line 3, column 'b': 'three' is not a number"),
        "ragged csv": (["train", tmp / "ragged.csv", "--target", "c", *out],
                       "line 3 has 2 values, the header 3"),
        "empty csv": (["train", tmp / "empty.csv", "--target", "t", *out], "is empty"),
        "binary csv": (["train", tmp / "binary.csv", "--target", "t", *out], "not a text"),
        "unknown target": (["train", tmp / "good.csv", "--target", "z", *out], "no column 'z'"),
        "no target": (["train", tmp / "good.csv", *out], "--target"),
        "flat npy": (["train", tmp / "flat.npy", "--target", "0", *out], "2-D"),
        "npz without X": (["train", tmp / "many.npz", "--target", "0", *out], "'a', 'b'"),
        "target out of range": (["train", tmp / "renamed.npz", "--target", "2", *out],
                                "a column number from 0 to 1"),
        "unknown parameter": ([*train, "--param", "size=3", *out], "unknown parameter 'size'"),
        "parameter without value": ([*train, "--param", "alpha", *out], "name=value"),
        "bad parameter value": ([*train, "--param", "alpha=-1", *out], "'alpha' parameter"),
        "parameter of the wrong type": ([*train, "--param", "coefs_init=[set(),set()]", *out],
                                        "'coefs_init' parameter"),
        "bytes labels": (["train", tmp / "bytes.npz", *out], "bytes"),
        "unwritable output": ([*train, "-o", tmp / "no" / "m.npz"], "m.npz"),
        "not a model": (["predict", tmp / "notes.txt", tmp / "good.csv"], "not a fastmlp model"),
        "info of not a model": (["info", tmp / "good.csv"], "not a fastmlp model"),
        "missing model": (["info", tmp / "nowhere.npz"], "nowhere.npz"),
        "model as data": (["predict", tmp / "model.npz", tmp / "model.npz"],
                          "a fastmlp model, not data"),
        "missing feature columns": (["predict", tmp / "model.npz", tmp / "fewer.csv"],
                                    "lacks the model's feature column 'b'"),
    }


BAD_CASE_NAMES = [
    "missing data", "words in a csv", "ragged csv", "empty csv", "binary csv", "unknown target",
    "no target", "flat npy", "npz without X", "target out of range", "unknown parameter",
    "parameter without value", "bad parameter value", "parameter of the wrong type",
    "bytes labels", "unwritable output", "not a model",
    "info of not a model", "missing model", "model as data", "missing feature columns",
]


# one of each kind (a data file, a parameter, a model file) in the quick subset
QUICK_BAD_CASES = {"words in a csv", "bad parameter value", "not a model"}


@pytest.mark.parametrize(
    "name", [name if name in QUICK_BAD_CASES else pytest.param(name, marks=pytest.mark.slow)
             for name in BAD_CASE_NAMES]
)
def test_bad_files_and_arguments_get_one_line_errors(bad_cases, name):
    assert sorted(bad_cases) == sorted(BAD_CASE_NAMES)
    arguments, message = bad_cases[name]
    line = one_line_error(run(*arguments))
    assert message in line, line
