"""``iii-exec`` (iii_asgi.engine.workers.exec): the config file's command pipeline runs beside
the engine, restarts on watched changes, and stops with the engine."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from iii_asgi.engine import EngineThread
from iii_asgi.engine.config.file import ConfigError, load_config
from iii_asgi.engine.workers.exec.worker import expand_braces, matches
from tests.helpers import wait_for

WORKER = textwrap.dedent(
    """
    import os, time
    from iii import InitOptions, register_worker

    client = register_worker(os.environ["III_URL"], InitOptions(worker_name="exec-child"))
    client.register_function("exec::pid", lambda data: {"body": {"pid": os.getpid()}})
    client.register_trigger(
        {"type": "http", "function_id": "exec::pid",
         "config": {"api_path": "/pid", "http_method": "GET"}}
    )
    print("child ready", flush=True)
    while True:
        time.sleep(1)
    """
)


def _alive(pid: int) -> bool:
    """Running (a zombie is not: the test session reaps re-parented children late)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _pid_from_route(base: str, not_pid: int | None = None, timeout: float = 60.0) -> int:
    """The pid the child's route answers with (waiting for the child, or for a new one)."""
    found: list[int] = []

    def answered() -> bool:
        try:
            response = httpx.get(f"{base}/pid", timeout=5)
        except httpx.HTTPError:
            return False
        if response.status_code != 200:
            return False
        pid = int(response.json()["pid"])
        if pid == not_pid:
            return False
        found.append(pid)
        return True

    wait_for(answered, timeout=timeout)
    return found[-1]


def test_exec_runs_restarts_and_stops_the_pipeline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("III_URL", raising=False)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "worker.py").write_text(WORKER)
    (tmp_path / "config.yaml").write_text(
        textwrap.dedent(
            f"""
            workers:
              - name: iii-worker-manager
                config: {{host: 127.0.0.1, port: 0}}
              - name: iii-http
                config: {{host: 127.0.0.1, port: 0}}
              - name: iii-exec
                config:
                  watch: ["src/**/*.{{py,txt}}"]
                  exec:
                    - test -f src/worker.py
                    - {sys.executable} src/worker.py
            """
        )
    )
    config = load_config(tmp_path / "config.yaml", exec_stop_grace_s=2.0)
    assert config.exec_cwd == str(tmp_path.resolve())
    with EngineThread(config) as engine:
        first = _pid_from_route(engine.http_url)
        exec_worker = engine.workers.exec
        assert exec_worker is not None and exec_worker.runs == 1
        (tmp_path / "src" / "notes.txt").write_text("touched")  # a watched file changes
        second = _pid_from_route(engine.http_url, not_pid=first)
        assert second != first
        wait_for(lambda: not _alive(first), timeout=30)
        assert exec_worker.runs == 2
    deadline = time.monotonic() + 30
    while _alive(second) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(second), "engine shutdown left the exec command running"


def test_a_failing_step_stops_the_pipeline(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "ran"
    (tmp_path / "config.yaml").write_text(
        f"workers:\n  - name: iii-exec\n    config:\n      exec: ['exit 3', 'touch {marker}']\n"
    )
    config = load_config(tmp_path / "config.yaml", port=0)
    with caplog.at_level("ERROR", logger="iii_asgi.engine.exec"), EngineThread(config) as engine:
        exec_worker = engine.workers.exec
        assert exec_worker is not None
        wait_for(lambda: "exited with status 3; pipeline stopped" in caplog.text, timeout=30)
    assert not marker.exists()


def test_a_command_ignoring_sigterm_is_killed(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    script = f"trap '' TERM; echo $$ > {pidfile}; while true; do sleep 0.1; done"
    (tmp_path / "config.yaml").write_text(
        f'workers:\n  - name: iii-exec\n    config:\n      exec: ["{script}"]\n'
    )
    config = load_config(tmp_path / "config.yaml", port=0, exec_stop_grace_s=0.5)
    with EngineThread(config):
        wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), timeout=30)
        pid = int(pidfile.read_text())
        assert _alive(pid)
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):  # pragma: no cover - never leave it behind
        os.kill(pid, signal.SIGKILL)
        pytest.fail("the command survived SIGTERM + SIGKILL")


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("{exec: []}", "at least one command"),
        ("{watch: [a]}", "at least one command"),
        ("{exec: [1]}", "must be a non-empty string"),
        ("{exec: [a], colour: red}", "unknown key(s): colour"),
    ],
)
def test_bad_exec_blocks_name_the_key(tmp_path: Path, block: str, message: str) -> None:
    (tmp_path / "config.yaml").write_text(f"workers:\n  - name: iii-exec\n    config: {block}\n")
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(tmp_path / "config.yaml")


def test_watch_globs() -> None:
    assert expand_braces("src/*.{ts,js}") == ["src/*.ts", "src/*.js"]
    assert matches("src/a.py", ["src/**/*.py"])
    assert matches("src/deep/er/a.py", ["src/**/*.py"])
    assert matches("config/x.json", ["./config/*.json"])
    assert not matches("src/a.txt", ["src/**/*.py"])
    assert not matches("other/a.py", ["src/**/*.py"])
