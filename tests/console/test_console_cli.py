"""``iii-asgi engine`` serves the console on ``--console-port`` and prints its token URL;
``--console-port off`` serves none; tracing follows the console unless given."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import httpx

from iii_asgi.cli import with_console_tracing
from iii_asgi.engine import EngineConfig
from tests.processes import kill_group, popen

from .support import ROOT


def engine_lines(*flags: str, until: str) -> list[str]:
    """Start ``iii-asgi engine --port 0 <flags>``, read its output up to a line containing
    ``until`` (opening the console when that line names it), SIGTERM it; every line it
    printed."""
    args = [sys.executable, "-m", "iii_asgi", "engine", "--port", "0", "--http-port", "off"]
    proc = popen(
        [*args, "--stream-port", "off", *flags],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip())
            if until in line:
                break
        if lines and "console on" in lines[-1]:
            login = re.search(r"(http://\S+)/\?token=(\S+)", lines[-1])
            assert login is not None, lines
            answer = httpx.get(login[0], timeout=30)
            assert answer.status_code == 303
            assert answer.headers["location"] == "/"
            page = httpx.get(login[1] + "/", cookies=answer.cookies, timeout=30)
            assert page.status_code == 200 and "Read-only" not in page.text
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rest, _ = proc.communicate(timeout=60)
        finally:
            kill_group(proc)
    return lines + rest.splitlines()


def test_engine_prints_the_console_url_with_its_token() -> None:
    lines = engine_lines("--console-port", "0", until="console on")
    assert lines[0].startswith("iii engine listening on ws://")
    console = [line for line in lines if "console on" in line]
    assert len(console) == 1
    assert re.fullmatch(r"iii console on http://127\.0\.0\.1:\d+/\?token=\S{32,}", console[0])


def test_console_port_off_serves_no_console() -> None:
    lines = engine_lines("--console-port", "off", until="listening on")
    assert lines[-1] == "iii engine stopped"
    assert not any("console" in line for line in lines)


def test_tracing_follows_the_console_unless_given() -> None:
    assert with_console_tracing(None, EngineConfig(console_port=3113)) is True
    assert with_console_tracing(None, EngineConfig(console_port=None)) is False
    assert with_console_tracing(None, EngineConfig(console_port=None, tracing=True)) is True
    assert with_console_tracing(False, EngineConfig(console_port=3113)) is False
    assert with_console_tracing(True, EngineConfig(console_port=None)) is True
