"""``iii-asgi run``: the app under uvicorn with the embedded engine in the same process
(real subprocess, ephemeral ports), requests through the engine's HTTP port, clean shutdown."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import iii
from tests.helpers import wait_for
from tests.processes import PATIENCE, Lines, kill_group, popen

ROOT = Path(__file__).resolve().parents[2]


class Running:
    """``python -m iii_asgi run ...`` in a subprocess (its own process group); its stdout lines
    are collected by a reader thread."""

    def __init__(
        self, *args: str, env: dict[str, str] | None = None, log_level: str = "warning"
    ) -> None:
        environment = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "OTEL_ENABLED": "false",
            **(env or {}),
        }
        environment.pop("III_URL", None) if "III_URL" not in (env or {}) else None
        self.process = popen(
            [sys.executable, "-m", "iii_asgi", "run", *args, "--log-level", log_level],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._output = Lines(self.process.stdout, "iii-asgi run")

    def wait_for(self, pattern: str, timeout: float = PATIENCE) -> re.Match[str]:
        """The first output line matching ``pattern``; fails with the output so far."""
        return self._output.wait_for(pattern, timeout)

    def wait_exit(self, timeout: float = PATIENCE) -> int:
        """The exit code once the process has exited and its output has been read."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"iii-asgi run did not exit:\n{self.output}") from None
        self.close()
        return code

    def stop(self, sig: int = signal.SIGINT, timeout: float = PATIENCE) -> int:
        """Send ``sig`` to the process; its exit code once it and its group have ended."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.wait_exit(timeout)

    def close(self) -> None:
        """End the process group (whatever is left of it) and read the output to its end."""
        kill_group(self.process)
        self._output.join()

    @property
    def output(self) -> str:
        return self._output.text


@pytest.fixture
def running() -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for proc in started:
        proc.close()


EPHEMERAL = (
    "--port",
    "0",
    "--engine-port",
    "0",
    "--engine-http-port",
    "0",
    "--engine-stream-port",
    "0",
)


def _urls(proc: Running) -> tuple[str, str]:
    engine = proc.wait_for(r"engine (http://\S+) \(HTTP triggers")[1]
    app = proc.wait_for(r"app (http://\S+) \(direct\)")[1]
    return engine, app


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_run_worker_app_on_the_embedded_engine(running: list[Running], sig: int) -> None:
    proc = Running("tests.workers.math_worker:app", *EPHEMERAL)
    running.append(proc)
    engine_http, app_url = _urls(proc)
    with httpx.Client(timeout=60) as http:
        assert http.get(f"{app_url}/healthz").json() == {"status": "ok"}
        ready = http.get(f"{app_url}/readyz")
        assert ready.status_code == 200, ready.text
        # through the engine's HTTP port: engine → worker (same process) → back
        pid = _get_until_routed(http, f"{engine_http}/pid")
        assert pid == {"pid": proc.process.pid}
    assert proc.stop(sig) == 0, proc.output
    assert "engine stopped" in proc.output
    assert "Traceback" not in proc.output


def _get_until_routed(http: httpx.Client, url: str) -> Any:
    """GET ``url`` until the route is registered (registrations are fire-and-forget)."""
    last: list[httpx.Response] = []

    def routed() -> bool:
        last[:] = [http.get(url)]
        return last[0].status_code != 404

    wait_for(routed, PATIENCE, interval=0.05)
    assert last[0].status_code == 200, last[0].text
    return last[0].json()


def test_run_reports_a_busy_engine_port(running: list[Running]) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = Running(
            "tests.workers.math_worker:app",
            "--port",
            "0",
            "--engine-port",
            str(port),
            "--engine-http-port",
            "0",
            "--engine-stream-port",
            "0",
        )
        running.append(proc)
        code = proc.wait_exit()
    assert code != 0
    assert "Is another engine running?" in proc.output


def test_run_with_an_unimportable_app_fails(running: list[Running]) -> None:
    proc = Running("tests.workers.no_such_module:app", *EPHEMERAL)
    running.append(proc)
    assert proc.wait_exit() != 0
    assert "cannot import module 'tests.workers.no_such_module'" in proc.output
    assert "engine" not in proc.output  # checked before any engine started


def test_run_with_an_app_failing_at_import_stops_the_engine(
    running: list[Running], tmp_path: Path
) -> None:
    (tmp_path / "broken_app.py").write_text("raise RuntimeError('broken at import')\n")
    proc = Running("broken_app:app", "--app-dir", str(tmp_path), *EPHEMERAL)
    running.append(proc)
    assert proc.wait_exit() != 0
    assert "broken at import" in proc.output
    assert "the app did not start" in proc.output
    assert "engine stopped" in proc.output


def test_run_the_fastapi_example_through_the_engine(running: list[Running]) -> None:
    proc = Running("examples.todo_app:app", *EPHEMERAL, env={"OTEL_ENABLED": "true"})
    running.append(proc)
    engine_http, app_url = _urls(proc)
    with httpx.Client(timeout=60) as http:
        created = http.post(f"{engine_http}/todos", json={"title": "via the engine"})
        assert created.status_code == 201, created.text
        one = http.get(f"{engine_http}/todos/1")
        assert one.json()["title"] == "via the engine"
        assert one.headers["x-served-by"] == "iii"
        assert http.get(f"{app_url}/todos/1").headers["x-served-by"] == "direct"
        summary = http.get(f"{engine_http}/todos/summary").json()
        assert summary["headline"] == "1 of 1 still open"
    assert proc.stop(signal.SIGTERM) == 0, proc.output
    assert "engine stopped" in proc.output
    assert "Traceback" not in proc.output
    assert "telemetry socket" not in proc.output  # closed before the engine stopped


RELOADABLE = """
from fastapi import FastAPI

