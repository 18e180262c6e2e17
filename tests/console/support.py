"""Subprocesses for the console's tests: ``iii-asgi run examples.todo_app:app`` with the
console on a free port, and the helper worker. Each runs in its own session and is killed with
its process group."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HELPER = Path(__file__).with_name("helper_worker.py")


def chromium() -> tuple[str | None, str]:
    """Debian's chromium: ``(path, "")``, installing the package first when it is missing and
    this runs as root with apt-get (as scripts/test.sh does); else ``(None, why not)``."""
    found = shutil.which("chromium")
    if found:
        return found, ""
    if not shutil.which("apt-get") or os.geteuid() != 0:
        return None, "chromium is missing and apt-get cannot run here (not root, or no apt)"
    install = "apt-get update -qq && apt-get install -y -qq chromium"
    done = subprocess.run(["sh", "-c", install], capture_output=True, text=True, timeout=900)
    found = shutil.which("chromium")
    if found:
        return found, ""
    return None, f"apt-get could not install chromium: {done.stderr.strip()[-500:]}"


class Process:
    """A subprocess in its own session whose output lines are collected."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.popen = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        regex = re.compile(pattern)

        def found() -> re.Match[str] | None:
            return next((m for m in map(regex.search, self.lines) if m), None)

        with self._changed:
            self._changed.wait_for(
                lambda: found() is not None or self.popen.poll() is not None, timeout
            )
            match = found()
        if match is None:
            raise AssertionError(f"no line matching {pattern!r}:\n{self.output}")
        return match

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def kill(self) -> None:
        """SIGTERM to the process group, SIGKILL after 10 s."""
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(wait)
                break
        if self.popen.stdout is not None:
            self.popen.stdout.close()


@dataclass
class TodoApp:
    """``iii-asgi run examples.todo_app:app`` and the helper worker, with their URLs."""

    engine_url: str
    http_url: str
    console_url: str
    login_url: str
    token: str
    app: Process
    helper: Process


def environment() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    env["OTEL_ENABLED"] = "true"  # the suite turns it off; the console shows workers' spans
    env.pop("III_URL", None)
    return env


@contextlib.contextmanager
def todo_app() -> Iterator[TodoApp]:
    """Start both processes on free ports; kill them (process groups) afterwards."""
    env = environment()
    args = [sys.executable, "-m", "iii_asgi", "run", "examples.todo_app:app", "--port", "0"]
    args += ["--engine-port", "0", "--engine-http-port", "0", "--engine-stream-port", "off"]
    args += ["--console-port", "0", "--log-level", "warning"]
    app = Process(args, env)
    helper: Process | None = None
    try:
        engine_url = app.wait_for(r"engine (ws://\S+) \(workers\)")[1]
        http_url = app.wait_for(r"engine (http://\S+) \(HTTP triggers")[1]
        login = app.wait_for(r"console (http://\S+/\?token=(\S+))")
        app.wait_for(r"app http://\S+ \(direct\)")
        helper = Process([sys.executable, str(HELPER), engine_url], env)
        helper.wait_for("helper ready")
        yield TodoApp(
            engine_url,
            http_url,
            login[1].split("?")[0],
            login[1],
            login[2],
            app,
            helper,
        )
    finally:
        if helper is not None:
            helper.kill()
        app.kill()


def eventually(check: object, timeout: float = 30.0, interval: float = 0.1) -> object:
    """Call ``check()`` until it returns something truthy without raising; return it."""
    assert callable(check)
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except Exception:
            if time.monotonic() > deadline:
                raise
        else:
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"still false after {timeout} s: {check}")
        time.sleep(interval)
