"""The official ``iii-sdk==0.25.0`` client against our engine (protocol.md §9)."""

from __future__ import annotations

import json

import pytest
from official import run_official

from iii_asgi.engine import EngineThread

pytestmark = pytest.mark.usefixtures("official_sdk")

SERVER = r"""
import time
from iii import register_worker, InitOptions
iii = register_worker(options=InitOptions(worker_name="server"))

def echo(data):
    return {"echo": data}

def boom(data):
    raise ValueError("kaboom")

def note(data):
    print("NOTE", data["n"], flush=True)
    return None

async def consume(data):
    reader = data["reader"]
    texts = []
    reader.on_message(texts.append)
    body = await reader.read_all()
    return {"len": len(body), "texts": texts}

iii.register_function("srv::echo", echo, description="echoes")
iii.register_function("srv::boom", boom)
iii.register_function("srv::note", note)
iii.register_function("srv::consume", consume)
print("READY", flush=True)
time.sleep(120)
"""

CLIENT = r"""
import asyncio, json
from iii import register_worker, InitOptions, TriggerAction, InvocationError
from iii.helpers import create_channel
iii = register_worker(options=InitOptions(worker_name="client"))

def out(tag, value):
    print(tag, json.dumps(value), flush=True)

out("SYNC", iii.trigger({"function_id": "srv::echo", "payload": {"a": 1}}))
out("VOID", iii.trigger({"function_id": "srv::note", "payload": {"n": 7},
                         "action": TriggerAction.Void()}))
for fid in ("srv::boom", "nope::missing"):
    try:
        iii.trigger({"function_id": fid, "payload": {}})
    except InvocationError as exc:
        out("ERR", {"code": exc.code, "message": exc.message})
listed = iii.trigger({"function_id": "engine::functions::list", "payload": {}})
out("LIST", sorted(f["function_id"] for f in listed["functions"]))

channel = create_channel(iii, 8)
async def produce():
    await channel.writer.write(b"x" * 100000)
    await channel.writer.send_message_async("hello-text")
    await channel.writer.close_async()
asyncio.run(produce())
out("CHANNEL", iii.trigger({"function_id": "srv::consume",
                            "payload": {"reader": channel.reader_ref.model_dump()}}))
iii.shutdown()
print("DONE", flush=True)
"""


def tagged(line: str) -> object:
    return json.loads(line.split(" ", 1)[1])


def test_official_sdk_end_to_end(engine: EngineThread) -> None:
    with run_official(SERVER, engine.url) as server:
        server.wait_for("READY")
        with run_official(CLIENT, engine.url) as client:
            assert tagged(client.wait_for("SYNC")) == {
                "echo": {"a": 1, "_caller_worker_id": _worker_id(engine, "client")}
            }
            assert tagged(client.wait_for("VOID")) is None
            assert server.wait_for("NOTE") == "NOTE 7"
            boom = tagged(client.wait_for("ERR"))
            assert boom == {"code": "invocation_failed", "message": "kaboom"}
            missing = tagged(client.wait_for("ERR"))
            assert missing == {
                "code": "function_not_found",
                "message": "Function nope::missing not found in namespace default.",
            }
            listed = tagged(client.wait_for("LIST"))
            assert isinstance(listed, list)
            assert [f for f in listed if f.startswith("srv::")] == [
                "srv::boom",
                "srv::consume",
                "srv::echo",
                "srv::note",
            ]
            assert "state::set" in listed  # built-ins other than engine::* are listed
            assert tagged(client.wait_for("CHANNEL")) == {"len": 100000, "texts": ["hello-text"]}
            client.wait_for("DONE")
            assert client.wait() == 0


def _worker_id(engine: EngineThread, name: str) -> str:
    for conn in engine.core.registry.workers.values():
        if conn.name == name:
            return conn.worker_id
    raise AssertionError(f"no worker named {name}")
