"""The state built-in through real sockets (builtins.md §4, §5): functions, update ops, errors,
the ``state`` trigger."""

from __future__ import annotations

from typing import Any

import pytest
from engine_wire import Wire

from iii_asgi.engine import EngineThread
from tests.helpers import wait_until

pytestmark = pytest.mark.adapters

DOC_URL = "https://iii.dev/docs/workers/iii-state#error-codes"
_MISSING: Any = object()


async def caller(engine: EngineThread) -> Wire:
    return await Wire.connect(engine.url)


async def error_of(wire: Wire, function_id: str, data: Any) -> dict[str, Any]:
    frame = await wire.call(function_id, data)
    assert "result" not in frame, frame
    error: dict[str, Any] = frame["error"]
    return error


async def test_set_get_delete_shapes(engine: EngineThread) -> None:
    wire = await caller(engine)
    assert await wire.result("state::get", {"scope": "users", "key": "u1"}) is None
    first = await wire.result("state::set", {"scope": "users", "key": "u1", "value": {"n": 1}})
    assert first == {"old_value": None, "new_value": {"n": 1}}
    second = await wire.result("state::set", {"scope": "users", "key": "u1", "data": {"n": 2}})
    assert second == {"old_value": {"n": 1}, "new_value": {"n": 2}}  # `data` aliases `value`
    assert await wire.result("state::get", {"scope": "users", "key": "u1"}) == {"n": 2}
    nulled = await wire.result("state::set", {"scope": "users", "key": "z", "value": None})
    assert nulled == {"old_value": None, "new_value": None}
    # delete answers the raw value, not {old_value} (§4.1)
    assert await wire.result("state::delete", {"scope": "users", "key": "u1"}) == {"n": 2}
    assert await wire.result("state::delete", {"scope": "users", "key": "u1"}) is None
    assert await wire.result("state::get", {"scope": "users", "key": "u1"}) is None


async def test_list_and_list_groups(engine: EngineThread) -> None:
    wire = await caller(engine)
    for key, value in [("b", 1), ("a", 2), ("c", 3)]:
        await wire.result("state::set", {"scope": "s2", "key": key, "value": value})
    await wire.result("state::set", {"scope": "s2", "key": "b", "value": 10})  # keeps position
    await wire.result("state::set", {"scope": "s1", "key": "x", "value": 0})
    await wire.result("state::delete", {"scope": "s1", "key": "x"})  # s1 stays listed (§4.2)
    assert await wire.result("state::list", {"scope": "s2"}) == [10, 2, 3]
    assert await wire.result("state::list", {"scope": "unknown"}) == []
    assert await wire.result("state::list_groups", {}) == {"groups": ["s1", "s2"]}
    assert await wire.result("state::list_groups") == {"groups": ["s1", "s2"]}


@pytest.mark.parametrize(
    ("function_id", "data", "detail"),
    [
        ("state::set", {"scope": "s", "key": "k"}, "missing field `value`"),
        ("state::set", {"key": "k", "value": 1}, "missing field `scope`"),
        ("state::get", {"scope": "s", "key": 5}, "invalid type for `key`"),
        ("state::get", [1], "expected an object"),
        ("state::delete", {"scope": "s"}, "missing field `key`"),
        ("state::update", {"scope": "s", "key": "k"}, "missing field `ops`"),
        ("state::update", {"scope": "s", "key": "k", "ops": {}}, "expected a sequence"),
        (
            "state::update",
            {"scope": "s", "key": "k", "ops": [{"type": "increment", "path": "n", "by": 1.5}]},
            "expected i64",
        ),
        (
            "state::update",
            {"scope": "s", "key": "k", "ops": [{"type": "rename", "path": "n"}]},
            "unknown variant `rename`",
        ),
        (
            "state::update",
            {"scope": "s", "key": "k", "ops": [{"type": "merge", "path": 3, "value": {}}]},
            "`path` must be a string or an array",
        ),
        ("state::list", {}, "missing field `scope`"),
        ("state::list_groups", "x", "expected an object"),
    ],
)
async def test_bad_input(engine: EngineThread, function_id: str, data: Any, detail: str) -> None:
    wire = await caller(engine)
    error = await error_of(wire, function_id, data)
    assert error["code"] == "deserialization_error"
    assert error["message"].startswith(f"Failed to deserialize input for {function_id}: ")
    assert detail in error["message"]
    if function_id == "state::update":  # a bad op fails the whole call: nothing stored
        assert await wire.result("state::get", {"scope": "s", "key": "k"}) is None


