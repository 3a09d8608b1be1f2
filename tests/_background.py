"""Checks that run as a process of their own and spend minutes compiling
(the sanitized build with its tests, the cross-builds). Once the session's
tests are known, conftest.py starts the command of each such test that will
run, and runs the test itself last: the builds overlap the rest of the
suite, most of which keeps one core busy, and the test collects the result.

A test marked ``@pytest.mark.background(command=factory)``, where
``factory()`` returns a Command, gets its result with ``run(factory)``,
which starts the command then if it was not started before.

Every command runs in a session of its own under ``timeout``, so it ends
within its time even if pytest is killed; stopping it ends every process of
that session. Its exit status comes back through a file of its own: had
anything in the test process reaped it first, waiting on it would report 0.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass

# seconds a command has to end after SIGTERM (from us or from timeout)
GRACE = 10

# factory -> its _Running command, from its start until its result is taken
_started = {}


@dataclass
class Command:
    """A command line, its directory, its environment (None: this
    process's) and the seconds it may take from its start."""

    args: list
    cwd: str
    env: dict | None = None
    timeout: float = 1500


class _Running:
    def __init__(self, command):
        self.command = command
        self.started = time.monotonic()
        self.files = [tempfile.NamedTemporaryFile(mode="w+") for _ in range(3)]
        out, err, status = self.files
        # `sh` writes the command's exit status into the status file
        script = 'status="$1"; shift; "$@"; echo "$?" > "$status"'
        try:
            self.process = subprocess.Popen(
                ["timeout", "-k", str(GRACE), str(command.timeout), "sh", "-c", script, "sh",
                 status.name, *command.args],
                cwd=command.cwd, env=command.env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=err, start_new_session=True,
            )
        except BaseException:
            self.close()
            raise

    def send(self, sig):
        """Send sig to every process of its session, once each: `timeout`, the
        leader, passes it on to its own process group, so those get it from
        there (a second SIGTERM would end a script's cleanup)."""
        leader = self.process.pid
        for pid in session_members(leader):
            try:
                if sig == signal.SIGTERM and pid != leader and os.getpgid(pid) == leader:
                    continue
                os.kill(pid, sig)
            except OSError:  # gone already
                pass

    def alive(self):
        """True while a process of its session is left (its leader reaped first)."""
        self.process.poll()
        return bool(session_members(self.process.pid))

    def wait(self, seconds):
        try:
            self.process.wait(timeout=seconds)
            return True
        except subprocess.TimeoutExpired:
            return False

    def close(self):
        for f in self.files:
            f.close()

    def result(self, ended):
        """The CompletedProcess of a command that ended; TimeoutExpired, as
        from subprocess.run, for one whose time ran out (ours or timeout's)."""
        stdout, stderr, status = (read(f) for f in self.files)
        if not ended or self.process.returncode == 124 and not status:
            raise subprocess.TimeoutExpired(self.command.args, self.command.timeout,
                                            stdout, stderr)
        # no status: the shell did not get to write it (killed)
        code = int(status) if status.strip() else (self.process.returncode or -1)
        return subprocess.CompletedProcess(self.command.args, code, stdout, stderr)


def read(f):
    f.seek(0)
    return f.read()


def session_members(sid):
    """The processes of session sid, found in /proc (a script's own
    `timeout` puts what it runs in a process group of its own); without
    /proc, the leader's process group (-sid, for os.kill)."""
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


def stop(running):
    """End every process of each command's session: SIGTERM, so scripts
    clean up, then SIGKILL after GRACE seconds, or at once on a second
    interrupt."""
    try:
        for r in running:
            r.send(signal.SIGTERM)
        # the whole session, not its leader alone: a script's cleanup
        # outlives the wrappers around it
        deadline = time.monotonic() + GRACE
        while time.monotonic() < deadline and any(r.alive() for r in running):
            time.sleep(0.05)
    finally:
        for r in running:
            r.send(signal.SIGKILL)
            r.wait(None)


def start(factory):
    """Start the Command factory() gives, unless it was started already."""
    if factory not in _started:
        _started[factory] = _Running(factory())


def run(factory):
    """The result of factory()'s Command: the run started with the
    session, or one started now. The command is stopped whatever happens;
    its time, counted from its start, includes timeout's grace."""
    start(factory)
    running = _started.pop(factory)
    try:
        left = running.command.timeout + GRACE - (time.monotonic() - running.started)
        ended = running.wait(max(left, 0))
    finally:
        stop([running])
    try:
        return running.result(ended)
    finally:
        running.close()


def stop_all():
    """Stop every command started and not collected (the run ended first)."""
    running = list(_started.values())
    _started.clear()
    try:
        stop(running)
    finally:
        for r in running:
            r.close()
