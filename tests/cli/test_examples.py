"""README's second command, ``python examples/hello_worker.py``: the embedded engine plus a
worker that calls its functions through it, with the SDK's default settings (OpenTelemetry
on), exits 0 and prints each result and nothing alarming."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.processes import run

ROOT = Path(__file__).resolve().parents[2]


def test_hello_worker_prints_its_results_and_exits_cleanly() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OTEL_ENABLED": "true"}
    env.pop("III_URL", None)
    done = run([sys.executable, "examples/hello_worker.py"], cwd=ROOT, env=env, text=True)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "math::add -> 5" in out
    assert "orders::place -> {'accepted': True, 'item': 'book', 'total_items': 2}" in out
    assert "demo::fail -> invocation_failed this function always fails" in out
    assert "nope::missing -> function_not_found" in out
    assert "'math::add'" in out.split("engine::functions::list ->")[1]
    # telemetry is flushed and closed before the engine stops: no dropped-frame warnings
    assert "telemetry socket" not in done.stderr + out, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