async def test_value_too_large(engine_factory: Any) -> None:
    engine = engine_factory(state_max_value_bytes=10)
    wire = await caller(engine)
    ok = await wire.result("state::set", {"scope": "s", "key": "k", "value": "12345678"})
    assert ok["new_value"] == "12345678"  # 10 bytes encoded
    error = await error_of(wire, "state::set", {"scope": "s", "key": "k", "value": "123456789"})
    assert error["code"] == "VALUE_TOO_LARGE"
    assert await wire.result("state::get", {"scope": "s", "key": "k"}) == "12345678"


async def test_adapter_failures_map_to_error_codes(engine: EngineThread) -> None:
    wire = await caller(engine)
    engine.run(engine.workers.state.storage.close())  # every adapter call now fails
    cases = [
        ("state::set", {"scope": "s", "key": "k", "value": 1}, "SET_ERROR"),
        ("state::get", {"scope": "s", "key": "k"}, "GET_ERROR"),
        ("state::delete", {"scope": "s", "key": "k"}, "DELETE_ERROR"),
        ("state::update", {"scope": "s", "key": "k", "ops": []}, "UPDATE_ERROR"),
        ("state::list", {"scope": "s"}, "LIST_ERROR"),
        ("state::list_groups", {}, "LIST_GROUPS_ERROR"),
    ]
    for function_id, data, code in cases:
        error = await error_of(wire, function_id, data)
        assert (function_id, error["code"]) == (function_id, code)
        assert "closed" in error["message"]
    engine.run(engine.workers.state.storage.open())


