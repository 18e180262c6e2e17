"""What only the Redis store has: several engines' stores on one Redis (leases, their renewal
and expiry, exclusive claims, compare-and-set updates under contention) and the documented key
names."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as redis

from iii_asgi.engine.storage import MISSING, QueueMessage
from iii_asgi.engine.storage.redis import RedisStorage

Stores = Callable[..., Any]


@pytest.fixture
async def stores(redis_url: str) -> AsyncIterator[Stores]:
    """``await stores(engine_id, lease_ms=…)``: an opened :class:`RedisStorage` of its own
    engine on the test's Redis; all closed at the end."""
    opened: list[tuple[RedisStorage, redis.Redis]] = []

    async def make(engine_id: str, lease_ms: int = 30_000) -> RedisStorage:
        client = redis.Redis.from_url(redis_url)
        store = RedisStorage(client, "", engine_id, lease_ms)
        await store.open()
        opened.append((store, client))
        return store

    yield make
    for store, client in opened:
        await store.close()
        await client.aclose()


def _now() -> int:
    return int(time.time() * 1000)


def msg(message_id: str, queue: str = "q") -> QueueMessage:
    return QueueMessage(queue=queue, id=message_id, payload={"n": message_id})


async def test_a_lease_is_renewed_while_held_and_expires_when_its_engine_dies(
    stores: Stores,
) -> None:
    a = await stores("engine-a", lease_ms=300)
    b = await stores("engine-b", lease_ms=300)
    await a.queue_put([msg("1")])
    assert [m.id for m in await a.queue_claim("q", _now(), 10)] == ["1"]
    await asyncio.sleep(0.8)  # over twice the lease: a renews it
    assert await b.queue_claim("q", _now(), 10) == []
    assert not await b.queue_nack("q", "1", 0)  # another engine's lease: refused
    await a.close()  # a "dies": no more renewals
    await asyncio.sleep(0.5)
    taken = await b.queue_claim("q", _now(), 10)
    assert [(m.id, m.attempts) for m in taken] == [("1", 0)]  # delivered again, no attempt lost
    assert await b.queue_ack("q", "1")
    assert await b.queue_depth("q") == 0


async def test_exclusive_claims_run_one_message_at_a_time_across_engines(stores: Stores) -> None:
    a, b = await stores("a"), await stores("b")
    await a.queue_put([msg("1"), msg("2")])
    assert [m.id for m in await a.queue_claim("q", _now(), 1, exclusive=True)] == ["1"]
    assert await b.queue_claim("q", _now(), 1, exclusive=True) == []
    assert [m.id for m in await b.queue_claim("q", _now(), 1)] == ["2"]  # not exclusive
    await a.queue_ack("q", "1")
    await b.queue_release("q", "2")
    assert [m.id for m in await b.queue_claim("q", _now(), 1, exclusive=True)] == ["2"]


async def test_a_message_handed_over_goes_to_another_engine_first(stores: Stores) -> None:
    a, b = await stores("a"), await stores("b")
    await a.queue_put([msg("1"), msg("2")])
    await a.queue_claim("q", _now(), 1)
    assert await a.queue_defer("q", "1", _now() + 300)
    assert [m.id for m in await a.queue_claim("q", _now(), 10)] == ["2"]  # a skips it for now
    taken = await b.queue_claim("q", _now(), 10)
    assert [(m.id, m.attempts) for m in taken] == [("1", 0)]  # b may take it at once
    await b.queue_release("q", "1")
    assert await a.queue_claim("q", _now(), 10) == []
    await asyncio.sleep(0.35)
    assert [m.id for m in await a.queue_claim("q", _now(), 10)] == ["1"]


async def test_updates_from_two_engines_never_lose_a_write(stores: Stores) -> None:
    a, b = await stores("a"), await stores("b")

    def increment(old: Any) -> Any:
        return {"n": (0 if old is MISSING else old["n"]) + 1}

    async def hammer(store: RedisStorage) -> None:
        await asyncio.gather(*(store.update("state", "s", "k", increment) for _ in range(50)))

    await asyncio.gather(hammer(a), hammer(b))
    assert await a.get("state", "s", "k") == {"n": 100}


async def test_key_names_are_the_documented_ones(redis_url: str, stores: Stores) -> None:
    a = await stores("a")
    await a.set("state", "users", "u1", {"name": "x"})
    await a.set("stream:todo", "inbox", "t1", 1)
    await a.queue_put([msg("m1", queue="default")])
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        assert await client.hget("state:users", "u1") == '{"name":"x"}'  # the real engine's key
        assert await client.hget("stream:todo:inbox", "t1") == "1"
        keys = set(await client.keys("*"))
    finally:
        await client.aclose()
    assert {
        "iii:order:state:users",
        "iii:groups:state",
        "iii:groups:stream:todo",
        "iii:spaces",
        "iii:seq",
        "iii:queue:names",
        "iii:queue:meta:default",
        "iii:queue:msg:default",
        "iii:queue:delayed:default",
    } <= keys
