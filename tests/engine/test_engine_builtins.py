"""Engine built-in functions (protocol.md §7)."""

from __future__ import annotations

import pytest
from engine_wire import Wire

from iii_asgi.engine import EngineThread


async def setup(engine: EngineThread) -> tuple[Wire, Wire]:
    worker = await Wire.connect(
        engine.url,
        name="shop",
        namespace="orders",
        version="1.2",
        description="sells\u202e things\x07",
        os="Linux",
    )
    await worker.send(
        {
            "type": "registerfunction",
            "id": "shop::buy",
            "description": "Buy it",
            "request_format": {"type": "object"},
            "metadata": {"tier": 1},
        }
    )
    await worker.send(
        {"type": "registerfunction", "id": "shop::hidden", "metadata": {"internal": True}}
    )
    await worker.send({"type": "registertriggertype", "id": "tick", "description": "Ticks"})
    await worker.send(
        {
            "type": "registertrigger",
            "id": "b1",
            "trigger_type": "tick",
            "function_id": "shop::buy",
            "config": {"every": 1},
            "namespace": "orders",
        }
    )
    await worker.sync()
    caller = await Wire.connect(engine.url)
    return worker, caller


async def test_functions_list(engine: EngineThread) -> None:
    _, caller = await setup(engine)
    listed = await caller.result("engine::functions::list")
    builtin = [f for f in listed["functions"] if f["worker_name"] == "iii-engine"]
    ids = {f["function_id"] for f in builtin}
    assert ids >= {"state::set", "state::list_groups", "engine::queue::enqueue", "publish"}
    # engine::* are hidden except engine::queue::* (builtins.md §7.4, §10.1)
    assert not [i for i in ids if i.startswith("engine::") and not i.startswith("engine::queue::")]
    assert {"functions": [f for f in listed["functions"] if f not in builtin]} == {
        "functions": [
            {
                "function_id": "shop::buy",
                "namespace": "orders",
                "worker_name": "shop",
                "description": "Buy it",
                "metadata": {"tier": 1},
            }
        ]
    }
    everything = await caller.result("engine::functions::list", {"include_internal": True})
    ids = [f["function_id"] for f in everything["functions"]]
    assert "engine::channels::create" in ids and "shop::hidden" in ids
    assert ids == sorted(ids)
    assert (await caller.result("engine::functions::list", {"search": "buy"}))["functions"]
    assert not (await caller.result("engine::functions::list", {"prefix": "x::"}))["functions"]
    assert (await caller.result("engine::functions::list", {"worker": "shop"}))["functions"]


async def test_functions_info(engine: EngineThread) -> None:
    _, caller = await setup(engine)
    detail = await caller.result("engine::functions::info", {"function_id": "shop::buy"})
    assert detail["namespace"] == "orders"  # unique non-default entry
    assert detail["request_schema"] == {"type": "object"}
    assert detail["registered_triggers"] == [
        {"id": "b1", "trigger_type": "tick", "config": {"every": 1}}
    ]
    missing = await caller.call("engine::functions::info", {"function_id": "nope"})
    assert missing["error"]["code"] == "NOT_FOUND"
    batch = await caller.result(
        "engine::functions::info", {"function_ids": ["shop::buy", "nope"], "namespace": "orders"}
    )
    assert batch["functions"][1] == {"function_id": "nope", "error": "not_found"}
    too_many = await caller.call("engine::functions::info", {"function_ids": ["x"] * 33})
    assert too_many["error"]["code"] == "INVALID_ARGUMENTS"