# (stored value or _MISSING, ops, new value, [(op_index, code)])
UPDATE_CASES: list[tuple[Any, list[dict[str, Any]], Any, list[tuple[int, str]]]] = [
    (_MISSING, [{"type": "set", "path": "", "value": 5}], 5, []),
    (_MISSING, [{"type": "set", "path": "a", "value": 1}], {"a": 1}, []),
    (_MISSING, [{"type": "set", "path": ""}], None, []),
    ({"a": 1}, [{"type": "set", "path": "a", "value": None}], {"a": None}, []),
    ({"a": 1}, [{"type": "set", "path": "a.b", "value": 2}], {"a": 1, "a.b": 2}, []),
    (5, [{"type": "set", "path": "a", "value": 1}], 5, [(0, "set.target_not_object")]),
    ({}, [{"type": "set", "path": "__proto__", "value": 1}], {}, [(0, "set.path.proto_polluted")]),
    ({"a": 1}, [{"type": "merge", "value": {"b": 2}}], {"a": 1, "b": 2}, []),
    ({"a": 1}, [{"type": "merge", "path": [], "value": {"a": 3}}], {"a": 3}, []),
    ({"a": 1}, [{"type": "merge", "path": "x", "value": {"b": 2}}], {"a": 1, "x": {"b": 2}}, []),
    (5, [{"type": "merge", "value": {"b": 2}}], 5, []),  # root not an object: silently ignored
    (5, [{"type": "merge", "path": ["p", "q"], "value": {"b": 1}}], {"p": {"q": {"b": 1}}}, []),
    ({"p": 3}, [{"type": "merge", "path": ["p"], "value": {"b": 1}}], {"p": {"b": 1}}, []),
    ({}, [{"type": "merge", "value": 3}], {}, [(0, "merge.value.not_an_object")]),
    (
        {},
        [{"type": "merge", "value": {f"k{i}": i for i in range(1025)}}],
        {},
        [(0, "merge.value.too_many_keys")],
    ),
    ({}, [{"type": "merge", "value": {"constructor": 1}}], {}, [(0, "merge.value.proto_polluted")]),
    ({}, [{"type": "merge", "value": {"a": {"b": {}}}}], {"a": {"b": {}}}, []),
    (
        {},
        [{"type": "merge", "path": ["a", "prototype"], "value": {}}],
        {},
        [(0, "merge.path.proto_polluted")],
    ),
    (
        {},
        [{"type": "merge", "path": ["a", ""], "value": {}}],
        {},
        [(0, "merge.path.empty_segment")],
    ),
    (
        {},
        [{"type": "merge", "path": ["x" * 257], "value": {}}],
        {},
        [(0, "merge.path.segment_too_long")],
    ),
    ({}, [{"type": "merge", "path": ["a"] * 33, "value": {}}], {}, [(0, "merge.path.too_deep")]),
    (_MISSING, [{"type": "increment", "path": "", "by": 3}], 3, []),
    (
        _MISSING,
        [{"type": "increment", "path": "n", "by": 2}, {"type": "increment", "path": "n", "by": 3}],
        {"n": 5},
        [],
    ),
    (5, [{"type": "increment", "path": "", "by": 2}], 7, []),
    ({"f": 1.5}, [{"type": "increment", "path": "f", "by": 1}], {"f": 2.5}, []),
    (
        {"n": "x"},
        [{"type": "increment", "path": "n", "by": 1}],
        {"n": "x"},
        [(0, "increment.not_number")],
    ),
    (
        {"n": True},
        [{"type": "increment", "path": "n", "by": 1}],
        {"n": True},
        [(0, "increment.not_number")],
    ),
    ("s", [{"type": "increment", "path": "", "by": 1}], "s", [(0, "increment.not_number")]),
    (5, [{"type": "increment", "path": "n", "by": 1}], 5, [(0, "increment.target_not_object")]),
    (
        {"n": 2**63 - 1},
        [{"type": "increment", "path": "n", "by": 1}],
        {"n": 2**63 - 1},
        [(0, "increment.not_number")],
    ),
    (
        {},
        [{"type": "increment", "path": "__proto__", "by": 1}],
        {},
        [(0, "increment.path.proto_polluted")],
    ),
    (
        {},
        [{"type": "increment", "path": "x" * 257, "by": 1}],
        {},
        [(0, "increment.path.segment_too_long")],
    ),
    (_MISSING, [{"type": "decrement", "path": "n", "by": 2}], {"n": -2}, []),
    (_MISSING, [{"type": "decrement", "path": "", "by": 2}], -2, []),
    ({"n": 5}, [{"type": "decrement", "path": "n", "by": 7}], {"n": -2}, []),
    (
        {"n": []},
        [{"type": "decrement", "path": "n", "by": 1}],
        {"n": []},
        [(0, "decrement.not_number")],
    ),
    ([], [{"type": "decrement", "path": "n", "by": 1}], [], [(0, "decrement.target_not_object")]),
    (
        {"n": -(2**63)},
        [{"type": "decrement", "path": "n", "by": 1}],
        {"n": -(2**63)},
        [(0, "decrement.not_number")],
    ),
    (_MISSING, [{"type": "append", "value": 1}], [1], []),
    (_MISSING, [{"type": "append", "path": "", "value": "ab"}], "ab", []),
    ({}, [{"type": "append", "value": 1}], {}, [(0, "append.type_mismatch")]),
    ([0], [{"type": "append", "path": [], "value": 1}], [0, 1], []),
    ("a", [{"type": "append", "value": "b"}], "ab", []),
    ("a", [{"type": "append", "value": 1}], "a", [(0, "append.type_mismatch")]),
    (None, [{"type": "append", "value": {"x": 1}}], [{"x": 1}], []),
    (7, [{"type": "append", "value": 1}], 7, [(0, "append.type_mismatch")]),
    ({"l": [1]}, [{"type": "append", "path": "l", "value": 2}], {"l": [1, 2]}, []),
    ({"s": "a"}, [{"type": "append", "path": "s", "value": "b"}], {"s": "ab"}, []),
    (
        {"s": "a"},
        [{"type": "append", "path": "s", "value": 1}],
        {"s": "a"},
        [(0, "append.type_mismatch")],
    ),
    ({}, [{"type": "append", "path": "k", "value": "x"}], {"k": "x"}, []),
    ({}, [{"type": "append", "path": "k", "value": 1}], {"k": [1]}, []),
    (
        {"o": {}},
        [{"type": "append", "path": "o", "value": 1}],
        {"o": {}},
        [(0, "append.type_mismatch")],
    ),
    (
        {"b": True},
        [{"type": "append", "path": "b", "value": 1}],
        {"b": True},
        [(0, "append.type_mismatch")],
    ),
    ({}, [{"type": "append", "path": ["a", "b"], "value": "x"}], {"a": {"b": ["x"]}}, []),
    ({"a": 1}, [{"type": "append", "path": ["a", "b"], "value": 1}], {"a": {"b": [1]}}, []),
    (
        {"a": {"b": [0]}},
        [{"type": "append", "path": ["a", "b"], "value": 1}],
        {"a": {"b": [0, 1]}},
        [],
    ),
    (5, [{"type": "append", "path": "k", "value": 1}], 5, [(0, "append.target_not_object")]),
    (5, [{"type": "append", "path": ["a", "b"], "value": 1}], 5, [(0, "append.target_not_object")]),
    (
        {},
        [{"type": "append", "path": ["__proto__"], "value": 1}],
        {},
        [(0, "append.path.proto_polluted")],
    ),
    (
        {},
        [{"type": "append", "path": ["a", ""], "value": 1}],
        {},
        [(0, "append.path.empty_segment")],
    ),
    ({"a": 1, "b": 2}, [{"type": "remove", "path": "a"}], {"b": 2}, []),
    ({"a": 1}, [{"type": "remove", "path": "zz"}], {"a": 1}, []),
    ({"a": 1}, [{"type": "remove", "path": ""}], None, []),
    (5, [{"type": "remove", "path": "a"}], 5, [(0, "remove.target_not_object")]),
    ({}, [{"type": "remove", "path": "constructor"}], {}, [(0, "remove.path.proto_polluted")]),
    # errors do not abort: later ops still run; all failing on a missing key stores {}
    (
        _MISSING,
        [
            {"type": "set", "path": "a", "value": 1},
            {"type": "merge", "value": 3},
            {"type": "set", "path": "b", "value": 2},
            {"type": "increment", "path": "a", "by": 1},
        ],
        {"a": 2, "b": 2},
        [(1, "merge.value.not_an_object")],
    ),
    (_MISSING, [{"type": "merge", "value": 3}], {}, [(0, "merge.value.not_an_object")]),
    (_MISSING, [], {}, []),
    # missing-default is cleared by the first op that takes effect
    (
        _MISSING,
        [{"type": "set", "path": "a", "value": 1}, {"type": "increment", "path": "", "by": 1}],
        {"a": 1},
        [(1, "increment.not_number")],
    ),
]


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"x": value}
    return value


