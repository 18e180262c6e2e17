"""Processes for the limit tests: the engine with a config file, and the peers of
``limits_peers.py``, each in its own session (its process group is killed at the end)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.official import OfficialProcess

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PEERS = HERE / "limits_peers.py"

__all__ = ["Peer", "engine_process", "peer"]


class Peer(OfficialProcess):
    """A subprocess whose stdout lines are read as they come (see :class:`OfficialProcess`);
    it runs in its own session and :meth:`kill` kills its whole process group."""

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def report(self, timeout: float = 60.0) -> dict[str, Any]:
        """The next JSON line (a role's report)."""
        line = self.wait_for("{", timeout)
        result: dict[str, Any] = json.loads(line)
        return result

    def close_stdin(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()


def _spawn(args: list[str], kind: type[Peer] = Peer) -> Peer:
    env = {**os.environ, "OTEL_ENABLED": "false", "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.Popen(
        args,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    return kind(proc)


def peer(role: str, *args: object) -> Peer:
    """Start ``limits_peers.py ROLE ARGS...``; wait for ``READY`` with ``.wait_for``."""
    return _spawn([sys.executable, str(PEERS), role, *map(str, args)])


class EngineProcess(Peer):
    url: str


def engine_process(tmp_path: Path, **limits: Any) -> EngineProcess:
    """``iii-asgi engine --config`` with an ``iii-worker-manager`` block holding ``limits``
    (config-file keys), on a free port, no HTTP or stream port. ``.url`` is its address."""
    config = {"workers": [{"name": "iii-worker-manager", "config": {"port": 0, **limits}}]}
    path = tmp_path / "engine.yaml"
    path.write_text(yaml.safe_dump(config))
    args = [sys.executable, "-m", "iii_asgi", "engine", "--config", str(path), "--port", "0"]
    engine = _spawn(args, EngineProcess)
    assert isinstance(engine, EngineProcess)
    try:
        line = engine.wait_for("", 30)
        while "ws://" not in line:
            line = engine.wait_for("", 30)
    except BaseException:
        engine.kill()
        raise
    engine.url = line[line.index("ws://") :].split()[0]
    return engine
