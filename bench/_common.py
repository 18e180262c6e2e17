"""Helpers shared by the benchmarks (not a benchmark itself)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start_engine(*extra: str) -> tuple[subprocess.Popen[str], str]:
    """Start ``iii-asgi engine`` from this checkout on a free worker port, with no HTTP trigger
    or stream server and no console (so no engine spans either), plus ``extra`` flags (e.g.
    ``--data-dir DIR``).

    Returns the process and its ``ws://`` URL, read from its first output line; raises
    ``RuntimeError`` (and kills the process) when that line names no URL."""
    servers = ("--http-port", "off", "--stream-port", "off", "--console-port", "off")
    proc = subprocess.Popen(
        [sys.executable, "-m", "iii_asgi", "engine", "--port", "0", *servers, *extra],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "ws://" not in line:
        proc.kill()
        raise RuntimeError(f"engine did not start: {line!r}")
    return proc, line[line.index("ws://") :].split()[0]
