"""The in-memory storage adapter (the default): nothing survives the process."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import pydantic_core

from .base import MISSING, DeadLetter, QueueMessage, StorageError

__all__ = ["MemoryStorage"]


def encode(value: Any) -> bytes:
    """JSON-encode a value, or raise :class:`StorageError`."""
    try:
        return pydantic_core.to_json(value)
    except pydantic_core.PydanticSerializationError as exc:
        raise StorageError(f"value is not JSON: {exc}") from None


def decode(raw: bytes | str) -> Any:
    return pydantic_core.from_json(raw)


class _Queue:
    def __init__(self) -> None:
        self.messages: dict[str, QueueMessage] = {}
        self.claimed: set[str] = set()
        self.delayed: list[tuple[int, int, str]] = []  # (available_at_ms, seq, id)
        self.ready: list[tuple[int, str]] = []  # (seq, id)
        self.dead: dict[str, DeadLetter] = {}

    def schedule(self, message: QueueMessage) -> None:
        heapq.heappush(self.delayed, (message.available_at_ms, message.seq, message.id))

    def live(self, seq: int, message_id: str) -> QueueMessage | None:
        message = self.messages.get(message_id)
        if message is None or message.seq != seq or message_id in self.claimed:
            return None
        return message


class MemoryStorage:
    """:class:`~iii_asgi.engine.storage.Storage` in process memory.

    Values are kept JSON-encoded, so callers never share mutable state with the store and a
    value that is not JSON fails here the same way it fails in the SQLite adapter.
    """

    def __init__(self) -> None:
        self._docs: dict[str, dict[str, dict[str, bytes]]] = {}
        self._queues: dict[str, _Queue] = {}
        self._seq = 0
        self._front = 0
        self._closed = False

    async def open(self) -> None:
        self._closed = False

    async def close(self) -> None:
        self._closed = True

    def _check(self) -> None:
        if self._closed:
            raise StorageError("storage is closed")

    # -- documents -----------------------------------------------------------------------------

    def _collection(self, space: str, collection: str) -> dict[str, bytes]:
        return self._docs.setdefault(space, {}).setdefault(collection, {})

    async def get(self, space: str, collection: str, key: str) -> Any:
        self._check()
        raw = self._docs.get(space, {}).get(collection, {}).get(key)
        return MISSING if raw is None else decode(raw)

    async def set(self, space: str, collection: str, key: str, value: Any) -> Any:
        self._check()
        raw = encode(value)
        items = self._collection(space, collection)
        old = items.get(key)
        items[key] = raw
        return MISSING if old is None else decode(old)

    async def update(
        self, space: str, collection: str, key: str, fn: Callable[[Any], Any]
    ) -> tuple[Any, Any]:
        self._check()
        items = self._docs.get(space, {}).get(collection, {})
        raw = items.get(key)
        old = MISSING if raw is None else decode(raw)
        new = fn(old)
        if new is not MISSING:
            self._collection(space, collection)[key] = encode(new)
        return old, new

    async def delete(self, space: str, collection: str, key: str) -> Any:
        self._check()
        raw = self._docs.get(space, {}).get(collection, {}).pop(key, None)
        return MISSING if raw is None else decode(raw)

    async def list_items(self, space: str, collection: str) -> list[tuple[str, Any]]:
        self._check()
        items = self._docs.get(space, {}).get(collection, {})
        return [(key, decode(raw)) for key, raw in items.items()]

    async def list_collections(self, space: str) -> list[str]:
        self._check()
        return sorted(self._docs.get(space, {}))

    async def list_spaces(self, prefix: str = "") -> list[str]:
        self._check()
        return sorted(s for s in self._docs if s.startswith(prefix))

    # -- queue messages ------------------------------------------------------------------------

    def _queue(self, name: str) -> _Queue:
        queue = self._queues.get(name)
        if queue is None:
            queue = self._queues[name] = _Queue()
        return queue

    async def queue_put(self, messages: Sequence[QueueMessage]) -> None:
        self._check()
        seen: set[tuple[str, str]] = set()
        for m in messages:
            key = (m.queue, m.id)
            queue = self._queues.get(m.queue)
            if key in seen or (
                queue is not None and (m.id in queue.messages or m.id in queue.dead)
            ):
                raise StorageError(f"message {m.id!r} is already in queue {m.queue!r}")
            seen.add(key)
            encode(m.payload)
        for m in messages:
            self._seq += 1
            stored = replace(m, payload=decode(encode(m.payload)), seq=self._seq)
            queue = self._queue(m.queue)
            queue.messages[m.id] = stored
            queue.schedule(stored)

    async def queue_claim(
        self, queue: str, now_ms: int, limit: int, exclusive: bool = False
    ) -> list[QueueMessage]:
        self._check()
        q = self._queues.get(queue)
        if q is None or (exclusive and q.claimed):
            return []
        while q.delayed and q.delayed[0][0] <= now_ms:
            _, seq, message_id = heapq.heappop(q.delayed)
            if q.live(seq, message_id) is not None:
                heapq.heappush(q.ready, (seq, message_id))
        claimed: list[QueueMessage] = []
        while q.ready and len(claimed) < limit:
            seq, message_id = heapq.heappop(q.ready)
            message = q.live(seq, message_id)
            if message is not None:
                q.claimed.add(message_id)
                claimed.append(replace(message))
        return claimed

    async def queue_ack(self, queue: str, message_id: str) -> bool:
        self._check()
        q = self._queues.get(queue)
        if q is None or q.messages.pop(message_id, None) is None:
            return False
        q.claimed.discard(message_id)
        return True

    async def queue_ack_many(self, queue: str, message_ids: Sequence[str]) -> int:
        self._check()
        q = self._queues.get(queue)
        if q is None:
            return 0
        removed = 0
        for message_id in message_ids:
            if q.messages.pop(message_id, None) is not None:
                q.claimed.discard(message_id)
                removed += 1
        return removed

    async def queue_nack(
        self, queue: str, message_id: str, available_at_ms: int, front: bool = True
    ) -> bool:
        self._check()
        q = self._queues.get(queue)
        message = q.messages.get(message_id) if q is not None else None
        if q is None or message is None:
            return False
        if front:
            self._front -= 1
            seq = self._front
        else:
            self._seq += 1
            seq = self._seq
        message.attempts += 1
        message.available_at_ms = available_at_ms
        message.seq = seq
        q.claimed.discard(message_id)
        q.schedule(message)
        return True

    async def queue_release(self, queue: str, message_id: str) -> bool:
        self._check()
        q = self._queues.get(queue)
        message = q.messages.get(message_id) if q is not None else None
        if q is None or message is None:
            return False
        if message_id in q.claimed:
            q.claimed.discard(message_id)
            q.schedule(message)
        return True

    async def queue_dead_letter(
        self, queue: str, message_id: str, error: str, failed_at_ms: int, count: bool = True
    ) -> bool:
        self._check()
        q = self._queues.get(queue)
        message = q.messages.pop(message_id, None) if q is not None else None
        if q is None or message is None:
            return False
        q.claimed.discard(message_id)
        if count:
            message.attempts += 1
        q.dead[message_id] = DeadLetter(message, error, failed_at_ms)
        return True

    async def queue_pending(self, queue: str) -> list[QueueMessage]:
        self._check()
        q = self._queues.get(queue)
        if q is None:
            return []
        return [replace(m) for m in sorted(q.messages.values(), key=lambda m: m.seq)]

    async def queue_names(self) -> list[str]:
        self._check()
        return sorted(name for name, q in self._queues.items() if q.messages or q.dead)

    async def queue_depth(self, queue: str) -> int:
        self._check()
        q = self._queues.get(queue)
        return len(q.messages) if q is not None else 0

    async def dead_letters(self, queue: str, offset: int = 0, limit: int = 50) -> list[DeadLetter]:
        self._check()
        q = self._queues.get(queue)
        if q is None:
            return []
        letters = list(q.dead.values())[offset : offset + limit]
        return [DeadLetter(replace(d.message), d.error, d.failed_at_ms) for d in letters]

    async def dead_letter_count(self, queue: str) -> int:
        self._check()
        q = self._queues.get(queue)
        return len(q.dead) if q is not None else 0

    async def redrive(
        self, queue: str, message_ids: Sequence[str] | None, now_ms: int
    ) -> list[str]:
        self._check()
        q = self._queues.get(queue)
        if q is None:
            return []
        ids = list(q.dead) if message_ids is None else [i for i in message_ids if i in q.dead]
        for message_id in ids:
            message = q.dead.pop(message_id).message
            self._seq += 1
            message.attempts = 0
            message.available_at_ms = now_ms
            message.seq = self._seq
            q.messages[message_id] = message
            q.schedule(message)
        return ids

    async def discard_dead_letter(self, queue: str, message_id: str) -> bool:
        self._check()
        q = self._queues.get(queue)
        return q is not None and q.dead.pop(message_id, None) is not None
