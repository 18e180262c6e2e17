"""A real ``redis-server`` for the tests: its own free port and data directory, its own process
group, stopped (the group killed) at the end.

``scripts/test.sh`` installs Debian's ``redis-server`` when it is missing; where it cannot be
installed the Redis tests are skipped with that reason (pytest ``-rs`` prints it).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from iii_asgi.engine import AdapterConfig

__all__ = ["BUILTINS", "RedisServer", "missing_reason", "redis_options"]

#: The built-ins that have a Redis adapter (``EngineConfig.<name>_adapter``).
BUILTINS = ("state", "stream", "queue", "pubsub", "cron")


def redis_options(url: str, **extra: Any) -> dict[str, Any]:
    """EngineConfig options putting every built-in on the Redis at ``url``."""
    adapter = AdapterConfig("redis", redis_url=url)
    return {**{f"{name}_adapter": adapter for name in BUILTINS}, **extra}


def missing_reason() -> str | None:
    """Why the Redis tests cannot run here, or ``None`` when ``redis-server`` is installed."""
    if shutil.which("redis-server") is None:
        return (
            "redis-server is not installed (scripts/test.sh installs Debian's redis-server; "
            "apt-get install redis-server)"
        )
    return None


def _die_with_parent() -> Callable[[], None] | None:
    """On Linux, a ``preexec_fn`` that has the child killed when the test process dies
    (``PR_SET_PDEATHSIG``), so a pytest killed by a timeout leaves no ``redis-server`` behind;
    libc is loaded here, the child only makes the call."""
    try:
        prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except OSError:
        return None

    def preexec() -> None:
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    return preexec


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """``redis-server`` on 127.0.0.1:<free port> with ``data_dir`` as its directory, no
    snapshots (the engines die in these tests, not Redis).

    Example::

        server = RedisServer(tmp_path).start()
        server.url    # "redis://127.0.0.1:<port>/0"
        server.flush()
        server.stop()
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20.0) -> RedisServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(3):  # the free port may be taken before redis binds it
            self.port = _free_port()
            self.proc = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    str(self.data_dir),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--protected-mode",
                    "no",
                    "--daemonize",
                    "no",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent(),
            )
            if self._wait(timeout):
                return self
            self.stop()
        raise RuntimeError("redis-server did not start")

    def _wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)
        try:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    return False
                try:
                    if client.ping():
                        return True
                except redis.RedisError:
                    time.sleep(0.05)
            return False
        finally:
            client.close()

    def flush(self) -> None:
        """Empty every database (between tests)."""
        client = redis.Redis(host="127.0.0.1", port=self.port)
        try:
            client.flushall()
        finally:
            client.close()

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
