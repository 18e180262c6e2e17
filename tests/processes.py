"""Subprocesses started by tests: each in its own process group, killed as a group.

Every process a test starts goes through :func:`popen` (or :func:`started` / :func:`run`): it
runs in a new session, so it and everything it starts (uvicorn's reload and worker children,
multiprocessing helpers) share one process group. :func:`kill_group` ends that group whatever
the test's outcome: SIGTERM to the group, a grace period, then SIGKILL to the group.

Output is read by :class:`Lines`, a reader thread that owns its stream: it closes the stream
itself when the output ends, so a pipe is never closed under a thread still reading it.

The session-end check in ``tests/conftest.py`` (:func:`leftovers`) makes sure nothing escapes:
processes descending from pytest or carrying ``$III_TEST_SESSION`` fail the run.

Example::

    with started([sys.executable, "-m", "iii_asgi", "engine"], stdout=PIPE, text=True) as proc:
        out = Lines(proc.stdout)
        out.wait_for(r"ws://\\S+")
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

__all__ = [
    "GRACE",
    "SESSION_ENV",
    "Lines",
    "ProcInfo",
    "become_subreaper",
    "kill_group",
    "leftovers",
    "popen",
    "run",
    "session_processes",
    "started",
]

#: Environment variable carrying the test session's id: every process the tests start inherits
#: it, so the session-end check finds them even when they were re-parented elsewhere.
SESSION_ENV = "III_TEST_SESSION"
#: Seconds a process group gets between SIGTERM and SIGKILL.
GRACE = 10.0
#: Safety timeout (seconds) for waits on a condition: long enough for a loaded machine, short
#: enough to fail with a message before pytest-timeout's limit.
PATIENCE = 120.0

_PR_SET_CHILD_SUBREAPER = 36


def popen(args: Sequence[str], **options: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen(args, **options)`` in a new session (its own process group).

    The caller ends it with :func:`kill_group` (or uses :func:`started`)."""
    if "start_new_session" in options or "process_group" in options:
        raise TypeError("popen() always starts a new session")
    return subprocess.Popen(list(args), start_new_session=True, **options)


@contextlib.contextmanager
def started(args: Sequence[str], **options: Any) -> Iterator[subprocess.Popen[Any]]:
    """:func:`popen` as a context manager: the whole group is killed on exit, whatever the
    outcome."""
    proc = popen(args, **options)
    try:
        yield proc
    finally:
        kill_group(proc)


