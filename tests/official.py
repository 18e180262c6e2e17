"""Harness for the official ``iii-sdk==0.25.0`` client, run in its own venv as a subprocess.

The official package also imports as ``iii``, so it never shares our interpreter. Its Python is
``$III_OFFICIAL_PYTHON`` if set, else ``<repo>/.venv-official/bin/python``, created on first use
(``python -m venv`` + ``pip install iii-sdk==0.25.0``) under a file lock so parallel runs do not
race.

Example::

    with run_official(SCRIPT, engine.url) as proc:
        assert proc.wait_for("READY")
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

REPO = Path(__file__).resolve().parents[1]
REQUIREMENT = "iii-sdk==0.25.0"

__all__ = ["OfficialProcess", "official_python", "run_official"]


def official_python() -> Path:
    """Path of a Python that has the official SDK installed (creating the venv if needed).

    Raises ``RuntimeError`` when the venv cannot be created or the install fails.
    """
    configured = os.environ.get("III_OFFICIAL_PYTHON")
    if configured:
        return Path(configured)
    venv = REPO / ".venv-official"
    python = venv / "bin" / "python"
    marker = venv / ".iii-sdk-installed"
    lock_path = Path(tempfile.gettempdir()) / f"iii-venv-official-{os.getuid()}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", REQUIREMENT], check=True)
            marker.write_text(REQUIREMENT)
    return python


class OfficialProcess:
    """A running official-SDK script. Its stdout lines (the script's answers) are queued for
    :meth:`readline`; its stderr (the SDK's logs) is collected apart in ``errors``, so a log line
    written at the same moment can never split an answer line."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()
        self._error_reader = threading.Thread(target=self._pump_errors, daemon=True)
        self._error_reader.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def _pump_errors(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.errors.append(line.rstrip("\n"))

    def _output(self) -> str:
        return f"stdout: {self.lines}; stderr (last 20): {self.errors[-20:]}"

    def readline(self, timeout: float = 30.0) -> str | None:
        """The next output line, or ``None`` at end of output. Raises TimeoutError."""
        try:
            line = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no output within {timeout}s; {self._output()}") from None
        if line is not None:
            self.lines.append(line)
        return line

    def wait_for(self, prefix: str, timeout: float = 30.0) -> str:
        """Read lines until one starts with ``prefix``; returns it. Raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.readline(max(0.01, deadline - time.monotonic()))
            if line is None:
                raise AssertionError(f"process ended before {prefix!r}; {self._output()}")
            if line.startswith(prefix):
                return line

    def wait(self, timeout: float = 30.0) -> int:
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """Kill the script's process group (it runs in its own session), then reap it."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # it just ended
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def __enter__(self) -> OfficialProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def run_official(script: str, url: str, env: dict[str, str] | None = None) -> OfficialProcess:
    """Run ``script`` (Python source) with the official SDK's interpreter.

    The environment carries ``III_URL=url`` and ``OTEL_ENABLED=false``; stdout and stderr are
    read apart (see :class:`OfficialProcess`). The script runs in a new session; leaving the
    ``with`` block (or :meth:`OfficialProcess.kill`) kills its whole process group.
    """
    full_env = {
        **os.environ,
        "III_URL": url,
        "OTEL_ENABLED": "false",
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    full_env.pop("PYTHONPATH", None)
    proc = subprocess.Popen(
        [str(official_python()), "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        cwd="/",
        start_new_session=True,  # its own process group, killed as a whole
    )
    return OfficialProcess(proc)