app = FastAPI()


@app.get("/version")
async def version() -> dict:
    return {{"version": {version}}}
"""


def test_reload_restarts_the_app_but_not_the_engine(running: list[Running], tmp_path: Path) -> None:
    module = tmp_path / "reloadable.py"
    module.write_text(RELOADABLE.format(version=1))
    proc = Running(
        "reloadable:app",
        "--app-dir",
        str(tmp_path),
        "--reload",
        "--reload-dir",
        str(tmp_path),
        *EPHEMERAL,
    )
    running.append(proc)
    engine_ws = proc.wait_for(r"engine (ws://\S+) \(workers")[1]
    engine_http = proc.wait_for(r"engine (http://\S+) \(HTTP triggers")[1]
    with httpx.Client(timeout=60) as http:
        assert _get_until_routed(http, f"{engine_http}/version") == {"version": 1}
        module.write_text(RELOADABLE.format(version=2))
        proc.wait_for(r"detected changes in .*reloadable\.py")  # uvicorn's reloader saw it

        def reloaded() -> bool:  # the reloaded app registers again with the same engine
            try:
                response = http.get(f"{engine_http}/version")
            except httpx.TimeoutException:  # the old app went away mid-request: ask again
                return False
            return response.status_code == 200 and response.json() == {"version": 2}

        try:
            wait_for(reloaded, PATIENCE, interval=0.1)
        except AssertionError:
            raise AssertionError(f"the reloaded app never answered:\n{proc.output}") from None
    assert proc.output.count("(workers)") == 1  # one engine for the whole run
    assert engine_ws in proc.output
    assert proc.stop(signal.SIGINT) == 0, proc.output
    assert "engine stopped" in proc.output


@pytest.mark.parametrize("how", ["--engine", "III_URL"])
def test_run_against_a_running_engine(running: list[Running], engine: Any, how: str) -> None:
    flags = ["--engine", engine.url] if how == "--engine" else []
    env = {"III_URL": engine.url} if how == "III_URL" else None
    proc = Running("tests.workers.math_worker:app", "--port", "0", *flags, env=env)
    running.append(proc)
    proc.wait_for(rf"using the engine at {re.escape(engine.url)}")
    proc.wait_for(r"app (http://\S+) \(direct\)")
    with httpx.Client(timeout=60) as http:
        assert _get_until_routed(http, f"{engine.http_url}/pid") == {"pid": proc.process.pid}
    assert proc.stop(signal.SIGINT) == 0, proc.output
    assert "(workers)" not in proc.output  # no embedded engine was started


FACTORY = """
from fastapi import FastAPI


def create() -> FastAPI:
    app = FastAPI()

    @app.get("/made")
    async def made() -> dict:
        return {"by": "factory"}

    return app
