"""Subprocesses for the console's tests: ``iii-asgi run examples.todo_app:app`` with the
console on a free port, and the helper worker. Each runs in its own session and is killed with
its process group."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.processes import Lines, kill_group, popen

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
    """A subprocess in its own session (tests/processes.py) whose output lines are collected."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.popen = popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._output = Lines(self.popen.stdout, args[-1])

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        return self._output.wait_for(pattern, timeout)

    @property
    def output(self) -> str:
        return self._output.text

    def kill(self) -> None:
        """End the process group (SIGTERM, then SIGKILL) and read the output to its end."""
        kill_group(self.popen)
        self._output.join()


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