async def test_update_ops(engine: EngineThread) -> None:
    wire = await caller(engine)
    cases = [
        *UPDATE_CASES,
        ({}, [{"type": "merge", "value": nested(16)}], nested(16), []),
        ({}, [{"type": "merge", "value": nested(17)}], {}, [(0, "merge.value.too_deep")]),
    ]
    for index, (stored, ops, expected, expected_errors) in enumerate(cases):
        key = f"case{index}"
        if stored is not _MISSING:
            await wire.result("state::set", {"scope": "ops", "key": key, "value": stored})
        result = await wire.result("state::update", {"scope": "ops", "key": key, "ops": ops})
        where = f"case {index}: {ops}"
        assert result["old_value"] == (None if stored is _MISSING else stored), where
        assert result["new_value"] == expected, where
        errors = result.get("errors")
        if not expected_errors:
            assert "errors" not in result, where  # omitted when empty
            continue
        assert errors is not None, where
        assert [(e["op_index"], e["code"]) for e in errors] == expected_errors, where
        assert all(e["doc_url"] == DOC_URL and e["message"] for e in errors), where
        stored_now = await wire.result("state::get", {"scope": "ops", "key": key})
        assert stored_now == expected, where  # always written back


# -- the state trigger (§4.3) ------------------------------------------------------------------


