"""Runs the tests marked `background` (see _background.py) last, and starts
their commands as soon as the session knows which tests it will run."""

import pytest

import _background


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "background(command): command() gives a _background.Command, started once the "
        "session's tests are known; the test runs last and collects its result",
    )


def will_run(item):
    """False when a skip or skipif mark of the test applies, or when that
    cannot be told (its command then starts with the test itself)."""
    try:
        from _pytest.skipping import evaluate_skip_marks

        return evaluate_skip_marks(item) is None
    except (Exception, pytest.fail.Exception):  # a condition that fails to evaluate
        return False


def pytest_collection_modifyitems(items):
    marked = [item for item in items if item.get_closest_marker("background")]
    items[:] = [item for item in items if item not in marked] + marked


def pytest_collection_finish(session):
    config = session.config
    # pytest-xdist's workers each see every test; pytest-benchmark's
    # --benchmark-only skips the others when they start
    if (config.option.collectonly or hasattr(config, "workerinput")
            or config.getoption("benchmark_only", False)):
        return
    for item in session.items:
        mark = item.get_closest_marker("background")
        if mark and will_run(item):
            try:
                _background.start(mark.kwargs["command"])
            except Exception:  # the test itself starts it again and reports the error
                pass


def pytest_sessionfinish(session):
    _background.stop_all()
