"""Checks that run as a process of their own (a sanitized build and its
tests, the cross-builds) and spend minutes compiling. conftest.py starts
each one as soon as the session is known to run the test that owns it, and
moves that test to the end: the builds then use the core that the rest of
the suite, mostly one Python thread at a time, leaves idle, and the test
only collects the result.

A test marked ``@pytest.mark.background(command=factory)``, where
``factory()`` returns a Command, gets its result with ``run(factory)``,
which starts the command then if nothing did before.
"""

import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass

_started = {}


class _Running:
    def __init__(self, command):
        self.command = command
        self.out = tempfile.TemporaryFile(mode="w+")
        self.err = tempfile.TemporaryFile(mode="w+")
        self.started = time.monotonic()
        # a session of its own: a timeout or the end of the run stops the
        # compilers and emulators it started too
        self.process = subprocess.Popen(
            command.args, cwd=command.cwd, env=command.env,
            stdin=subprocess.DEVNULL, stdout=self.out, stderr=self.err, text=True,
            start_new_session=True,
        )

    def stop(self):
        """End every process of its session: asked first, so the scripts
        remove their temporary directories, then forced."""
        for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, None)):
            for pid in session_members(self.process.pid):
                try:
                    os.kill(pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass

    def result(self):
        """The CompletedProcess once the command has ended; TimeoutExpired, as
        from subprocess.run, when its time (counted from its start) is up."""
        left = self.command.timeout - (time.monotonic() - self.started)
        try:
            self.process.wait(timeout=max(left, 0))
        except subprocess.TimeoutExpired:
            self.stop()
            stdout, stderr = self.outputs()
            raise subprocess.TimeoutExpired(self.command.args, self.command.timeout,
                                            stdout, stderr) from None
        stdout, stderr = self.outputs()
        return subprocess.CompletedProcess(self.command.args, self.process.returncode,
                                           stdout, stderr)

    def outputs(self):
        texts = []
        for f in (self.out, self.err):
            f.seek(0)
            texts.append(f.read())
            f.close()
        return texts


def session_members(sid):
    """The processes of session sid, found in /proc (the scripts' `timeout`
    puts what it runs in a process group of its own); without /proc, the
    leader's process group (-sid, for os.kill)."""
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return [-sid]
    members = []
    for pid in pids:
        try:
            if os.getsid(pid) == sid:
                members.append(pid)
        except OSError:  # gone already
            pass
    return members


@dataclass
class Command:
    """A command line, its directory, its environment (None: this
    process's) and the seconds it may take from its start."""

    args: list
    cwd: str
    env: dict = None
    timeout: float = 1500


def start(factory):
    """Start the Command factory() gives, unless it was started already."""
    if factory not in _started:
        _started[factory] = _Running(factory())


def run(factory):
    """The result of factory()'s Command: the run started with the
    session, or one started now."""
    start(factory)
    return _started.pop(factory).result()


def stop_all():
    """Stop every command started and not collected (the run ended first)."""
    while _started:
        _started.popitem()[1].stop()