async def handler(engine: EngineThread, function_id: str, **config: Any) -> Wire:
    worker = await Wire.connect(engine.url, name=function_id)  # namespace fixed: no grace wait
    await worker.send({"type": "registerfunction", "id": function_id})
    await worker.send(
        {
            "type": "registertrigger",
            "id": f"t-{function_id}",
            "trigger_type": "state",
            "function_id": function_id,
            "config": config,
        }
    )
    await worker.sync()
    return worker


def state_event(kind: str, scope: str, key: str, old: Any, new: Any) -> dict[str, Any]:
    """The payload of a ``state`` trigger (builtins.md §4.3); ``kind``: created/updated/deleted."""
    return {
        "type": "state",
        "event_type": f"state:{kind}",
        "scope": scope,
        "key": key,
        "old_value": old,
        "new_value": new,
    }


async def test_trigger_events_in_order(engine: EngineThread) -> None:
    worker = await handler(engine, "on::state", scope="users")
    wire = await caller(engine)
    await wire.result("state::set", {"scope": "users", "key": "u1", "value": {"n": 1}})
    await wire.result(
        "state::update",
        {"scope": "users", "key": "u1", "ops": [{"type": "increment", "path": "n", "by": 1}]},
    )
    await wire.result("state::delete", {"scope": "users", "key": "u1"})
    await wire.result("state::delete", {"scope": "users", "key": "never"})
    await wire.result("state::set", {"scope": "other", "key": "u1", "value": 1})  # filtered
    await wire.result(
        "state::update", {"scope": "users", "key": "fresh", "ops": []}
    )  # update of a missing key: created
    calls = [(await worker.serve_one())["data"] for _ in range(5)]
    assert calls == [
        state_event("created", "users", "u1", None, {"n": 1}),
        state_event("updated", "users", "u1", {"n": 1}, {"n": 2}),
        state_event("deleted", "users", "u1", {"n": 2}, None),
        state_event("deleted", "users", "never", None, None),
        state_event("created", "users", "fresh", None, {}),
    ]
    await worker.silent()
    await wire.result("state::get", {"scope": "users", "key": "u1"})  # reads never fire
    await worker.silent(0.1)


async def test_trigger_key_filter_and_no_config(engine: EngineThread) -> None:
    keyed = await handler(engine, "on::key", key="k1")
    everything = await handler(engine, "on::all")
    wire = await caller(engine)
    await wire.result("state::set", {"scope": "a", "key": "k2", "value": 1})
    await wire.result("state::set", {"scope": "b", "key": "k1", "value": 2})
    got_all = [(await everything.serve_one())["data"]["key"] for _ in range(2)]
    assert got_all == ["k2", "k1"]
    only = await keyed.serve_one()
    assert (only["data"]["scope"], only["data"]["key"]) == ("b", "k1")
    await keyed.silent()


async def test_trigger_condition(engine: EngineThread) -> None:
    conditions = await Wire.connect(engine.url, name="conditions")
    for fid in ("cond::no", "cond::yes", "cond::boom"):
        await conditions.send({"type": "registerfunction", "id": fid})
    await conditions.sync()
    workers = {
        fid: await handler(engine, f"on::{fid}", condition_function_id=fid)
        for fid in ("cond::no", "cond::yes", "cond::boom")
    }
    wire = await caller(engine)
    await wire.result("state::set", {"scope": "c", "key": "k", "value": 1})
    answers = {"cond::no": False, "cond::yes": None}  # only a literal false skips
    for _ in range(3):
        call = await conditions.recv_type("invokefunction")
        assert call["data"]["event_type"] == "state:created"  # same payload as the handler
        fid = call["function_id"]
        reply: dict[str, Any] = {
            "type": "invocationresult",
            "invocation_id": call["invocation_id"],
            "function_id": fid,
        }
        if fid == "cond::boom":
            reply["error"] = {"code": "boom", "message": "condition failed"}
        else:
            reply["result"] = answers[fid]
        await conditions.send(reply)
    ran = await workers["cond::yes"].serve_one()
    assert ran["data"]["new_value"] == 1
    await workers["cond::no"].silent()
    await workers["cond::boom"].silent(0.1)  # a failing condition skips the handler