"""


def test_run_a_factory_unbridged_app_gets_bridged(running: list[Running], tmp_path: Path) -> None:
    (tmp_path / "factory_app.py").write_text(FACTORY)
    proc = Running("factory_app:create", "--factory", "--app-dir", str(tmp_path), *EPHEMERAL)
    running.append(proc)
    engine_http, _ = _urls(proc)
    with httpx.Client(timeout=60) as http:
        assert _get_until_routed(http, f"{engine_http}/made") == {"by": "factory"}
    assert proc.stop(signal.SIGTERM) == 0, proc.output


def _registration_error(engine_ws: str, url: str) -> dict[str, Any] | None:
    """Register an HTTP-invoked function with ``url`` on a raw worker socket; the engine's
    ``error`` frame when it is refused (protocol.md §4.1), else ``None``."""
    from websockets.sync.client import connect

    with connect(engine_ws) as ws:
        assert json.loads(ws.recv(10))["type"] == "workerregistered"
        register = {"name": "probe", "pid": 1, "runtime": "python"}
        for frame in (
            {
                "type": "invokefunction",
                "function_id": "engine::workers::register",
                "data": register,
                "action": {"type": "void"},
            },
            {"type": "registerfunction", "id": "probe::metadata", "invocation": {"url": url}},
            {"type": "ping"},
        ):
            ws.send(json.dumps(frame))
        while True:
            frame = json.loads(ws.recv(10))
            if frame["type"] == "error":
                return dict(frame["error"])
            if frame["type"] == "pong":
                return None


@pytest.mark.parametrize("dev", [False, True])
def test_run_uses_the_engine_defaults_unless_dev(running: list[Running], dev: bool) -> None:
    """Without --dev, an HTTP-invoked function may not call the cloud metadata address."""
    proc = Running("tests.workers.math_worker:app", *EPHEMERAL, *(["--dev"] if dev else []))
    running.append(proc)
    engine_ws = proc.wait_for(r"engine (ws://\S+) \(workers")[1]
    proc.wait_for(r"app (http://\S+) \(direct\)")
    metadata = "https://169.254.169.254/latest/meta-data/"
    plain = "http://169.254.169.254/latest/meta-data/"
    if dev:
        assert _registration_error(engine_ws, metadata) is None
        assert _registration_error(engine_ws, plain) is None
    else:
        assert _registration_error(engine_ws, metadata) == {
            "code": "url_validation_failed",
            "message": "HTTP-invoked function probe::metadata was not registered "
            "(url_validation_failed): Private IP blocked",
        }
        error = _registration_error(engine_ws, plain)
        assert error is not None and error["message"].endswith("HTTPS is required")
    assert proc.stop() == 0, proc.output


def _engine_server_span(span: dict[str, Any]) -> bool:
    """The engine's own SERVER span of an HTTP trigger request (service ``iii``)."""
    return (
        span.get("kind") == "SPAN_KIND_SERVER"
        and span.get("service_name") == "iii"
        and span.get("attributes", {}).get("iii.function.id") == "todos::todo_summary"
    )


def test_run_defaults_trace_every_request_through_the_engine(running: list[Running]) -> None:
    """``iii-asgi run`` with its defaults (OpenTelemetry on, the console served, so engine
    tracing on): every request through the engine's HTTP port leaves the engine's own span in
    its trace store (issue 17: the cheap default keeps every invocation traced)."""
    proc = Running(
        "examples.todo_app:app", *EPHEMERAL, "--console-port", "0", env={"OTEL_ENABLED": "true"}
    )
    running.append(proc)
    engine_ws = proc.wait_for(r"engine (ws://\S+) \(workers\)")[1]
    engine_http, _ = _urls(proc)
    traces = [f"{n:032x}" for n in range(0xA11CE000, 0xA11CE000 + 8)]
    with httpx.Client(timeout=60) as http:
        _get_until_routed(http, f"{engine_http}/todos/summary")
        for trace_id in traces:
            answer = http.get(
                f"{engine_http}/todos/summary",
                headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
            )
            assert answer.status_code == 200, answer.text
    client = iii.register_worker(engine_ws, iii.InitOptions(worker_name="trace-reader"))
    try:
        for trace_id in traces:
            found: list[dict[str, Any]] = []

            def stored(trace_id: str = trace_id, found: list[dict[str, Any]] = found) -> bool:
                request = {"function_id": "engine::traces::list", "payload": {"trace_id": trace_id}}
                found[:] = client.trigger(request)["spans"]
                return any(_engine_server_span(span) for span in found)

            wait_for(stored, PATIENCE, interval=0.1)
            assert all(span["trace_id"] == trace_id for span in found), found
    finally:
        client.shutdown()
    assert proc.stop(signal.SIGTERM) == 0, proc.output


def test_run_logs_uvicorn_lifecycle_lines_of_the_app_only(running: list[Running]) -> None:
    """At ``--log-level info`` the output has uvicorn's lifecycle lines once, the app's: the
    engine's listeners (worker socket, HTTP triggers, streams, console) print their own lines
    ("iii-asgi: engine ..."), not four more "Shutting down" / "Finished server process"."""
    proc = Running("examples.todo_app:app", *EPHEMERAL, "--console-port", "0", log_level="info")
    running.append(proc)
    engine_http, _ = _urls(proc)
    with httpx.Client(timeout=60) as http:
        _get_until_routed(http, f"{engine_http}/todos/summary")
    assert proc.stop(signal.SIGINT) == 0, proc.output
    output = proc.output
    for line in ("Started server process", "Uvicorn running on", "Shutting down"):
        assert output.count(line) == 1, (line, output)
    assert output.count("Finished server process") == 1, output
    assert "Application startup complete." in output  # the app's own lines are all there
    assert "engine stopped" in output
