"""Standby: a function id owned by another live worker is kept, not dropped, and taken over
when the owner leaves (protocol.md §2.4 step 5, §2.6; ``iii._standby``)."""

from __future__ import annotations

import logging
from typing import Any

import httpx

import iii
from iii import TriggerConfig, TriggerHandler
from tests.helpers import acall_until_found, wait_until


async def _connected(engine: Any, name: str) -> iii.III:
    client = iii.III(engine.url, iii.InitOptions(worker_name=name))
    await client.connect()
    await wait_until(lambda: client.worker_id is not None)
    return client


def _serve(client: iii.III, who: str) -> None:
    client.register_function("sb::who", lambda data: {"status_code": 200, "body": {"who": who}})
    client.register_trigger(
        {"type": "http", "function_id": "sb::who", "config": {"api_path": "/who"}}
    )


async def _get_who(http: httpx.AsyncClient, url: str) -> Any:
    response = await http.get(f"{url}/who")
    return response.status_code, (response.json() if response.status_code == 200 else None)


async def test_second_owner_stands_by_and_takes_over(engine: Any, caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="iii.client")
    first = await _connected(engine, "owner")
    second = await _connected(engine, "standby")
    try:
        _serve(first, "first")
        assert (await acall_until_found(second, {"function_id": "sb::who"}))["body"] == {
            "who": "first"
        }
        _serve(second, "second")
        second.register_function("sb::own", lambda data: "own")
        await wait_until(lambda: "sb::who" in second.standby_functions)
        assert second.standby_functions == {"sb::who": first.worker_id}
        assert first.standby_functions == {}
        listed = await second.trigger_async(
            {"function_id": "engine::functions::list", "payload": {"include_internal": True}}
        )
        assert any(f["function_id"].startswith("iii::standby::") for f in listed["functions"])
        assert second.get_connection_state() == "connected"
        assert "stands by" in caplog.text
        # The route and the function keep being served by the owner; the standby's own
        # functions are unaffected.
        async with httpx.AsyncClient() as http:
            assert await _get_who(http, engine.http_url) == (200, {"who": "first"})
            assert await acall_until_found(second, {"function_id": "sb::own"}) == "own"

            await first.shutdown_async()  # the owner leaves
            await wait_until(lambda: second.standby_functions == {})
            assert "took over function 'sb::who'" in caplog.text
            # The function and the http route (re-sent after the takeover) now reach `second`.
            reply = await second.trigger_async({"function_id": "sb::who"})
            assert reply["body"] == {"who": "second"}
            await wait_until_status(http, engine.http_url, {"who": "second"})
        # The watcher function is gone once nothing is on standby.
        listed = await second.trigger_async(
            {"function_id": "engine::functions::list", "payload": {"include_internal": True}}
        )
        ids = [f["function_id"] for f in listed["functions"]]
        assert "sb::who" in ids
        assert not any(i.startswith("iii::standby::") for i in ids), ids
    finally:
        await first.shutdown_async()
        await second.shutdown_async()


async def wait_until_status(http: httpx.AsyncClient, url: str, body: Any) -> None:
    seen: list[Any] = []

    async def check() -> None:
        seen.append(await _get_who(http, url))

    for _ in range(300):
        await check()
        if seen[-1] == (200, body):
            return
        await _sleep()
    raise AssertionError(f"the route never answered {body}: last {seen[-1]}")


async def _sleep() -> None:
    import asyncio

    await asyncio.sleep(0.02)


class _Recorder(TriggerHandler):
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.function_of: dict[str, str] = {}

    async def register_trigger(self, config: TriggerConfig) -> None:
        self.function_of[config.id] = config.function_id
        self.events.append(("register", config.id))

    async def unregister_trigger(self, config: TriggerConfig) -> None:
        self.events.append(("unregister", config.id))

    def live(self) -> set[str]:
        live: set[str] = set()
        for kind, trigger_id in self.events:
            (live.add if kind == "register" else live.discard)(trigger_id)
        return live


async def test_standby_withdraws_non_http_triggers_until_it_takes_over(engine: Any) -> None:
    provider = await _connected(engine, "provider")
    recorder = _Recorder()
    provider.register_trigger_type({"id": "tick", "description": "ticks"}, recorder)
    first = await _connected(engine, "owner")
    second = await _connected(engine, "standby")
    try:
        first.register_function("sb::tick", lambda data: "first")
        owner_binding = first.register_trigger(
            {"type": "tick", "function_id": "sb::tick", "config": {}}
        )
        await wait_until(lambda: owner_binding.id in recorder.live())
        second.register_function("sb::tick", lambda data: "second")
        standby_binding = second.register_trigger(
            {"type": "tick", "function_id": "sb::tick", "config": {}}
        )
        # Delivered, then withdrawn once the function was refused: only the owner's binding
        # fires, so nothing runs twice.
        await wait_until(lambda: ("unregister", standby_binding.id) in recorder.events)
        assert recorder.live() == {owner_binding.id}
        assert second.standby_functions == {"sb::tick": first.worker_id}

        await first.shutdown_async()
        await wait_until(lambda: recorder.live() == {standby_binding.id})
        assert second.standby_functions == {}
        assert await second.trigger_async({"function_id": "sb::tick"}) == "second"
    finally:
        await first.shutdown_async()
        await second.shutdown_async()
        await provider.shutdown_async()


async def test_periodic_retry_and_unregistering_a_standby(engine: Any) -> None:
    first = await _connected(engine, "owner")
    second = await _connected(engine, "standby")
    second.standby_retry_interval_s = 0.05
    try:
        first.register_function("sb::kept", lambda data: "first")
        await acall_until_found(second, {"function_id": "sb::kept"})
        ref = second.register_function("sb::kept", lambda data: "second")
        await wait_until(lambda: "sb::kept" in second.standby_functions)
        # Periodic claims are refused while the owner lives; the function stays on standby.
        for _ in range(10):
            await _sleep()
            assert second.standby_functions.get("sb::kept", first.worker_id) == first.worker_id
        assert await second.trigger_async({"function_id": "sb::kept"}) == "first"
        ref.unregister()
        await wait_until(lambda: second.standby_functions == {})
        await first.shutdown_async()
        for _ in range(10):  # nothing left to claim: the id stays unregistered
            await _sleep()
        try:
            await second.trigger_async({"function_id": "sb::kept", "timeout_ms": 2000})
        except iii.IIIInvocationError as exc:
            assert exc.code == "function_not_found"
        else:
            raise AssertionError("an unregistered standby function was registered again")
    finally:
        await first.shutdown_async()
        await second.shutdown_async()


async def test_reserved_engine_prefix_is_not_a_standby(engine: Any, caplog: Any) -> None:
    client = iii.III(engine.url, iii.InitOptions(namespace="elsewhere"))
    client.register_function("engine::mine", lambda data: None)
    await client.connect()
    try:
        client.register_function("ns::fine", lambda data: "ok")
        assert await acall_until_found(client, {"function_id": "ns::fine"}) == "ok"
        await wait_until(lambda: "engine refused function 'engine::mine'" in caplog.text)
        assert client.standby_functions == {}
        assert client.get_connection_state() == "connected"
    finally:
        await client.shutdown_async()
