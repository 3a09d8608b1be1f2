"""Progress bars (extra fastmlp[progress]) and pictures (extra fastmlp[plot])."""

import io
import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning

from fastmlp import MLPClassifier

X, y = make_classification(300, 2, n_informative=2, n_redundant=0, random_state=0)


def test_progress_bar_is_a_callback_of_its_own(capsys):
    pytest.importorskip("tqdm")
    from fastmlp.callbacks import ProgressBar

    stream = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, early_stopping=True,
                      callbacks=[ProgressBar(file=stream, disable=False)]).fit(X, y)
        quiet_bar = ProgressBar()  # off a terminal (capsys), no bar by default
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, verbose=2,
                      callbacks=[quiet_bar]).fit(X, y)
    shown = stream.getvalue()
    assert "5/5" in shown and "loss=" in shown and "val_score=" in shown and "samples/s" in shown
    # the bar takes nothing away from verbose's lines
    captured = capsys.readouterr()
    assert [line.split(",")[0] for line in captured.out.splitlines()] == [
        "Iteration 1", "Iteration 2", "Iteration 3"
    ]
    assert "epoch" not in captured.err


def test_progress_bar_runs_the_length_of_the_fit_whatever_max_iter_becomes():
    pytest.importorskip("tqdm")
    from fastmlp.callbacks import ProgressBar

    def shorten(model, record):
        model.set_params(max_iter=2)

    stream = io.StringIO()
    bar = ProgressBar(file=stream, disable=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, tol=0, n_iter_no_change=100,
                              callbacks=[shorten, bar]).fit(X, y)
    assert model.n_iter_ == 5 and "5/5" in stream.getvalue()


def real_png(path):
    data = path.read_bytes()
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000


def test_plots_render_as_images(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fastmlp import plot

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0,
                              early_stopping=True).fit(X, y)
    for name, draw in [("curve.png", lambda ax: plot.loss_curve(model, ax)),
                       ("boundary.png", lambda ax: plot.decision_boundary(model, X, y, ax))]:
        fig, ax = plt.subplots()
        assert draw(ax) is ax
        fig.savefig(tmp_path / name)
        plt.close(fig)
        assert real_png(tmp_path / name)
    with pytest.raises(ValueError, match="two features"):
        plot.decision_boundary(model, np.ones((3, 3)), [0, 1, 0])


@pytest.mark.slow
def test_demo_writes_its_pictures(tmp_path):
    pytest.importorskip("matplotlib")
    result = subprocess.run([sys.executable, "-m", "fastmlp", "demo", "--plot", str(tmp_path)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    for name in ("worked_example_loss.png", "xor_boundary.png"):
        assert real_png(tmp_path / name)


@pytest.fixture
def compare(monkeypatch):
    """benchmarks/compare.py as a module."""
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import compare

    return compare


def test_compare_draws_its_results(tmp_path, compare):
    pytest.importorskip("matplotlib")
    results = {
        "machine": "test machine", "date": "today", "versions": {"fastmlp": "0", "PyTorch": "0"},
        "rows": [
            {"id": "W1", "fastmlp": 0.1, "scikit-learn": 2.0, "PyTorch": 3.0},
            {"id": "W2", "fastmlp": 1.0, "scikit-learn": 4.0, "PyTorch": 2.0},
            {"id": "P1", "fastmlp": 20.0, "scikit-learn": 200.0},
        ],
    }
    compare.plot_results(results, tmp_path / "speed.png")
    assert real_png(tmp_path / "speed.png")


def test_compare_counts_the_operations_of_the_backward_pass_it_runs(compare):
    """W2's 784-256-128-10 network, per sample: 2 operations per weight
    forward, 2 for its gradient, 2 carrying the error back through the
    layers after the first."""
    w2 = next(w for w in compare.WORKLOADS if w.id == "W2")
    first, rest = 784 * 256, 256 * 128 + 128 * 10
    assert compare.epoch_flops(w2) == 60_000 * (4 * first + 6 * rest)


def test_compare_shuffles_the_order_of_its_runs_each_round(compare, monkeypatch):
    """Every run is timed in every round, short ones several times; the
    order changes from round to round, so no run always follows the same
    one, and is the same again for the same seed."""
    monkeypatch.setattr(compare, "settle", lambda: None)

    def rounds(seed):
        calls = []
        fns = {name: (lambda name=name: calls.append(name)) for name in "abcde"}
        medians = compare.interleaved_medians(fns, 8, short_samples=2, seed=seed)
        assert set(medians) == set(fns)
        return calls

    calls = rounds(0)
    # instant runs are short: once in the first round, twice in each later one
    assert sorted(calls[:5]) == list("abcde")
    assert sorted(calls) == sorted(list("abcde") + list("abcde") * 2 * 7)
    # a round's short runs take turns: none is timed twice in a row
    for start in range(5, len(calls), 10):
        turn = calls[start:start + 10]
        assert all(before != after for before, after in zip(turn, turn[1:]))
    # a fixed order would give 5 of the 20 ordered pairs of different runs
    followers = {(before, after) for before, after in zip(calls, calls[1:]) if before != after}
    assert len(followers) > 10
    assert rounds(0) == calls and rounds(1) != calls


# what compare.start_results records of a run, for the table functions
STAMP = {"machine": "test machine", "date": "today", "versions": {"fastmlp": "0"},
         "repeats": 1, "quick": True, "gemm_peak_gflops": {"float32": 1, "float64": 1}}


def test_compare_notes_what_two_threads_give_fits_that_write_nothing_in_common(compare):
    """The note under the table gives, for W2 and W3, the speed-up of two
    single-threaded fits in two Python threads over the same fits in turn."""
    results = {**STAMP, "rows": [{"id": "W1", "title": "small", "fastmlp": 0.5}],
               "concurrent_speedup": {"W2": 1.754, "W3": 1.59}}
    assert ("Two single-threaded fits in two Python threads, against the same fits one after "
            "the other: 1.75x (W2) and 1.59x (W3) as fast.") in compare.table(results)
    del results["concurrent_speedup"]
    assert "Python threads" not in compare.table(results)


def test_compare_all_gives_both_tables_from_one_run(tmp_path, compare, monkeypatch, capsys):
    """--all runs the full comparison and then the under-load one, prints
    both tables, writes them to README's two places and both results to one
    JSON file; --under-load alone runs only the second."""
    calls, written = [], {}
    full = {**STAMP, "rows": [{"id": "W1", "title": "small", "fastmlp": 0.5}]}
    load = {**STAMP, "rows": [{"id": "W1", "busy": 1, "default": 0.25, "one": 0.5}]}
    monkeypatch.setattr(compare, "run", lambda *a: calls.append("full") or full)
    monkeypatch.setattr(compare, "run_under_load", lambda *a: calls.append("load") or load)
    monkeypatch.setattr(compare, "update_readme", lambda text, marker="results":
                        written.__setitem__(marker, text))
    out = tmp_path / "both.json"
    compare.main(["--all", "--quick", "--json", str(out), "--update-readme"])
    assert calls == ["full", "load"]
    printed = capsys.readouterr().out
    assert "| W1 small | 0.5 s |" in printed and "| W1 | 1 | 0.25 s | 0.5 s | 0.50x |" in printed
    assert written == {"results": compare.table(full), "load": compare.load_table(load)}
    assert json.loads(out.read_text()) == {**full, "under_load": load}
    calls.clear()
    compare.main(["--under-load", "--quick", "--json", str(out)])
    assert calls == ["load"] and json.loads(out.read_text()) == load