async def test_workers_list_and_info(engine: EngineThread) -> None:
    worker, caller = await setup(engine)
    listed = await caller.result("engine::workers::list", {})
    by_name = {w["name"]: w for w in listed["workers"]}
    assert by_name["iii-engine"]["runtime"] == "engine"
    assert by_name["iii-engine"]["isolation"] == "in-process"
    shop = by_name["shop"]
    assert shop["id"] == worker.worker_id and shop["namespace"] == "orders"
    assert shop["version"] == "1.2" and shop["function_count"] == 2
    assert shop["description"] == "sells things"  # sanitised
    assert len(listed["workers"]) == 2  # the caller reported no pid: hidden
    python = await caller.result("engine::workers::list", {"runtime": "python"})
    assert [w["name"] for w in python["workers"]] == ["shop"]
    info = await caller.result("engine::workers::info", {"name": "shop"})
    assert info["worker"]["pid"] == 1 and info["worker"]["internal"] is False
    assert {f["function_id"] for f in info["functions"]} == {"shop::buy", "shop::hidden"}
    assert info["trigger_types"][0]["id"] == "tick"
    assert info["registered_triggers"][0]["id"] == "b1"
    missing = await caller.call("engine::workers::info", {"name": "ghost"})
    assert missing["error"]["code"] == "NOT_FOUND"


async def test_triggers_and_registered_triggers(engine: EngineThread) -> None:
    _, caller = await setup(engine)
    types = await caller.result("engine::triggers::list", {})
    by_id = {t["id"]: t for t in types["triggers"]}
    # the engine's own: http (builtins.md §3), cron (§9), subscribe (§8), durable:subscriber (§7.3)
    assert {"http", "cron", "subscribe", "durable:subscriber"} <= set(by_id)
    http, tick = by_id["http"], by_id["tick"]
    assert http["id"] == "http" and http["description"] == "HTTP API trigger"
    assert tick == {
        "id": "tick",
        "namespace": "orders",
        "worker_name": "shop",
        "description": "Ticks",
    }
    internal = await caller.result("engine::triggers::list", {"include_internal": True})
    assert {"engine::functions-available", "engine::workers-available"} <= {
        t["id"] for t in internal["triggers"]
    }
    info = await caller.result("engine::triggers::info", {"id": "tick", "namespace": "orders"})
    assert info["instance_count"] == 1
    bindings = await caller.result("engine::registered-triggers::list", {})
    assert bindings == {
        "registered_triggers": [
            {
                "id": "b1",
                "trigger_type": "tick",
                "function_id": "shop::buy",
                "worker_name": "shop",
                "config": {"every": 1},
                "config_summary": '{"every":1}',
            }
        ]
    }
    one = await caller.result("engine::registered-triggers::info", {"id": "b1"})
    assert one["trigger"]["id"] == "tick" and one["function"]["function_id"] == "shop::buy"


async def test_workers_register_effects(engine: EngineThread) -> None:
    worker = await Wire.connect(engine.url)
    frame = await worker.call("engine::workers::register", {"name": "  ", "pid": 7})
    assert frame["result"] == {"success": True}
    blank = await worker.call("engine::workers::register", {"namespace": " "})
    assert blank["error"]["code"] == "INVALID_NAMESPACE"
    conn = engine.core.registry.workers[worker.worker_id]
    assert conn.name is None and conn.info["runtime"] == "unknown"
    long = await worker.call("engine::workers::register", {"name": "n" * 500})
    assert long["result"] == {"success": True}
    assert conn.name == "n" * 280


@pytest.mark.parametrize(
    ("function_id", "data", "reason"),
    [
        ("engine::channels::create", {"buffer_size": "big"}, "buffer_size"),
        ("engine::channels::create", [1], "expected an object"),
        ("engine::functions::list", {"include_internal": "yes"}, "include_internal"),
        ("engine::workers::info", {}, "missing field `name`"),
        ("engine::register_trigger", {"trigger_type": "x"}, "function_id"),
        ("engine::unregister_trigger", {"id": 3}, "`id`"),
        ("engine::functions::info", {}, "function_id"),
    ],
)
async def test_bad_input_is_deserialization_error(
    engine: EngineThread, function_id: str, data: object, reason: str
) -> None:
    caller = await Wire.connect(engine.url)
    frame = await caller.call(function_id, data)
    assert frame["error"]["code"] == "deserialization_error"
    assert frame["error"]["message"].startswith(f"Failed to deserialize input for {function_id}:")
    assert reason in frame["error"]["message"]
