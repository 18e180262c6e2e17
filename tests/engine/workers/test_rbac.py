"""RBAC worker listeners (protocol.md §8), through real sockets: a trusted raw worker on the
main port provides the auth function, hooks, middleware and target functions; untrusted raw
workers connect to the RBAC port."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from engine_wire import Wire
from rbac_support import Refused, Trusted, forbidden, refused

from iii_asgi.engine import EngineThread
from iii_asgi.engine.config import RbacConfig, WorkerListenerConfig

EngineFactory = Callable[..., EngineThread]


def rbac_engine(
    engine_factory: EngineFactory,
    expose: list[Any] | None = None,
    auth: str | None = "auth::check",
    **listener: Any,
) -> EngineThread:
    """An engine whose second listener (port 0) has an ``rbac`` block."""
    hooks = {k: listener.pop(k) for k in list(listener) if k.startswith("on_")}
    rbac = RbacConfig(auth_function_id=auth, expose_functions=expose or [], **hooks)
    return engine_factory(worker_listeners=[WorkerListenerConfig(port=0, rbac=rbac, **listener)])


def echo(data: Any) -> Any:
    return {"echo": data}


def grant(**result: Any) -> Callable[[Any], Any]:
    """An auth function returning ``result`` (an AuthResult) whatever the input."""
    return lambda _input: result


async def test_auth_input_and_an_allowed_call(engine_factory: EngineFactory) -> None:
    engine = rbac_engine(engine_factory)
    main, rbac_url = engine.worker_urls
    assert main == engine.url
    handlers = {"auth::check": grant(allowed_functions=["svc::echo"]), "svc::echo": echo}
    async with Trusted.serving(main, handlers) as trusted:
        query = "/?token=abc&x&token=b%20c"
        wire = await Wire.connect(rbac_url + query, headers={"X-Token": "abc"}, name="u")
        assert await wire.result("svc::echo", {"a": 1}) == {"echo": {"a": 1}}
        [auth] = trusted.calls["auth::check"]
        assert auth["headers"]["x-token"] == "abc"
        assert auth["query_params"] == {"token": ["abc", "b%20c"], "x": [""]}
        assert auth["ip_address"] == "127.0.0.1"
        assert trusted.calls["svc::echo"] == [{"a": 1}]
        # the trusted listener runs no auth and gates nothing
        observer = await Wire.connect(main, name="observer")
        assert await observer.result("svc::echo", 2) == {"echo": 2}
        assert len(trusted.calls["auth::check"]) == 1


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        (lambda _: (_ for _ in ()).throw(Refused("BAD", "bad token")), "bad token"),
        (lambda _: None, "auth function returned no result"),
        (lambda _: "nope", "invalid AuthResult: expected an object, got str"),
        (
            lambda _: {"allowed_functions": "svc::x"},
            "invalid AuthResult: `allowed_functions` must be a list of strings",
        ),
        (
            lambda _: {"allow_function_registration": "yes"},
            "invalid AuthResult: `allow_function_registration` must be a boolean",
        ),
    ],
)
async def test_a_failed_auth_gets_the_error_frame(
    engine_factory: EngineFactory, handler: Callable[[Any], Any], message: str
) -> None:
    engine = rbac_engine(engine_factory)
    main, rbac_url = engine.worker_urls
    async with Trusted.serving(main, {"auth::check": handler}):
        observer = await Wire.connect(main, name="observer")
        frame = await refused(rbac_url)
        assert frame == {"type": "error", "error": {"code": "AUTH_ERROR", "message": message}}
        # the /otel socket goes through the same auth (§1.11)
        assert (await refused(rbac_url, path="/otel"))["error"]["code"] == "AUTH_ERROR"
        workers = (await observer.result("engine::workers::list"))["workers"]
        assert sorted(w["name"] for w in workers) == ["iii-engine", "observer", "trusted"]


async def test_a_missing_auth_function_refuses(engine_factory: EngineFactory) -> None:
    engine = rbac_engine(engine_factory, auth="auth::missing")
    frame = await refused(engine.worker_urls[1])
    assert frame["error"]["code"] == "AUTH_ERROR"
    assert frame["error"]["message"].startswith("Function auth::missing not found")


async def test_forbidden_with_the_exact_message(engine_factory: EngineFactory) -> None:
    engine = rbac_engine(engine_factory, expose=['match("svc::public::*")'])
    main, rbac_url = engine.worker_urls
    handlers = {"auth::check": grant(), "svc::public::a": echo, "svc::private": echo}
    async with Trusted.serving(main, handlers) as trusted:
        wire = await Wire.connect(rbac_url, name="u")
        assert await wire.result("svc::public::a", 1) == {"echo": 1}
        for target in ("svc::private", "svc::does-not-exist"):  # absence does not leak
            result = await wire.call(target, {"x": 1})
            assert result["error"] == forbidden(target)
            assert result["function_id"] == target
        # void: answered anyway, with a fresh id
        await wire.send(
            {
                "type": "invokefunction",
                "function_id": "svc::private",
                "data": {},
                "action": {"type": "void"},
            }
        )
        reply = await wire.recv_type("invocationresult")
        assert reply["error"] == forbidden("svc::private")
        assert uuid.UUID(reply["invocation_id"])
        assert trusted.calls["svc::private"] == []


async def test_expose_by_glob_metadata_and_namespace(engine_factory: EngineFactory) -> None:
    expose = [
        'match("svc::public::*")',
        {"metadata": {"public": True}},
        {"metadata": {"tier": 'match("gold*")'}},
        {"match": "ns::*", "namespace": "orders"},
    ]
    engine = rbac_engine(engine_factory, expose=expose)
    main, rbac_url = engine.worker_urls
    metadata = {
        "svc::meta": {"public": True, "other": 1},
        "svc::meta-int": {"public": 1},
        "svc::gold": {"tier": "gold-1"},
        "svc::silver": {"tier": "silver"},
    }
    handlers = {"auth::check": grant(), "svc::public::a::b": echo, **dict.fromkeys(metadata, echo)}
    async with (
        Trusted.serving(main, handlers, metadata),
        Trusted.serving(main, {"ns::x": echo}, namespace="orders"),
    ):
        wire = await Wire.connect(rbac_url, name="u")
        for allowed in ("svc::public::a::b", "svc::meta", "svc::gold"):
            assert await wire.result(allowed, 1) == {"echo": 1}
        for denied in ("svc::meta-int", "svc::silver"):
            assert (await wire.call(denied, 1))["error"] == forbidden(denied)
        assert await wire.result("ns::x", 2, namespace="orders") == {"echo": 2}
        # a filter without a namespace applies in default only, and the reverse
        result = await wire.call("svc::public::a::b", 3, namespace="orders")
        assert result["error"] == forbidden("svc::public::a::b")
        assert (await wire.call("ns::x", 3))["error"] == forbidden("ns::x")


async def test_forbidden_functions_win_everywhere(engine_factory: EngineFactory) -> None:
    engine = rbac_engine(engine_factory, expose=['match("*")'])
    main, rbac_url = engine.worker_urls
    auth = grant(
        allowed_functions=["svc::a"],
        forbidden_functions=["svc::a", "engine::channels::create"],
        namespaces={"default": ["svc::*"]},
    )
    async with Trusted.serving(main, {"auth::check": auth, "svc::a": echo, "svc::b": echo}):
        wire = await Wire.connect(rbac_url, name="u")
        remedy = "remove from rbac.forbidden_functions"
        assert (await wire.call("svc::a", 1))["error"] == forbidden("svc::a", remedy)
        result = await wire.call("engine::channels::create", {})
        assert result["error"] == forbidden("engine::channels::create", remedy)
        assert await wire.result("svc::b", 1) == {"echo": 1}


async def test_allowed_functions_and_namespace_grants(engine_factory: EngineFactory) -> None:
    engine = rbac_engine(engine_factory)  # nothing exposed
    main, rbac_url = engine.worker_urls
    auth = grant(
        allowed_functions=["svc::a"],
        namespaces={"orders": ['match("ns::*")'], "default": ["svc::exact"]},
    )
    handlers = {"auth::check": auth, "svc::a": echo, "svc::exact": echo, "svc::b": echo}
    async with (
        Trusted.serving(main, handlers),
        Trusted.serving(main, {"ns::x": echo, "svc::a": echo}, namespace="orders"),
    ):
        wire = await Wire.connect(rbac_url, name="u", namespace="orders")
        assert await wire.result("svc::a", 1) == {"echo": 1}
        assert await wire.result("svc::exact", 1) == {"echo": 1}
        assert (await wire.call("svc::b", 1))["error"] == forbidden("svc::b")
        assert await wire.result("ns::x", 1, namespace="orders") == {"echo": 1}
        # allowed_functions answers in default only
        result = await wire.call("svc::a", 1, namespace="orders")
        assert result["error"] == forbidden("svc::a")
        # the grant keys are the namespaces a worker may declare
        other = await Wire.connect(rbac_url, name="other", namespace="sales")
        reply = await other.recv_type("invocationresult")
        assert reply["function_id"] == "engine::workers::register"
        assert reply["error"] == {
            "code": "FORBIDDEN",
            "message": "namespace 'sales' not allowed for this session "
            "(permitted: default, orders)",
        }


async def test_infrastructure_carve_out(engine_factory: EngineFactory) -> None:
    engine = rbac_engine(engine_factory, auth=None)  # no auth function: permissive session
    main, rbac_url = engine.worker_urls
    observer = await Wire.connect(main, name="observer")
    wire = await Wire.connect(rbac_url, name="carved")
    refs = await wire.result("engine::channels::create", {})
    assert set(refs) == {"writer", "reader"}
    await wire.sync()
    workers = (await observer.result("engine::workers::list"))["workers"]
    assert "carved" in {w["name"] for w in workers}  # engine::workers::register went through
    result = await wire.call("engine::functions::list", {})
    assert result["error"] == forbidden("engine::functions::list")
    assert (await wire.call("state::get", {"scope": "s", "key": "k"}))["error"] == forbidden(
        "state::get"
    )


async def test_filtered_function_listing(engine_factory: EngineFactory) -> None:
    expose = [
        'match("svc::public::*")',
        {"metadata": {"public": True}},
        'match("engine::functions::*")',
    ]
    engine = rbac_engine(engine_factory, expose=expose)
    main, rbac_url = engine.worker_urls
    handlers = {
        "auth::check": grant(allowed_functions=["svc::granted"]),
        "svc::public::a": echo,
        "svc::meta": echo,
        "svc::granted": echo,
        "svc::private": echo,
    }
    async with Trusted.serving(main, handlers, {"svc::meta": {"public": True}}):
        wire = await Wire.connect(rbac_url, name="u")
        listed = await wire.result("engine::functions::list", {})
        ids = {f["function_id"] for f in listed["functions"]}
        assert ids == {"svc::public::a", "svc::meta", "svc::granted"}
        everything = await wire.result("engine::functions::list", {"include_internal": True})
        ids = {f["function_id"] for f in everything["functions"]}
        assert "engine::functions::list" in ids and "auth::check" not in ids
        info = await wire.call("engine::functions::info", {"function_id": "svc::private"})
        assert info["error"] == forbidden("svc::private")
        detail = await wire.result("engine::functions::info", {"function_id": "svc::meta"})
        assert detail["function_id"] == "svc::meta"
        batch = await wire.result(
            "engine::functions::info", {"function_ids": ["svc::private", "svc::granted"]}
        )
        assert batch["functions"][0] == {"function_id": "svc::private", "error": "forbidden"}
        observer = await Wire.connect(main, name="observer")
        full = await observer.result("engine::functions::list", {})
        assert {"svc::private", "auth::check"} <= {f["function_id"] for f in full["functions"]}


async def test_middleware_continue_and_short_circuit(engine_factory: EngineFactory) -> None:
    engine = rbac_engine(
        engine_factory, expose=['match("svc::*")'], middleware_function_id="mw::route"
    )
    main, rbac_url = engine.worker_urls
    forwarder = await Wire.connect(main, name="forwarder")

    async def middleware(data: Any) -> Any:
        if data["payload"].get("block"):
            return {"blocked_by": data["context"]["user"]}  # short-circuit
        if data["payload"].get("fail"):
            raise Refused("MW_REFUSED", "no")
        payload = {**data["payload"], "_via": data["context"]["user"]}
        return await forwarder.result(data["function_id"], payload)  # continue

    handlers = {"auth::check": grant(context={"user": "u1"}), "mw::route": middleware}
    async with Trusted.serving(main, {**handlers, "svc::echo": echo}) as trusted:
        wire = await Wire.connect(rbac_url, name="u")
        result = await wire.result("svc::echo", {"x": 1}, metadata={"m": 1})
        assert result == {"echo": {"x": 1, "_via": "u1"}}
        [seen] = trusted.calls["mw::route"]
        assert seen == {
            "function_id": "svc::echo",
            "payload": {"x": 1},  # no _caller_worker_id
            "action": None,
            "context": {"user": "u1"},
            "namespace": "default",
        }
        assert trusted.metadata["mw::route"] == [{"m": 1}]
        assert await wire.result("svc::echo", {"block": True}) == {"blocked_by": "u1"}
        assert trusted.calls["svc::echo"] == [{"x": 1, "_via": "u1"}]
        assert (await wire.call("svc::echo", {"fail": True}))["error"] == {
            "code": "MW_REFUSED",
            "message": "no",
        }
        # a void call still gets the middleware's result, with a fresh id
        await wire.send(
            {
                "type": "invokefunction",
                "function_id": "svc::echo",
                "data": {"block": True},
                "action": {"type": "void"},
            }
        )
        reply = await wire.recv_type("invocationresult")
        assert reply["result"] == {"blocked_by": "u1"} and uuid.UUID(reply["invocation_id"])
        # the gate runs first; engine-owned engine::* built-ins skip the middleware
        assert (await wire.call("other::x", {}))["error"] == forbidden("other::x")
        calls = len(trusted.calls["mw::route"])
        assert set(await wire.result("engine::channels::create", {})) == {"writer", "reader"}
        assert len(trusted.calls["mw::route"]) == calls


async def test_middleware_without_rbac(engine_factory: EngineFactory) -> None:
    listener = WorkerListenerConfig(port=0, middleware_function_id="mw::all")
    engine = engine_factory(worker_listeners=[listener])
    main, mw_url = engine.worker_urls
    handlers = {"mw::all": lambda data: {"intercepted": data["function_id"]}, "svc::x": echo}
    async with Trusted.serving(main, handlers) as trusted:
        wire = await Wire.connect(mw_url, name="u")  # no auth function: no AUTH_ERROR
        assert await wire.result("svc::x", 1) == {"intercepted": "svc::x"}
        assert await wire.result("state::get", {"scope": "a", "key": "b"}) == {
            "intercepted": "state::get"
        }
        assert trusted.calls["svc::x"] == []


async def test_function_registration_hook(engine_factory: EngineFactory) -> None:
    engine = rbac_engine(
        engine_factory,
        expose=['match("renamed::*")', 'match("engine::*")'],
        on_function_registration_function_id="hook::function",
    )
    main, rbac_url = engine.worker_urls

    def hook(data: Any) -> Any:
        if data["function_id"].startswith("denied::"):
            raise Refused("NO", "denied function registration")
        if data["function_id"].startswith("weird::"):
            return "not an object"
        return {
            "function_id": "renamed::" + data["function_id"].split("::")[-1],
            "description": f"by {data['context']['user']}",
        }

    handlers = {"auth::check": grant(context={"user": "u1"}), "hook::function": hook}
    async with Trusted.serving(main, handlers) as trusted:
        wire = await Wire.connect(rbac_url, name="u")
        for function_id in ("ext::a", "denied::b", "weird::c"):
            await wire.send(
                {
                    "type": "registerfunction",
                    "id": function_id,
                    "description": "d",
                    "metadata": {"k": 1},
                }
            )
        await wire.sync()
        assert trusted.calls["hook::function"][0] == {
            "function_id": "ext::a",
            "description": "d",
            "metadata": {"k": 1},
            "namespace": "default",
            "context": {"user": "u1"},
        }
        observer = await Wire.connect(main, name="observer")
        functions = (await observer.result("engine::functions::list", {}))["functions"]
        mine = [f for f in functions if f["worker_name"] == "u"]
        assert mine == [
            {
                "function_id": "renamed::a",
                "namespace": "default",
                "worker_name": "u",
                "description": "by u1",
                "metadata": {"k": 1},
            }
        ]
        # the worker is invoked under the id it registered
        call = asyncio.create_task(observer.result("renamed::a", {"q": 1}))
        invoked = await wire.serve_one(lambda data: {"got": data["q"]})
        assert invoked["function_id"] == "ext::a"
        assert await call == {"got": 1}
        await wire.send({"type": "unregisterfunction", "id": "ext::a"})
        await wire.sync()
        result = await observer.call("renamed::a", {})
        assert result["error"]["code"] == "function_not_found"


async def test_prefix_registration_and_stripping(engine_factory: EngineFactory) -> None:
    engine = rbac_engine(engine_factory, expose=['match("tenant::*")'])
    main, rbac_url = engine.worker_urls
    auth = grant(function_registration_prefix="tenant")
    async with Trusted.serving(main, {"auth::check": auth}):
        wire = await Wire.connect(rbac_url, name="u")
        await wire.send({"type": "registerfunction", "id": "echo"})
        await wire.send(
            {
                "type": "registertrigger",
                "id": "t1",
                "trigger_type": "subscribe",
                "function_id": "echo",
                "config": {"topic": "news"},
            }
        )
        await wire.sync()
        observer = await Wire.connect(main, name="observer")
        call = asyncio.create_task(observer.result("tenant::echo", {"n": 1}))
        invoked = await wire.serve_one()
        assert invoked["function_id"] == "echo"  # §8.6: stripped for the worker
        assert (await call)["n"] == 1
        triggers = await observer.result("engine::registered-triggers::list", {})
        [trigger] = [t for t in triggers["registered_triggers"] if t["id"] == "t1"]
        assert trigger["function_id"] == "tenant::echo"
        # the worker's own calls are not prefixed
        assert (await wire.call("echo", {}))["error"] == forbidden("echo")
        await wire.send({"type": "unregisterfunction", "id": "echo"})
        await wire.sync()
        assert (await observer.call("tenant::echo", {}))["error"]["code"] == "function_not_found"


async def test_trigger_registration_hook(engine_factory: EngineFactory) -> None:
    engine = rbac_engine(
        engine_factory,
        expose=['match("svc::*")'],
        on_trigger_registration_function_id="hook::trigger",
    )
    main, rbac_url = engine.worker_urls

    def hook(data: Any) -> Any:
        if data["function_id"].startswith("svc::denied"):
            raise Refused("NO", "denied trigger registration")
        if data["trigger_id"] == "nulled":
            return {"config": None}  # a present null replaces the config
        return {"trigger_id": "renamed-" + data["trigger_id"], "config": {"topic": "t2"}}

    handlers = {"auth::check": grant(context={"user": "u1"}), "hook::trigger": hook}
    async with Trusted.serving(main, {**handlers, "svc::a": echo, "svc::denied": echo}) as trusted:
        wire = await Wire.connect(rbac_url, name="u")
        for trigger_id, function_id in (
            ("t1", "svc::a"),
            ("t2", "svc::denied"),
            ("nulled", "svc::a"),
        ):
            await wire.send(
                {
                    "type": "registertrigger",
                    "id": trigger_id,
                    "trigger_type": "subscribe",
                    "function_id": function_id,
                    "config": {"topic": "t1"},
                    "metadata": {"m": 1},
                }
            )
        await wire.sync()
        assert trusted.calls["hook::trigger"][0] == {
            "trigger_id": "t1",
            "trigger_type": "subscribe",
            "function_id": "svc::a",
            "config": {"topic": "t1"},
            "metadata": {"m": 1},
            "namespace": "default",
            "context": {"user": "u1"},
        }
        observer = await Wire.connect(main, name="observer")
        listed = await observer.result("engine::registered-triggers::list", {})
        triggers = {t["id"]: t for t in listed["registered_triggers"]}
        assert set(triggers) == {"renamed-t1", "nulled"}
        assert triggers["renamed-t1"]["config"] == {"topic": "t2"}
        assert triggers["nulled"]["config"] is None
        await wire.silent()  # denials are silent


async def test_trigger_type_registration_hook(engine_factory: EngineFactory) -> None:
    engine = rbac_engine(engine_factory, on_trigger_type_registration_function_id="hook::tt")

    def hook(data: Any) -> Any:
        if data["trigger_type_id"].startswith("denied"):
            raise Refused("NO", "denied trigger type registration")
        return {"trigger_type_id": "renamed-" + data["trigger_type_id"], "description": "new"}

    def auth(data: Any) -> Any:
        may = data["headers"].get("x-role") == "provider"
        return {"allow_trigger_type_registration": may, "context": {"user": "u1"}}

    main, rbac_url = engine.worker_urls
    async with Trusted.serving(main, {"auth::check": auth, "hook::tt": hook}) as trusted:
        provider = await Wire.connect(rbac_url, name="p", headers={"x-role": "provider"})
        plain = await Wire.connect(rbac_url, name="plain")  # AuthResult default: false
        for wire, type_id in ((provider, "tt-a"), (provider, "denied-b"), (plain, "tt-c")):
            await wire.send({"type": "registertriggertype", "id": type_id, "description": "d"})
            await wire.sync()
        assert trusted.calls["hook::tt"] == [
            {"trigger_type_id": "tt-a", "description": "d", "context": {"user": "u1"}},
            {"trigger_type_id": "denied-b", "description": "d", "context": {"user": "u1"}},
        ]
        observer = await Wire.connect(main, name="observer")
        types = (await observer.result("engine::triggers::list", {}))["triggers"]
        ours = {t["id"]: t for t in types if t["worker_name"] in ("p", "plain")}
        assert ours == {
            "renamed-tt-a": {
                "id": "renamed-tt-a",
                "namespace": "default",
                "worker_name": "p",
                "description": "new",
            }
        }


async def test_session_registration_flags(engine_factory: EngineFactory) -> None:
    engine = rbac_engine(engine_factory, expose=['match("*")'])
    main, rbac_url = engine.worker_urls
    auth = grant(allow_function_registration=False, allowed_trigger_types=["subscribe"])
    async with Trusted.serving(main, {"auth::check": auth, "svc::a": echo}):
        wire = await Wire.connect(rbac_url, name="u")
        await wire.send({"type": "registerfunction", "id": "mine::f"})
        for trigger_id, trigger_type in (("t-cron", "cron"), ("t-sub", "subscribe")):
            await wire.send(
                {
                    "type": "registertrigger",
                    "id": trigger_id,
                    "trigger_type": trigger_type,
                    "function_id": "svc::a",
                    "config": {"topic": "x", "expression": "0 0 * * * *"},
                }
            )
        await wire.sync()
        await wire.silent()
        observer = await Wire.connect(main, name="observer")
        functions = (await observer.result("engine::functions::list", {}))["functions"]
        assert "mine::f" not in {f["function_id"] for f in functions}
        listed = await observer.result("engine::registered-triggers::list", {})
        assert [t["id"] for t in listed["registered_triggers"]] == ["t-sub"]


async def test_trigger_target_must_be_allowed(engine_factory: EngineFactory) -> None:
    engine = rbac_engine(engine_factory, expose=['match("svc::public")'])
    main, rbac_url = engine.worker_urls
    async with Trusted.serving(main, {"auth::check": grant(), "svc::private": echo}):
        wire = await Wire.connect(rbac_url, name="u")
        await wire.send(
            {
                "type": "registertrigger",
                "id": "t1",
                "trigger_type": "subscribe",
                "function_id": "svc::private",
                "config": {"topic": "x"},
            }
        )
        result = await wire.recv_type("triggerregistrationresult")
        assert result == {
            "type": "triggerregistrationresult",
            "id": "t1",
            "trigger_type": "subscribe",
            "function_id": "svc::private",
            "error": {
                "code": "FORBIDDEN",
                "message": "function 'svc::private' not allowed in namespace 'default'",
            },
        }


async def test_handshake_timeout(engine_factory: EngineFactory) -> None:
    engine = rbac_engine(engine_factory, handshake_timeout_ms=300)
    main, rbac_url = engine.worker_urls
    port = int(rbac_url.rsplit(":", 1)[1])
    # an upgrade request that never completes: the connection is closed
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()
    # an auth function that does not answer in time; an established connection outlives
    # the timeout
    never = asyncio.Event()

    async def auth(data: Any) -> Any:
        if data["headers"].get("x-slow"):
            await never.wait()
        return {}

    async with Trusted.serving(main, {"auth::check": auth}):
        frame = await refused(rbac_url, headers={"x-slow": "1"})
        assert frame["error"] == {
            "code": "AUTH_ERROR",
            "message": "auth function auth::check did not answer within 300 ms",
        }
        wire = await Wire.connect(rbac_url, name="u")
        await asyncio.sleep(0.6)
        await wire.sync()


async def test_several_listeners_from_one_config(engine_factory: EngineFactory) -> None:
    listeners = [
        WorkerListenerConfig(port=0, rbac=RbacConfig(expose_functions=['match("a::*")'])),
        WorkerListenerConfig(port=0, rbac=RbacConfig(expose_functions=['match("b::*")']), name="b"),
    ]
    engine = engine_factory(worker_listeners=listeners)
    main, first, second = engine.worker_urls
    assert set(engine.engine.listeners) >= {"worker", "worker#1", "worker#b"}
    async with Trusted.serving(main, {"a::x": echo, "b::x": echo}):
        a, b = await Wire.connect(first, name="a"), await Wire.connect(second, name="b")
        assert await a.result("a::x", 1) == {"echo": 1}
        assert (await a.call("b::x", 1))["error"] == forbidden("b::x")
        assert await b.result("b::x", 1) == {"echo": 1}
        assert (await b.call("a::x", 1))["error"] == forbidden("a::x")


async def test_access_control_ids_cannot_be_taken(engine_factory: EngineFactory) -> None:
    """An untrusted worker cannot register the auth function, a hook or a middleware id (it
    would answer for the operator's function whenever that one is not connected)."""
    engine = rbac_engine(
        engine_factory,
        auth=None,
        on_trigger_registration_function_id="hook::trigger",
        middleware_function_id=None,
        expose=['match("*")'],
    )
    engine_with_auth = rbac_engine(engine_factory)  # auth::check, nobody serving it yet
    main, rbac_url = engine.worker_urls
    wire = await Wire.connect(rbac_url, name="u")
    await wire.send({"type": "registerfunction", "id": "hook::trigger"})
    await wire.send({"type": "registerfunction", "id": "auth::free"})
    await wire.sync()
    await wire.silent()
    observer = await Wire.connect(main, name="observer")
    functions = (await observer.result("engine::functions::list", {}))["functions"]
    assert {f["function_id"] for f in functions if f["worker_name"] == "u"} == {"auth::free"}
    # and with an auth function configured, nobody can connect to register it
    assert (await refused(engine_with_auth.worker_urls[1]))["error"]["code"] == "AUTH_ERROR"
