"""The process helpers the suite relies on (``tests/processes.py``): a process group is killed
whole, reader threads end with the output and own their pipe, and a process escaping its group
is still found by the session-end check (``tests/conftest.py``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from tests.processes import (
    PATIENCE,
    SESSION_ENV,
    Lines,
    kill_group,
    leftovers,
    popen,
    session_processes,
    started,
)

#: A parent that starts a child (``start_new_session`` passed through), prints its pid, then
#: sleeps or exits (argv[2]); both ignore SIGTERM, both keep the inherited stdout open.
PARENT = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"],
        start_new_session=sys.argv[1] == "escape",
    )
    print(child.pid, flush=True)
    if sys.argv[2] == "sleep":
        time.sleep(600)
    """
)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_kill_group_ends_a_group_that_ignores_sigterm() -> None:
    proc = popen([sys.executable, "-c", PARENT, "stay", "sleep"], stdout=subprocess.PIPE, text=True)
    out = Lines(proc.stdout, "parent")
    child = int(out.wait_for(r"^\d+$").group(0))
    assert os.getpgid(child) == proc.pid  # the whole tree is one group
    kill_group(proc, grace=0.5)
    assert proc.returncode == -signal.SIGKILL
    assert not _alive(child)
    out.join()  # the output ends once every writer is gone; the reader closed the pipe
    assert out.ended


def test_the_output_ends_only_when_the_group_is_killed() -> None:
    """The parent exits but its child still holds the pipe: the reader keeps reading (nobody
    closes the pipe under it) until the group is killed."""
    proc = popen([sys.executable, "-c", PARENT, "stay", "exit"], stdout=subprocess.PIPE, text=True)
    try:
        out = Lines(proc.stdout, "parent")
        child = int(out.wait_for(r"^\d+$").group(0))
        assert proc.wait(60) == 0
        assert not out.wait(lambda lines: False, timeout=0.3)
        assert not out.ended and _alive(child)
    finally:
        kill_group(proc, grace=0.5)
    out.join()
    assert out.ended and not _alive(child)


def test_an_orphan_escaping_its_group_is_found_by_the_session_check() -> None:
    """A grandchild in its own session outlives its parent's group; it re-parents to pytest (a
    subreaper) and carries the session's marker, so the session-end check would fail the run."""
    with started(
        [sys.executable, "-c", PARENT, "escape", "exit"], stdout=subprocess.PIPE, text=True
    ) as proc:
        out = Lines(proc.stdout, "parent")
        orphan = int(out.wait_for(r"^\d+$").group(0))
        proc.wait(60)
    try:
        assert _alive(orphan)  # killing the group did not reach it
        found = {info.pid: info for info in session_processes(os.environ[SESSION_ENV])}
        assert orphan in found
        assert found[orphan].ppid == os.getpid()  # re-parented to pytest, the subreaper
    finally:
        os.kill(orphan, signal.SIGKILL)
        os.waitpid(orphan, 0)  # ours now (subreaper)
    out.join()
    assert orphan not in {info.pid for info in session_processes(os.environ[SESSION_ENV])}


def test_the_session_check_spares_pytests_own_multiprocessing_helpers() -> None:
    """A spawn-context process starts this interpreter's resource tracker, which lives until
    pytest exits: the session-end check must not count it."""
    import multiprocessing

    worker = multiprocessing.get_context("spawn").Process(target=os.getpid)
    worker.start()
    worker.join(PATIENCE)
    assert worker.exitcode == 0
    tracker = multiprocessing.resource_tracker._resource_tracker._pid  # type: ignore[attr-defined]
    assert tracker is not None
    assert tracker in {info.pid for info in session_processes(os.environ[SESSION_ENV])}
    spared = {info.pid for info in leftovers("not-this-session", timeout=0)}
    assert tracker not in spared  # (session fixtures, e.g. redis-server, may still be running)
