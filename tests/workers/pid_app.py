"""A bridged FastAPI app for multi-process tests: ``GET /pid`` names the serving process."""

from __future__ import annotations

import os

from fastapi import FastAPI

from iii_asgi import IIIBridge

app = FastAPI()


@app.get("/pid")
async def pid() -> dict[str, int]:
    return {"pid": os.getpid()}


bridge = IIIBridge(app, worker_name="pid-app")  # <name>:<pid> in each process
