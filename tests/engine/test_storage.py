"""The storage interface, run against both adapters (in-memory and SQLite)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from iii_asgi.engine.storage import (
    MISSING,
    MemoryStorage,
    QueueMessage,
    SqliteStorage,
    Storage,
    StorageError,
    create_storage,
)


def msg(message_id: str, queue: str = "q", **fields: Any) -> QueueMessage:
    return QueueMessage(queue=queue, id=message_id, payload={"n": message_id}, **fields)


def test_create_storage_picks_the_adapter(tmp_path: Path) -> None:
    assert isinstance(create_storage(None), MemoryStorage)
    sqlite = create_storage(tmp_path)
    assert isinstance(sqlite, SqliteStorage)
    assert sqlite.path == tmp_path / "iii.sqlite3"
    assert isinstance(sqlite, Storage)
    assert isinstance(MemoryStorage(), Storage)


async def test_documents_get_set_delete(store: Storage) -> None:
    assert await store.get("state", "users", "u1") is MISSING
    assert await store.set("state", "users", "u1", {"name": "a"}) is MISSING
    assert await store.set("state", "users", "u1", {"name": "b"}) == {"name": "a"}
    assert await store.get("state", "users", "u1") == {"name": "b"}
    assert await store.set("state", "users", "null", None) is MISSING
    assert await store.get("state", "users", "null") is None  # a stored null is not MISSING
    assert await store.delete("state", "users", "u1") == {"name": "b"}
    assert await store.delete("state", "users", "u1") is MISSING
    assert await store.get("state", "users", "u1") is MISSING


async def test_set_returns_the_previous_value(store: Storage) -> None:
    await store.set("s", "c", "k", [1])
    assert await store.set("s", "c", "k", [2]) == [1]


async def test_returned_values_are_copies(store: Storage) -> None:
    value = {"list": [1]}
    await store.set("s", "c", "k", value)
    value["list"].append(2)
    got = await store.get("s", "c", "k")
    assert got == {"list": [1]}
    got["list"].append(3)
    assert await store.get("s", "c", "k") == {"list": [1]}


async def test_insertion_order_survives_overwrite_and_delete(store: Storage) -> None:
    for key in ["b", "a", "c"]:
        await store.set("s", "c", key, key.upper())
    await store.set("s", "c", "b", "B2")  # keeps its position
    await store.delete("s", "c", "a")
    await store.set("s", "c", "a", "A2")  # re-created: last
    assert await store.list_items("s", "c") == [("b", "B2"), ("c", "C"), ("a", "A2")]
    assert await store.list_items("s", "unknown") == []


async def test_collections_and_spaces(store: Storage) -> None:
    await store.set("state", "zeta", "k", 1)
    await store.set("state", "alpha", "k", 1)
    await store.set("stream:todo", "inbox", "i", 1)
    await store.set("stream:todo:x", "g", "i", 1)
    await store.delete("state", "zeta", "k")  # an emptied collection stays listed (§4.2)
    assert await store.list_collections("state") == ["alpha", "zeta"]
    assert await store.list_collections("nothing") == []
    assert await store.list_spaces("stream:") == ["stream:todo", "stream:todo:x"]
    assert await store.list_spaces() == ["state", "stream:todo", "stream:todo:x"]


async def test_update_is_read_modify_write(store: Storage) -> None:
    seen: list[Any] = []

    def bump(old: Any) -> Any:
        seen.append(old)
        return {"n": (old["n"] if old is not MISSING else 0) + 1}

    assert await store.update("s", "c", "k", bump) == (MISSING, {"n": 1})
    assert await store.update("s", "c", "k", bump) == ({"n": 1}, {"n": 2})
    assert seen == [MISSING, {"n": 1}]
    assert await store.update("s", "c", "none", lambda old: MISSING) == (MISSING, MISSING)
    assert await store.get("s", "c", "none") is MISSING


async def test_update_errors_propagate_and_write_nothing(store: Storage) -> None:
    await store.set("s", "c", "k", 1)

    def fail(old: Any) -> Any:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        await store.update("s", "c", "k", fail)
    assert await store.get("s", "c", "k") == 1


async def test_non_json_values_raise_storage_error(store: Storage) -> None:
    with pytest.raises(StorageError):
        await store.set("s", "c", "k", object())
    assert await store.get("s", "c", "k") is MISSING


async def test_closed_store_raises(tmp_path: Path) -> None:
    for storage in (MemoryStorage(), SqliteStorage(tmp_path)):
        await storage.open()
        await storage.close()
        await storage.close()  # idempotent
        with pytest.raises(StorageError):
            await storage.get("s", "c", "k")


async def test_unopenable_data_dir_raises(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StorageError, match="cannot open"):
        await SqliteStorage(blocker).open()


# -- queue messages ------------------------------------------------------------------------------


async def test_queue_put_claim_ack(store: Storage) -> None:
    await store.queue_put([msg("1"), msg("2"), msg("3", queue="other")])
    assert await store.queue_depth("q") == 2
    claimed = await store.queue_claim("q", now_ms=0, limit=10)
    assert [(m.id, m.payload, m.attempts) for m in claimed] == [
        ("1", {"n": "1"}, 0),
        ("2", {"n": "2"}, 0),
    ]
    assert await store.queue_claim("q", now_ms=0, limit=10) == []  # leased
    assert await store.queue_ack("q", "1") is True
    assert await store.queue_ack("q", "1") is False
    assert await store.queue_depth("q") == 1
    assert await store.queue_names() == ["other", "q"]


async def test_queue_claim_respects_limit_and_due_time(store: Storage) -> None:
    await store.queue_put([msg("late", available_at_ms=500), msg("a"), msg("b"), msg("c")])
    assert [m.id for m in await store.queue_claim("q", 100, 2)] == ["a", "b"]
    assert [m.id for m in await store.queue_claim("q", 100, 2)] == ["c"]
    assert [m.id for m in await store.queue_claim("q", 500, 2)] == ["late"]


async def test_queue_fields_round_trip(store: Storage) -> None:
    await store.queue_put([msg("1", group="g1", created_at_ms=42, attempts=1)])
    [m] = await store.queue_claim("q", 0, 1)
    assert (m.group, m.created_at_ms, m.attempts, m.queue) == ("g1", 42, 1, "q")


async def test_queue_duplicate_id_rejects_the_whole_batch(store: Storage) -> None:
    await store.queue_put([msg("1")])
    with pytest.raises(StorageError, match="already"):
        await store.queue_put([msg("2"), msg("1")])
    with pytest.raises(StorageError, match="already"):
        await store.queue_put([msg("3"), msg("3")])
    assert [m.id for m in await store.queue_pending("q")] == ["1"]


async def test_queue_nack_retries_ahead_of_waiting_messages(store: Storage) -> None:
    await store.queue_put([msg("1"), msg("2"), msg("3")])
    [first] = await store.queue_claim("q", 0, 1)
    assert await store.queue_nack("q", first.id, available_at_ms=1000) is True
    assert [m.id for m in await store.queue_claim("q", 999, 1)] == ["2"]  # 1 not due yet
    retried = await store.queue_claim("q", 1000, 1)
    assert [(m.id, m.attempts) for m in retried] == [("1", 1)]  # due: runs next, before 3
    await store.queue_nack("q", "1", available_at_ms=1000, front=False)
    assert [m.id for m in await store.queue_claim("q", 1000, 5)] == ["3", "1"]
    assert await store.queue_nack("q", "missing", 0) is False


async def test_queue_release_keeps_attempts(store: Storage) -> None:
    await store.queue_put([msg("1")])
    await store.queue_claim("q", 0, 1)
    assert await store.queue_release("q", "1") is True
    [again] = await store.queue_claim("q", 0, 1)
    assert again.attempts == 0
    assert await store.queue_release("q", "missing") is False


async def test_dead_letters_list_count_redrive_discard(store: Storage) -> None:
    await store.queue_put([msg("1", attempts=2), msg("2"), msg("3")])
    await store.queue_claim("q", 0, 3)
    assert await store.queue_dead_letter("q", "1", "function call failed", 77) is True
    assert await store.queue_dead_letter("q", "2", "boom", 78, count=False) is True
    assert await store.queue_dead_letter("q", "missing", "x", 0) is False
    assert await store.queue_depth("q") == 1
    assert await store.dead_letter_count("q") == 2
    letters = await store.dead_letters("q")
    assert [(d.message.id, d.message.attempts, d.error, d.failed_at_ms) for d in letters] == [
        ("1", 3, "function call failed", 77),
        ("2", 0, "boom", 78),
    ]
    assert [d.message.id for d in await store.dead_letters("q", offset=1, limit=5)] == ["2"]
    with pytest.raises(StorageError):  # an id in the DLQ is still taken
        await store.queue_put([msg("1")])
    assert await store.redrive("q", ["1", "nope"], now_ms=100) == ["1"]
    assert await store.dead_letter_count("q") == 1
    redriven = [m for m in await store.queue_claim("q", 100, 5) if m.id == "1"]
    assert [(m.attempts, m.payload) for m in redriven] == [(0, {"n": "1"})]
    assert await store.discard_dead_letter("q", "2") is True
    assert await store.discard_dead_letter("q", "2") is False
    assert await store.redrive("q", None, 0) == []
    await store.queue_dead_letter("q", "1", "again", 5)
    await store.queue_dead_letter("q", "3", "again", 5)
    assert sorted(await store.redrive("q", None, 0)) == ["1", "3"]


async def test_queue_pending_lists_claimed_and_waiting(store: Storage) -> None:
    await store.queue_put([msg("1"), msg("2")])
    await store.queue_claim("q", 0, 1)
    assert [m.id for m in await store.queue_pending("q")] == ["1", "2"]
    assert await store.queue_pending("unknown") == []
    assert await store.queue_claim("unknown", 0, 1) == []


# -- durability (SQLite only) ----------------------------------------------------------------


async def reopen(tmp_path: Path, action: Callable[[SqliteStorage], Any]) -> SqliteStorage:
    first = SqliteStorage(tmp_path)
    await first.open()
    await action(first)
    await first.close()
    second = SqliteStorage(tmp_path)
    await second.open()
    return second


async def test_sqlite_documents_survive_reopen(tmp_path: Path) -> None:
    async def write(s: SqliteStorage) -> None:
        await s.set("state", "users", "b", 1)
        await s.set("state", "users", "a", 2)
        await s.set("state", "empty", "x", 0)
        await s.delete("state", "empty", "x")

    store = await reopen(tmp_path, write)
    try:
        assert await store.list_items("state", "users") == [("b", 1), ("a", 2)]
        assert await store.list_collections("state") == ["empty", "users"]
        await store.set("state", "users", "c", 3)  # sequence numbers continue after reopen
        assert [k for k, _ in await store.list_items("state", "users")] == ["b", "a", "c"]
    finally:
        await store.close()


async def test_sqlite_claims_expire_on_reopen(tmp_path: Path) -> None:
    async def write(s: SqliteStorage) -> None:
        await s.queue_put([msg("1"), msg("2"), msg("3")])
        await s.queue_claim("q", 0, 2)  # the process "dies" holding 1 and 2
        await s.queue_ack("q", "2")
        await s.queue_nack("q", "3", 0)

    store = await reopen(tmp_path, write)
    try:
        claimed = await store.queue_claim("q", 0, 10)
        assert [(m.id, m.attempts) for m in claimed] == [("3", 1), ("1", 0)]
    finally:
        await store.close()


def test_engine_opens_and_closes_its_storage(engine_factory: Any, tmp_path: Path) -> None:
    running = engine_factory(data_dir=str(tmp_path / "data"))
    storage = running.workers.storage
    assert isinstance(storage, SqliteStorage)
    running.run(storage.set("state", "s", "k", 1))
    running.stop()
    with pytest.raises(StorageError, match="closed"):
        asyncio.run(storage.get("state", "s", "k"))

    async def read() -> Any:
        again = SqliteStorage(tmp_path / "data")
        await again.open()
        try:
            return await again.get("state", "s", "k")
        finally:
            await again.close()

    assert asyncio.run(read()) == 1


def test_engine_defaults_to_memory(engine: Any) -> None:
    assert isinstance(engine.workers.storage, MemoryStorage)
