"""The HTTP port answers only known ``Host`` names (issue 12: DNS rebinding), and sends CORS
headers only when ``cors`` is configured (builtins.md §3.11 as changed by issue 12)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

from http_support import route, routed, worker
from limits_support import request

from iii_asgi.engine import EngineConfig
from iii_asgi.engine.config.engine import CorsConfig
from iii_asgi.engine.config.file import load_config
from iii_asgi.engine.workers.http.hosts import allowed_hosts


def status_for(port: int, host: str | None) -> int:
    """Status of ``GET /h`` with ``host`` (None: no Host header, HTTP/1.0)."""
    import socket

    with socket.create_connection(("127.0.0.1", port)) as sock:
        if host is None:
            sock.sendall(b"GET /h HTTP/1.0\r\n\r\n")
        else:
            sock.sendall(f"GET /h HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split()[1])


async def test_loopback_default_refuses_foreign_hosts(engine_factory: Any) -> None:
    engine = engine_factory()  # http_host 127.0.0.1, http_allowed_hosts None
    port = engine.engine.http_port
    async with worker(engine) as w:
        route(w, "h::fn", lambda d: {"body": "ok"}, "/h")
        await routed(engine)
        loop = asyncio.get_running_loop()

        async def status(host: str | None) -> int:
            return await loop.run_in_executor(None, status_for, port, host)

        for host in ("localhost", f"localhost:{port}", "127.0.0.1:1", "[::1]:3111", "LocalHost."):
            assert await status(host) == 200, host
        assert await status("app.localhost:8080") == 200
        assert await status(None) == 200  # no Host at all: not a browser
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example", "[::2]"):
            assert await status(host) == 400, host
        assert (await request(port, "GET", "/h"))[0] == 200  # host 127.0.0.1
        r = await loop.run_in_executor(None, status_for, port, "localhost.evil.example")
        assert r == 400


async def test_configured_hosts(engine_factory: Any) -> None:
    engine = engine_factory(http_allowed_hosts=["app.example", "*.apps.example"])
    port = engine.engine.http_port
    async with worker(engine) as w:
        route(w, "h::fn", lambda d: {"body": "ok"}, "/h")
        await routed(engine)
        loop = asyncio.get_running_loop()
        cases = {
            "app.example": 200,
            "APP.example:443": 200,
            "a.apps.example": 200,
            "apps.example": 400,  # the wildcard is for subdomains
            "localhost": 400,  # the list replaces the loopback default
            "evil.example": 400,
        }
        for host, expected in cases.items():
            assert await loop.run_in_executor(None, status_for, port, host) == expected, host


def test_defaults_of_the_host_check() -> None:
    assert allowed_hosts(EngineConfig(http_host="0.0.0.0")) is None  # names unknown: any
    assert allowed_hosts(EngineConfig(http_allowed_hosts=["*"])) is None
    check = allowed_hosts(EngineConfig(http_host="127.0.0.5"))
    assert check is not None and check("127.0.0.5:80") and check("localhost")
    check = allowed_hosts(EngineConfig(http_host="::1"))
    assert check is not None and check("[::1]:3111") and not check("[::2]")


def test_config_file_keys(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "workers:\n"
        "  - name: iii-http\n"
        "    config:\n"
        "      allowed_hosts: [app.example]\n"
        "      max_header_bytes: 32768\n"
        "      max_request_line_bytes: 4096\n"
        "      max_headers: 50\n"
        "      header_timeout_ms: 5000\n"
        "      body_timeout_ms: 6000\n"
        "      keep_alive_timeout_ms: 7000\n"
        "      max_connections: 300\n"
        "      body_budget_bytes: 1048576\n"
        "      max_body_bytes: 65536\n"
    )
    config = load_config(path)
    assert config.http_allowed_hosts == ["app.example"]
    assert (config.http_max_header_bytes, config.http_max_request_line_bytes) == (32768, 4096)
    assert (config.http_max_headers, config.http_max_connections) == (50, 300)
    assert config.http_header_timeout_ms == 5000 and config.http_body_timeout_ms == 6000
    assert config.http_keep_alive_timeout_ms == 7000
    assert (config.http_body_budget_bytes, config.http_max_body_bytes) == (1 << 20, 65536)
    assert config.http_cors is None  # no cors block: no CORS headers
    path.write_text("workers:\n  - name: iii-http\n    config: {cors: {}}\n")
    assert load_config(path).http_cors == CorsConfig()  # the real engine's permissive layer
    path.write_text("workers:\n  - name: iii-http\n    config: {max_headers: 0}\n")
    try:
        load_config(path)
    except ValueError as exc:
        assert "max_headers must be an integer >= 1" in str(exc)
    else:
        raise AssertionError("max_headers: 0 accepted")


async def test_cli_allowed_host_flag() -> None:
    code = "from iii_asgi.cli import main; main()"
    args = ["engine", "--port", "0", "--http-port", "0", "--stream-port", "off"]
    args += ["--http-allowed-host", "app.example"]
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        loop = asyncio.get_running_loop()
        port = 0
        while not port:
            line = await loop.run_in_executor(None, proc.stdout.readline)
            assert line, "engine did not start"
            if "HTTP triggers on" in line:
                port = int(line.rsplit(":", 1)[1])
        assert await loop.run_in_executor(None, status_for, port, "app.example") == 404
        assert await loop.run_in_executor(None, status_for, port, "localhost") == 400
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
