"""The official ``iii-sdk==0.25.0`` worker behind our engine's HTTP trigger server."""

from __future__ import annotations

import asyncio

import pytest
from http_support import http, routed
from official import run_official

from iii_asgi.engine import EngineThread
from tests.helpers import WAIT

pytestmark = pytest.mark.usefixtures("official_sdk")

WORKER = r"""
import time
from iii import register_worker, InitOptions
from iii_helpers.http import http, HttpResponse

iii = register_worker(options=InitOptions(worker_name="official-http"))

async def upload(req, res):
    body = await req.request_body.read_all()
    await res.status(201)
    await res.headers({"content-type": "text/plain", "x-size": str(len(body))})
    await res.writer.write(b"got:")
    await res.writer.write(body.upper())
    await res.writer.close_async()
    return None

async def ended(req, res):
    res.stream.end(b"ended " + req.path_params["name"].encode())
    return None

def plain(data):
    return {"status_code": 200, "body": {"query": data["query_params"], "body": data["body"]}}

def model(data):
    return HttpResponse(status_code=418, body={"teapot": True})

for fid, fn, path, method in (
    ("off::upload", http(upload), "/upload", "POST"),
    ("off::ended", http(ended), "/ended/:name", "GET"),
    ("off::plain", plain, "/plain", "POST"),
    ("off::model", model, "/model", "GET"),
):
    iii.register_function(fid, fn)
    iii.register_trigger({"type": "http", "function_id": fid,
                          "config": {"api_path": path, "http_method": method}})
print("READY", flush=True)
time.sleep(120)
"""


async def test_official_worker_serves_http(engine: EngineThread) -> None:
    with run_official(WORKER, engine.url) as proc:
        await asyncio.to_thread(proc.wait_for, "READY")
        await routed(engine, 4, timeout=WAIT)
        async with http(engine) as c:
            up = await c.post("/upload", content=b"hello stream")
            assert up.status_code == 201
            assert up.headers["content-type"] == "text/plain"
            assert up.headers["x-size"] == "12"
            assert up.content == b"got:HELLO STREAM"
            ended = await c.get("/ended/bob")
            assert ended.status_code == 200 and ended.content == b"ended bob"
            plain = await c.post("/plain?a=1", json={"x": [1, 2]})
            assert plain.json() == {"query": {"a": "1"}, "body": {"x": [1, 2]}}
            model = await c.get("/model")  # serialised as statusCode: honoured here (§3.13)
            assert model.status_code == 418 and model.json() == {"teapot": True}
