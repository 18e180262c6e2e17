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

import fcntl
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

from tests.processes import PATIENCE, Lines, kill_group, popen
from tests.processes import run as run_process

REPO = Path(__file__).resolve().parents[1]
REQUIREMENT = "iii-sdk==0.25.0"

__all__ = ["OfficialProcess", "official_python", "run_official"]


def official_python() -> Path:
    """Path of a Python that has the official SDK installed (creating the venv if needed).

    Raises ``subprocess.CalledProcessError`` when the venv cannot be created or the install
    fails.
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
            for command in (
                [sys.executable, "-m", "venv", str(venv)],
                [str(python), "-m", "pip", "install", "-q", REQUIREMENT],
            ):
                result = run_process(command, timeout=900, text=True)
                if result.returncode != 0:
                    raise subprocess.CalledProcessError(
                        result.returncode, command, result.stdout, result.stderr
                    )
            marker.write_text(REQUIREMENT)
    return python


class OfficialProcess:
    """A running official-SDK script (its own process group). Its stdout lines (the script's
    answers) are read one by one with :meth:`readline`; its stderr (the SDK's logs) is collected
    apart in ``errors``, so a log line written at the same moment can never split an answer
    line. Reader threads own the pipes (see :class:`tests.processes.Lines`)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        #: The stdout lines read so far with :meth:`readline` / :meth:`wait_for`.
        self.lines: list[str] = []
        self._out = Lines(proc.stdout, "official stdout")
        self._err = Lines(proc.stderr, "official stderr")

    @property
    def errors(self) -> list[str]:
        return self._err.lines

    def _output(self) -> str:
        return f"stdout: {self.lines}; stderr (last 20): {self.errors[-20:]}"

    def readline(self, timeout: float = PATIENCE) -> str | None:
        """The next output line, or ``None`` at end of output. Raises TimeoutError."""
        index = len(self.lines)
        if not self._out.wait(lambda lines: len(lines) > index, timeout):
            if self._out.ended:
                return None
            raise TimeoutError(f"no output within {timeout}s; {self._output()}")
        line = self._out.lines[index]
        self.lines.append(line)
        return line

    def wait_for(self, prefix: str, timeout: float = PATIENCE) -> str:
        """Read lines until one starts with ``prefix``; returns it. Raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.readline(max(0.01, deadline - time.monotonic()))
            if line is None:
                raise AssertionError(f"process ended before {prefix!r}; {self._output()}")
            if line.startswith(prefix):
                return line

    def wait(self, timeout: float = PATIENCE) -> int:
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """End the process group and read the output to its end."""
        kill_group(self.proc)
        self._out.join()
        self._err.join()

    def __enter__(self) -> OfficialProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()


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
    proc = popen(
        [str(official_python()), "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        cwd="/",
    )
    return OfficialProcess(proc)
