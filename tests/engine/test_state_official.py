"""Interop: an official ``iii-sdk==0.25.0`` worker uses ``state::*`` and a ``state`` trigger
against our engine (builtins.md §4)."""

from __future__ import annotations

import json
import textwrap

import pytest

from iii_asgi.engine import EngineThread
from tests.official import run_official

pytestmark = pytest.mark.interop

SCRIPT = textwrap.dedent(
    """
    import json, threading, warnings
    from iii import register_worker, InitOptions
    from iii.errors import InvocationError

    warnings.simplefilter("ignore")
    client = register_worker(options=InitOptions(worker_name="official-state"))
    seen = []
    done = threading.Event()

    def on_state(event):
        seen.append(event)
        if event["event_type"] == "state:deleted":
            done.set()
        return None

    client.register_function("official::on_state", on_state)
    client.register_trigger(
        {"type": "state", "function_id": "official::on_state", "config": {"scope": "carts"}}
    )

    def call(function_id, payload):
        try:
            return {"ok": client.trigger({"function_id": function_id, "payload": payload})}
        except InvocationError as exc:
            return {"code": exc.code}

    def bound():
        listed = client.trigger({"function_id": "engine::registered-triggers::list", "payload": {}})
        return any(t["function_id"] == "official::on_state" for t in listed["registered_triggers"])

    import time
    deadline = time.monotonic() + 60  # register_trigger's frame is sent asynchronously
    while not bound() and time.monotonic() < deadline:
        time.sleep(0.02)

    def out(tag, value):
        print(tag, json.dumps(value), flush=True)

    out("SET", call("state::set", {"scope": "carts", "key": "c1", "value": {"items": []}}))
    out("UPDATE", call("state::update", {"scope": "carts", "key": "c1", "ops": [
        {"type": "append", "path": "items", "value": "apple"},
        {"type": "increment", "path": "count", "by": 1},
        {"type": "merge", "value": {"__proto__": {}}},
    ]}))
    out("GET", call("state::get", {"scope": "carts", "key": "c1"}))
    out("LIST", call("state::list", {"scope": "carts"}))
    out("GROUPS", call("state::list_groups", {}))
    out("DELETE", call("state::delete", {"scope": "carts", "key": "c1"}))
    out("BAD", call("state::get", {"scope": "carts"}))
    done.wait(60)
    out("EVENTS", [(e["event_type"], e["key"], e["new_value"]) for e in seen])
    client.shutdown()
    """
)


def tagged(line: str) -> object:
    return json.loads(line.split(" ", 1)[1])


def test_official_worker_uses_state(engine: EngineThread) -> None:
    with run_official(SCRIPT, engine.url) as proc:
        assert tagged(proc.wait_for("SET")) == {
            "ok": {"old_value": None, "new_value": {"items": []}}
        }
        update = tagged(proc.wait_for("UPDATE"))
        assert isinstance(update, dict)
        result = update["ok"]
        assert result["new_value"] == {"items": ["apple"], "count": 1}
        assert [(e["op_index"], e["code"]) for e in result["errors"]] == [
            (2, "merge.value.proto_polluted")
        ]
        assert tagged(proc.wait_for("GET")) == {"ok": {"items": ["apple"], "count": 1}}
        assert tagged(proc.wait_for("LIST")) == {"ok": [{"items": ["apple"], "count": 1}]}
        assert tagged(proc.wait_for("GROUPS")) == {"ok": {"groups": ["carts"]}}
        assert tagged(proc.wait_for("DELETE")) == {"ok": {"items": ["apple"], "count": 1}}
        assert tagged(proc.wait_for("BAD")) == {"code": "deserialization_error"}
        assert tagged(proc.wait_for("EVENTS")) == [
            ["state:created", "c1", {"items": []}],
            ["state:updated", "c1", {"items": ["apple"], "count": 1}],
            ["state:deleted", "c1", None],
        ]
