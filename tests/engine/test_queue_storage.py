"""``queue_ack_many`` on both storage adapters (the queue consumer's batched acks)."""

from __future__ import annotations

from iii_asgi.engine.storage import QueueMessage, Storage


async def test_ack_many(store: Storage) -> None:
    await store.queue_put([QueueMessage("q", str(i), {"i": i}) for i in range(4)])
    await store.queue_claim("q", 0, 10)
    assert await store.queue_ack_many("q", ["0", "2", "missing"]) == 2
    assert [m.id for m in await store.queue_pending("q")] == ["1", "3"]
    assert await store.queue_ack_many("q", []) == 0
    assert await store.queue_ack_many("nope", ["1"]) == 0
