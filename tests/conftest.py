"""Starts the commands of the tests marked `background` (see _background.py)
when the session begins, and runs those tests last."""

import pytest

import _background


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "background(command): command() gives a _background.Command, started with the session; "
        "the test runs last and collects its result",
    )


def skipped(item):
    """True when a skipif of the test has a true condition (a condition given
    as a string counts as true: the command then starts with its test)."""
    return any(mark.args and mark.args[0] for mark in item.iter_markers("skipif"))


@pytest.hookimpl(trylast=True)  # after -m and -k have deselected
def pytest_collection_modifyitems(config, items):
    marked = [item for item in items if item.get_closest_marker("background")]
    if not marked or config.option.collectonly:
        return
    items[:] = [item for item in items if item not in marked] + marked
    for item in marked:
        if not skipped(item):
            _background.start(item.get_closest_marker("background").kwargs["command"])


def pytest_sessionfinish(session):
    _background.stop_all()