async def test_trigger_removed_on_disconnect_and_bad_config(engine: EngineThread) -> None:
    worker = await handler(engine, "on::gone")
    await worker.close()
    await wait_until(lambda: "t-on::gone" not in engine.workers.state.fanout.bindings)
    watcher = await handler(engine, "on::stay")
    wire = await caller(engine)
    await wire.result("state::set", {"scope": "x", "key": "k", "value": 1})
    assert (await watcher.serve_one())["function_id"] == "on::stay"
    assert sorted(engine.workers.state.fanout.bindings) == ["t-on::stay"]
    bad = await Wire.connect(engine.url)
    await bad.send(
        {
            "type": "registertrigger",
            "id": "bad",
            "trigger_type": "state",
            "function_id": "f",
            "config": {"scope": 3},
        }
    )
    result = await bad.recv_type("triggerregistrationresult")
    assert result["error"]["code"] == "trigger_registration_failed"
    assert "scope" in result["error"]["message"]


async def test_triggers_disabled(engine_factory: Any) -> None:
    engine = engine_factory(state_triggers_enabled=False)
    worker = await handler(engine, "on::off")
    wire = await caller(engine)
    await wire.result("state::set", {"scope": "x", "key": "k", "value": 1})
    await worker.silent()


async def test_namespaced_worker_reaches_the_builtins(engine: EngineThread) -> None:
    """An SDK sends the worker's namespace with every call; the engine's own functions in
    ``default`` answer it (builtins.md §1.1), a worker's function in ``default`` does not."""
    other = await Wire.connect(engine.url, name="plain")
    await other.send({"type": "registerfunction", "id": "plain::fn"})
    await other.sync()
    worker = await Wire.connect(engine.url, name="shop", namespace="orders")
    await worker.sync()
    data = {"scope": "s", "key": "k", "value": 1}
    result = await worker.result("state::set", data, namespace="orders")
    assert result == {"old_value": None, "new_value": 1}
    assert await worker.result("state::get", {"scope": "s", "key": "k"}, namespace="orders") == 1
    missing = await worker.call("plain::fn", {}, namespace="orders")
    assert missing["error"]["code"] == "function_not_found"
    assert "It is registered in namespace(s): default." in missing["error"]["message"]


async def test_durable_binding_through_engine_register_trigger(engine: EngineThread) -> None:
    """``engine::register_trigger`` binds a state trigger with no owning connection (§1.2)."""
    worker = await Wire.connect(engine.url, name="durable")
    await worker.send({"type": "registerfunction", "id": "on::durable"})
    await worker.sync()
    wire = await caller(engine)
    bound = await wire.result(
        "engine::register_trigger",
        {"trigger_type": "state", "function_id": "on::durable", "config": {"key": "only"}},
    )
    await wire.result("state::set", {"scope": "x", "key": "other", "value": 0})
    await wire.result("state::set", {"scope": "x", "key": "only", "value": 1})
    call = await worker.serve_one()
    assert (call["data"]["key"], call["data"]["new_value"]) == ("only", 1)
    refused = await wire.call(
        "engine::register_trigger",
        {"trigger_type": "state", "function_id": "on::durable", "config": {"key": ["x"]}},
    )
    assert refused["error"]["code"] == "trigger_registration_failed"
    removed = await wire.result("engine::unregister_trigger", {"id": bound["id"]})
    assert removed == {"removed": True}
    await wire.result("state::set", {"scope": "x", "key": "only", "value": 2})
    await worker.silent()
