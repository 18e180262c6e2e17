"""A pure worker for subprocess tests: ``uvicorn tests.workers.math_worker:app``.

``math::add`` is an iii function; ``math::pid`` answers an ``http`` trigger (``GET /pid``) with
the serving process's pid, so tests can tell owner and standby processes apart.
"""

from __future__ import annotations

import os
from typing import Any

from iii_asgi import WorkerApp

app = WorkerApp(worker_name="math")


@app.function("math::add")
async def add(data: dict[str, Any]) -> int:
    return int(data["a"]) + int(data["b"])


@app.function("math::pid")
async def pid(request: dict[str, Any]) -> dict[str, Any]:
    return {"status_code": 200, "body": {"pid": os.getpid()}}


app.client.register_trigger(
    {"type": "http", "function_id": "math::pid", "config": {"api_path": "/pid"}}
)