def run(
    args: Sequence[str], *, timeout: float = PATIENCE, **options: Any
) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run(args, capture_output=True, ...)`` in its own process group; the group is
    killed afterwards (and on timeout, when ``TimeoutExpired`` is raised)."""
    options.setdefault("stdout", subprocess.PIPE)
    options.setdefault("stderr", subprocess.PIPE)
    with started(args, **options) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            proc.communicate()
            raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def kill_group(proc: subprocess.Popen[Any], grace: float = GRACE) -> None:
    """End ``proc``'s process group: SIGTERM to the group, wait up to ``grace`` seconds for
    every member to exit, then SIGKILL the group. ``proc`` is reaped, and so are group members
    re-parented to this process (see :func:`become_subreaper`). Safe to call more than once and
    after ``proc`` has exited."""
    pgid = proc.pid  # start_new_session: the leader's pid names the group
    _signal_group(pgid, signal.SIGTERM)
    if not _wait_group_gone(proc, pgid, grace):
        _signal_group(pgid, signal.SIGKILL)
        if not _wait_group_gone(proc, pgid, GRACE):
            alive = [p.describe() for p in _scan() if p.pgid == pgid and p.state != "Z"]
            raise RuntimeError(f"process group {pgid} survived SIGKILL: {alive}")
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(GRACE)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _wait_group_gone(proc: subprocess.Popen[Any], pgid: int, timeout: float) -> bool:
    """True once no live process is left in group ``pgid`` (zombies that are ours are reaped)."""
    deadline = time.monotonic() + timeout
    me = os.getpid()
    while True:
        proc.poll()  # reaps the leader through Popen, which keeps its exit status
        alive = False
        for info in _scan():
            if info.pgid != pgid or (info.pid == proc.pid and proc.returncode is not None):
                continue
            if info.state == "Z" and info.ppid == me and info.pid != proc.pid:
                _reap(info.pid)  # re-parented to us: nobody else waits for it
            elif info.state != "Z":
                alive = True
        if not alive and proc.returncode is not None:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


class Lines:
    """The lines of a text stream, read on a daemon thread that owns the stream: it closes the
    stream when the output ends (EOF), never another thread. Waiters are woken on each line."""

    def __init__(self, stream: IO[str] | None, name: str = "output") -> None:
        assert stream is not None, "start the process with stdout=PIPE (and text=True)"
        self.lines: list[str] = []
        self.ended = False
        self._stream = stream
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, name=f"reader:{name}", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for line in self._stream:
                with self._changed:
                    self.lines.append(line.rstrip("\n"))
                    self._changed.notify_all()
        finally:
            self._stream.close()
            with self._changed:
                self.ended = True
                self._changed.notify_all()

    def wait(self, predicate: Callable[[list[str]], bool], timeout: float = PATIENCE) -> bool:
        """Block until ``predicate(lines)`` is true or the output has ended (then one last
        check); returns the predicate's value. ``False`` after ``timeout`` seconds."""
        with self._changed:
            self._changed.wait_for(lambda: self.ended or predicate(self.lines), timeout)
            return predicate(self.lines)

    def wait_for(self, pattern: str, timeout: float = PATIENCE) -> re.Match[str]:
        """The first line matching ``pattern``; ``AssertionError`` (with the output so far) when
        the output ends or ``timeout`` passes without one."""
        regex = re.compile(pattern)
        self.wait(lambda lines: any(regex.search(line) for line in lines), timeout)
        with self._changed:
            for line in self.lines:
                match = regex.search(line)
                if match:
                    return match
            state = "output ended" if self.ended else f"{timeout}s passed"
            raise AssertionError(f"no line matching {pattern!r} ({state}):\n{self.text}")

    def join(self, timeout: float = PATIENCE) -> None:
        """Wait for the end of the output (every writer closed the pipe)."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"the output did not end within {timeout}s:\n{self.text}")

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True)
class ProcInfo:
    """One process, from ``/proc/<pid>/stat`` and ``cmdline``."""

    pid: int
    ppid: int
    pgid: int
    state: str
    cmdline: str

    def describe(self) -> str:
        return f"pid {self.pid} (pgid {self.pgid}, ppid {self.ppid}): {self.cmdline}"


def _scan() -> list[ProcInfo]:
    """Every process visible in /proc (those vanishing while read are skipped)."""
    found: list[ProcInfo] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses
        fields = stat[stat.rindex(")") + 2 :].split()
        found.append(
            ProcInfo(int(entry), int(fields[1]), int(fields[2]), fields[0], cmdline or stat)
        )
    return found


def _has_marker(pid: int, marker: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return marker in f.read().split(b"\0")
    except OSError:
        return False


def become_subreaper() -> bool:
    """Make this process a child subreaper (Linux ``prctl(PR_SET_CHILD_SUBREAPER)``): orphaned
    descendants re-parent to it instead of init, so they stay findable. False when unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def session_processes(session: str) -> list[ProcInfo]:
    """Live processes of the test session: the descendants of this process and every process
    whose environment carries ``$III_TEST_SESSION=session``. Zombies re-parented to this
    process are reaped on the way."""
    me = os.getpid()
    marker = f"{SESSION_ENV}={session}".encode()
    procs = _scan()
    children: dict[int, list[int]] = {}
    for info in procs:
        children.setdefault(info.ppid, []).append(info.pid)
    descendants: set[int] = set()
    todo = list(children.get(me, []))
    while todo:
        pid = todo.pop()
        if pid not in descendants:
            descendants.add(pid)
            todo.extend(children.get(pid, []))
    found: list[ProcInfo] = []
    for info in procs:
        if info.pid == me or not (info.pid in descendants or _has_marker(info.pid, marker)):
            continue
        if info.state == "Z":
            if info.ppid == me:
                _reap(info.pid)
            continue
        found.append(info)
    return found


def _own_helpers() -> set[int]:
    """This process's own multiprocessing helpers (resource tracker, fork server), started on
    first use and ended when it exits: legitimate, not leftovers of a test."""
    pids: set[int] = set()
    for module, owner, attr in (
        ("multiprocessing.resource_tracker", "_resource_tracker", "_pid"),
        ("multiprocessing.forkserver", "_forkserver", "_forkserver_pid"),
    ):
        pid = getattr(getattr(sys.modules.get(module), owner, None), attr, None)
        if isinstance(pid, int):
            pids.add(pid)
    return pids


def leftovers(session: str, timeout: float = 10.0) -> list[ProcInfo]:
    """:func:`session_processes` still alive after up to ``timeout`` seconds (the ones exiting
    are given that long), except this process's own multiprocessing helpers; they are killed
    (SIGKILL) and returned."""
    me = os.getpid()
    deadline = time.monotonic() + timeout
    while True:
        helpers = _own_helpers()
        remaining = [p for p in session_processes(session) if p.pid not in helpers]
        if not remaining or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for info in remaining:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(info.pid, signal.SIGKILL)
    for info in remaining:
        if info.ppid == me:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(info.pid, 0)
    return remaining
